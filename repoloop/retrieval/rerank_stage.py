"""The dense re-rank as a stage of a retriever: when it runs, and what it does to the fused list.

Why its own part: the re-ranker (model, vector cache) is built at most once per index generation,
only where the index has no vectors and the caller asked for it, and a failure to build it is
remembered (explicit states here, not None/False); the candidates it judges (the fused list's first
source files, plus whole-file BM25's best files the fusion left out) and how its order is put back
into the fused scores are the stage's. The ordering itself is repoloop.retrieval.rerank's.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from repoloop.errors import RepoloopError
from repoloop.retrieval.fusion import Fused
from repoloop.retrieval.lexical import Lexical
from repoloop.retrieval.limits import QueryTimeoutError, check_deadline, current_deadline
from repoloop.retrieval.rows import ChunkRow, by_ids, chunk_rows
from repoloop.retrieval.weights import Weights

if TYPE_CHECKING:
    from repoloop.retrieval.rerank import DenseReranker

log = logging.getLogger(__name__)

PathPrior = Callable[[str], float]


class RerankStage:
    def __init__(self, make: Callable[[], DenseReranker]) -> None:
        self._make = make  # builds the re-ranker for the index as it is now (loads the model)
        self._decided = False  # whether this index generation has a re-ranker or none
        self.reranker: DenseReranker | None = None  # the one in use once decided (None: none)
        self.last_best: dict[str, tuple[float, int]] = {}  # the last re-rank's best chunk per file (locate)

    def tools(self, enabled: bool) -> DenseReranker | None:
        """The re-ranker for this index generation, built on first use where `enabled`; None if none."""
        if not self._decided:
            self._decided = True
            if enabled:
                try:
                    self.reranker = self._make()
                except Exception as e:  # noqa: BLE001 - model/cache errors: rank without it
                    if (d := current_deadline()) is not None and d.expired():
                        self._decided = False  # stopped by the deadline, not broken: try again next query
                        raise d.error() from e
                    log.warning("dense re-rank unavailable: %s", e)
        return self.reranker

    def drop(self) -> None:
        """Forget the re-ranker (a new index generation, or the caller's choice changed)."""
        if self.reranker is not None and self.reranker.cache is not None:
            self.reranker.cache.close()
        self.reranker, self._decided = None, False

    def apply(self, query: str, fused: list[Fused], rows: dict[int, ChunkRow], *, enabled: bool,
              weights: Weights, prior: PathPrior, lexical: Lexical, conn: sqlite3.Connection) -> list[Fused]:
        """Re-order the top files by dense similarity (see repoloop.retrieval.rerank): each file's
        chunks are scaled so that its best chunk takes the score of the position it moved to."""
        rr = self.tools(enabled)
        n = weights.rerank_files
        if rr is None or n < 2 or not fused:
            return fused
        from repoloop.retrieval.rerank import first_files, reassign

        paths = {f.chunk_id: rows[f.chunk_id].path for f in fused if f.chunk_id in rows}
        # Candidates: the first n files the path priors do not discount (tests, docs and examples
        # keep the places the first stage gave them; embedding them would be most of the cost).
        cands = first_files((p for f in fused if (p := paths.get(f.chunk_id)) and prior(p) >= 1.0), n)
        injected = _inject_files(query, cands, weights.rerank_inject, prior, lexical, conn)
        cands += injected
        rr.penalty = weights.rerank_penalty
        rr.per_file = weights.rerank_chunks
        try:
            new, chunks = rr.order(rr.query_vector(query), cands, query)
            self.last_best = chunks  # path -> (cosine, best chunk id): locate reads it
            sims = {p: s for p, (s, _) in chunks.items()}
            if injected:  # their best chunk joins the list below every candidate, then moves like one
                fused = _add_injected(fused, rows, paths, {p: chunks[p] for p in injected if p in chunks}, conn)
                placed = set(paths.values())
                cands = [p for p in cands if p in placed]
                new = [p for p in new if p in placed]
        except QueryTimeoutError:
            raise
        except RepoloopError as e:  # the model cannot be loaded (offline, bad name): not per query
            check_deadline()
            log.warning("dense re-rank off for this index: %s", e)
            self.drop()
            self._decided = True
            return fused
        except Exception as e:  # noqa: BLE001 - endpoint/store errors: keep the fused order this time
            check_deadline()
            log.warning("dense re-rank failed for this query, keeping the fused order: %s", e)
            return fused
        best: dict[str, float] = {}
        for f in fused:
            if f.chunk_id in paths:
                best.setdefault(paths[f.chunk_id], f.score)
        scale = reassign(cands, new, best)
        pos = {p: i for i, p in enumerate(new, start=1)}
        for f in fused:
            p = paths.get(f.chunk_id)
            if p in pos:
                f.score *= scale.get(p, 1.0)
                if p in sims:
                    f.signals["rerank"] = {"rank": pos[p], "score": round(sims[p], 6)}
        return sorted(fused, key=lambda f: (-f.score, f.chunk_id))


def _inject_files(query: str, cands: list[str], m: int, prior: PathPrior, lexical: Lexical,
                  conn: sqlite3.Connection) -> list[str]:
    """Whole-file BM25's top source files (`m` of them, Weights.rerank_inject) that the fused ranking
    left out, offered to the re-rank after its candidates: an issue whose words spread over one module
    finds it there while no single chunk of it ranks high. Only the re-rank can judge them (added to
    the fused list itself, they measured no better: repoloop.retrieval.file_signal)."""
    if m <= 0:
        return []
    have = set(cands)
    ids = [fid for fid, _ in lexical.files(query, 20 * m)]  # docs and tests rank high there
    out: list[str] = []
    by_id = dict(by_ids(conn, "SELECT id, path FROM files WHERE status != 'text' AND id IN ({})", ids))
    for fid in ids:
        p = by_id.get(fid)
        if p and p not in have and prior(p) >= 1.0:
            out.append(p)
            if len(out) == m:
                break
    return out


def _add_injected(fused: list[Fused], rows: dict[int, ChunkRow], paths: dict[int, str],
                  best: Mapping[str, tuple[float, int]], conn: sqlite3.Connection) -> list[Fused]:
    """Each injected file's best chunk (by the re-rank's similarity) joins the fused list below
    every candidate; the re-rank then moves it like any other file."""
    floor = min((f.score for f in fused), default=1.0) * 0.5
    rows.update(chunk_rows(conn, (cid for _, cid in best.values() if cid not in rows)))
    for i, (path, (_, cid)) in enumerate(best.items(), start=1):
        if cid in rows:
            paths[cid] = path
            fused.append(Fused(cid, floor, {"inject": {"rank": i, "score": 0.0}}))
    return fused
