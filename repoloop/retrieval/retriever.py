"""The hybrid Retriever: BM25, dense, name, stack-trace and graph signals fused by weighted RRF.

Opened once per process and kept warm (model, chroma client, path and name tables). With
`lexical_only` (or an index built with --no-embed) neither torch nor chromadb is imported.
"""

from __future__ import annotations

import heapq
import logging
import math
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from repoloop.errors import RepoloopError
from repoloop.indexer.safe_read import read_repo_file
from repoloop.indexer.schema import GENERATION_KEY, META_MODEL
from repoloop.indexer.store import DB_NAME, IndexStore, index_dir_for
from repoloop.retrieval.api import ContextPack, Retriever, SearchHit
from repoloop.retrieval.fusion import Fused, Ranked, rank_files, rrf
from repoloop.retrieval.hits import take_hits
from repoloop.retrieval.lexical import Lexical
from repoloop.retrieval.limits import (
    MAX_HIT_FILE_BYTES,
    Deadline,
    QueryTimeoutError,
    bounded_prefix,
    check_deadline,
    check_query_length,
    current_deadline,
    deadline_scope,
)
from repoloop.retrieval.names import NameMatcher
from repoloop.retrieval.query import analyze
from repoloop.retrieval.tokens_count import TokenCounter, get_counter
from repoloop.retrieval.weights import DEFAULT, SIGNALS, Weights

log = logging.getLogger(__name__)

SQL_CHECK_EVERY = 10_000  # SQLite VM steps between deadline checks (well under a millisecond)


def parse_signals(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """`"bm25,dense"` -> ("bm25", "dense"); unknown names are a user error."""
    if spec is None:
        return SIGNALS
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    bad = [s for s in items if s not in SIGNALS]
    if bad or not items:
        raise RepoloopError(f"--signals: unknown signal {', '.join(bad) or '(none)'}; choose from {','.join(SIGNALS)}")
    return tuple(dict.fromkeys(items))


class HybridRetriever(Retriever):
    def __init__(self, repo: Path, idx: Path, store: IndexStore, *, lexical_only: bool, weights: Weights,
                 chroma_url: str | None, embedder: Any, counter: TokenCounter | None,
                 rerank: bool = False) -> None:
        self.repo = repo
        self.idx = idx
        self.store = store
        self.weights = weights
        self.lexical = Lexical(store.conn, weights)
        self.names = NameMatcher(store.conn, weights)
        self._lexical_forced = lexical_only  # the caller's choice; else decided by the index (refresh)
        self.lexical_only = lexical_only or not store.get_meta(META_MODEL)
        self._dense: Any = None
        self._chroma_url = chroma_url
        self._embedder = embedder
        self._counter = counter
        # Dense re-rank of the top files (repoloop.retrieval.rerank) where the index has no vectors:
        # their chunks are embedded at query time (seconds on a CPU for files not seen before, then
        # cached). Not on an embedded index: dense already took part in the fusion, and re-ranking
        # there measured worse (dev.jsonl SymAcc@10 82 -> 77; RESULTS.md, "Dense re-rank in the product").
        self.rerank = rerank
        self._reranker: Any = None  # a DenseReranker once built; False: none for this index generation
        self._graph: Any = None  # a LocalRanker, or (pagerank, graph) when full_graph; False if unavailable
        self.full_graph = False  # True: PageRank over the whole graph loaded in memory (comparisons)
        self._executor: ThreadPoolExecutor | None = None
        self._loader: ThreadPoolExecutor | None = None  # loads a changed whole graph (refresh)
        # Compiled path priors and their per-path products, for the `path_boost` they came from
        # (weights may be swapped on an open retriever: a tuning run compares variants).
        self._path_rx: tuple[tuple, list[tuple[re.Pattern[str], float]]] | None = None
        self._path_priors: dict[str, float] = {}
        self._seen = self._index_version()  # what refresh() compares against
        self._graph_next: Future | None = None  # a whole graph being loaded beside the one in use
        self.refreshes = 0  # refresh() calls that found a new index generation (logs and tests read it)
        self.graph_reloads = 0  # whole-graph re-reads refresh() started (logs, tests, benchmarks read it)
        self.last_rerank_best: dict[str, tuple[float, int]] = {}  # the last re-rank's best chunk per file

    @classmethod
    def open(cls, repo: Path, index_dir: Path | None = None, *, lexical_only: bool = False,
             weights: Weights | None = None, chroma_url: str | None = None, embedder: Any = None,
             counter: TokenCounter | None = None, rerank: bool = False) -> HybridRetriever:
        repo = Path(repo).expanduser().resolve()
        idx = index_dir_for(repo, index_dir)
        store = IndexStore(idx / DB_NAME, readonly=True)
        return cls(repo, idx, store, lexical_only=lexical_only, weights=weights or DEFAULT,
                   chroma_url=chroma_url, embedder=embedder, counter=counter, rerank=rerank)

    # -- signals ------------------------------------------------------------------------------
    @property
    def dense(self) -> Any:
        if self._dense is None:
            from repoloop.retrieval.dense import Dense

            self._dense = Dense(self.store, self.idx, embedder=self._embedder, chroma_url=self._chroma_url)
        return self._dense

    def _dense_ready(self) -> bool:
        """Open the vector side; a broken or unreachable vector store degrades to lexical search
        (logged once) rather than failing every query."""
        try:
            return bool(self.dense.prepare())
        except Exception as e:  # noqa: BLE001 - chromadb/model errors come in many types
            check_deadline()  # an interrupted query is not a broken vector store
            log.warning("dense retrieval unavailable, searching lexically: %s", e)
            self.lexical_only = True
            return False

    def _collect(self, pending: Future | None) -> list[tuple[str, float]] | None:
        """The dense answer, or None if it failed (logged; the query goes on without it)."""
        if pending is None:
            return None
        d = current_deadline()
        left = None if d is None else d.remaining()
        try:
            return pending.result(timeout=None if left is None else left + 0.05)
        except FutureTimeout:
            assert d is not None
            raise d.error() from None
        except Exception as e:  # noqa: BLE001 - model/endpoint/chroma errors come in many types
            log.warning("dense retrieval failed for this query, searching lexically: %s", e)
            return None

    def warm(self) -> None:
        """Pay the one-time costs now (model load, chroma open, path/name tables, and the whole
        graph in memory when it is not huge: per query that is ~2x faster than the SQLite-local
        ranker on a 9k-edge repo and as fast at 50k, same quality; see benchmarks/RESULTS.md)."""
        if not self.full_graph:
            n_edges = self.store.conn.execute("SELECT count(*) FROM edges").fetchone()[0]
            if 0 < n_edges <= self.weights.full_graph_max_edges:
                self.full_graph, self._graph = True, None
                self._ensure_graph()
        if not self.lexical_only and self._dense_ready():
            self.dense.warm()
        self.search("warm up", 1)

    # -- a newer index generation -----------------------------------------------------------
    def _index_version(self) -> tuple[int, int, str | None]:
        """(database file inode, SQLite data_version, graph generation): the first changes when the
        index file was replaced, the second on any commit by another connection, the third when
        the edges changed."""
        try:
            ino = self.store.db_path.stat().st_ino
        except OSError:
            ino = -1
        version = self.store.conn.execute("PRAGMA data_version").fetchone()[0]
        return ino, version, self.store.get_meta(GENERATION_KEY)

    def refresh(self) -> bool:
        """See what the indexer wrote since the last look, in place and cheaply: the model, the
        chroma client and collection, and the graph (unless its edges changed) stay loaded; the
        path and name tables are rebuilt lazily; a changed graph is re-read (the whole graph on a
        helper thread, the old one ranking until it is ready). Returns whether anything changed.
        Runs on the thread that owns this Retriever, like every other call."""
        ino, version, gen = self._index_version()
        old_ino, _, old_gen = self._seen
        if (ino, version, gen) == self._seen or ino == -1:  # -1: the file is being re-made; look later
            return False
        if ino != old_ino:  # a new database file (rebuilt after damage): reopen everything but the model
            self._reopen_store()
            ino, version, gen = self._index_version()
            old_gen = None
        self._seen = (ino, version, gen)
        self.refreshes += 1
        self.names = NameMatcher(self.store.conn, self.weights)
        self.lexical_only = self._lexical_forced or not self.store.get_meta(META_MODEL)
        if self._dense is not None:
            self._dense.refresh()
        self._drop_reranker()  # the index may have gained (or lost) its vectors
        # The generation moves only when the ranking edges did (a body-only edit keeps it), so a
        # whole graph is re-read then, or when it was read mid-pass (files stored, edges not yet).
        # The local ranker read its adjacency lazily, maybe mid-pass: it restarts on any change
        # (cheap: refilled on demand from the indexes).
        if self.full_graph and self._graph:
            if gen != old_gen or not self._graph_complete():
                if self._graph_next is not None:
                    self._graph_next.cancel()  # superseded before it started: only the newest is read
                self._graph_next = self._graph_loader().submit(_load_graph_readonly, self.store.db_path)
                self.graph_reloads += 1
        else:
            self._graph = None
        return True

    def _graph_complete(self) -> bool:
        """Whether the whole graph in use (or the one being loaded) was read from complete edges."""
        g = self._graph[1] if isinstance(self._graph, tuple) else None
        if self._graph_next is not None:
            if not self._graph_next.done():
                return False  # it may have begun mid-pass: read once more after it
            try:
                g = self._graph_next.result()
            except Exception:  # noqa: BLE001 - a failed load: read again
                return False
        return bool(getattr(g, "complete", True))

    def _reopen_store(self) -> None:
        fresh = IndexStore(self.store.db_path, readonly=True)  # before closing: a failure keeps the old
        self.store.close()
        self.store = fresh
        self.lexical = Lexical(self.store.conn, self.weights)
        if self._dense is not None and self._embedder is None:
            self._embedder = self._dense.embedder  # keep the loaded model
        self._dense = None
        self._drop_reranker()
        self._graph, self._graph_next = None, None

    def _graph_loader(self) -> ThreadPoolExecutor:
        if self._loader is None:
            self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="repoloop-graph")
        return self._loader

    def _swap_graph(self) -> None:
        """Put a graph loaded beside the old one into service once it is ready (never waits)."""
        nxt = self._graph_next
        if nxt is None or not nxt.done():
            return
        self._graph_next = None
        if not isinstance(self._graph, tuple):
            return
        try:
            self._graph = (self._graph[0], nxt.result())
        except Exception as e:  # noqa: BLE001 - keep ranking with the old graph
            log.warning("reloading the graph failed, keeping the previous one: %s", e)

    def _graph_rank(self, seeds: dict[str, float], limit: int) -> dict[str, float]:
        """Personalized PageRank over the dependency graph from seed nodes; {} if no graph.

        By default ranked near the seeds from SQLite (repoloop.retrieval.local_rank): a one-shot
        CLI query never loads the whole graph (seconds on a big repo), and a long-running process
        keeps the adjacency it has read. `full_graph=True` loads it all (the older path)."""
        if not seeds:
            return {}
        self._swap_graph()
        self._ensure_graph()
        if not self._graph:
            return {}
        try:
            if not isinstance(self._graph, tuple):
                return self._graph.rank(seeds)
            fn, g = self._graph
            # a looser tolerance: same top ranks (checked on the stdlib graph), half the time
            return dict(fn(g, seeds, tol=self.weights.graph_tol, max_iter=50))
        except Exception:  # noqa: BLE001 - a graph problem must not break search
            return {}

    def _ensure_graph(self) -> None:
        if self._graph is None:
            if self.full_graph:
                try:
                    from repoloop.retrieval.graph import load_graph, pagerank

                    self._graph = (pagerank, load_graph(self.store))
                except ImportError:
                    self._graph = False
            else:
                from repoloop.retrieval.local_rank import LocalRanker

                self._graph = LocalRanker(self.store.conn)

    def _graph_signal(self, lists: list[Ranked], rows: dict[int, tuple], limit: int) -> Ranked:
        """Rank candidates (and the chunks of the best-ranked other symbols) by personalized
        PageRank seeded with every signal's top hits."""
        seeds: dict[str, float] = {}
        n = self.weights.graph_seeds
        for r in lists:
            for rank, cid in enumerate(r.ids[:n], start=1):
                row = rows.get(cid)
                if row is None:
                    continue
                node = f"s:{row[3]}" if row[3] else f"f:{row[0]}"
                strength = min(1.0, r.scores[rank - 1]) if r.scaled else 1.0
                w = self.weights.signal.get(r.signal, 1.0) * strength / rank
                seeds[node] = seeds.get(node, 0.0) + w
        pr = self._graph_rank(seeds, limit)
        if not pr:
            return Ranked("graph", [], [])
        # A seed's PageRank includes its own teleport mass, (1 - alpha) * its seed share: remove it
        # (times graph_self_discount), so the graph ranks what the *other* hits point at instead of
        # echoing the seed weights back.
        total = sum(seeds.values()) or 1.0
        cut = self.weights.graph_self_discount * (1 - self.weights.graph_alpha)
        pr = {**pr, **{n: max(0.0, pr.get(n, 0.0) - cut * w / total) for n, w in seeds.items()}}
        known = {row[3] for row in rows.values() if row[3]}
        extra = heapq.nlargest(self.weights.graph_seeds + len(known),
                               ((v, k[2:]) for k, v in pr.items() if k[:2] == "s:"))
        extra = [(v, q) for v, q in extra if q not in known][: self.weights.graph_seeds]
        for _, qual in extra:
            got = self.store.conn.execute(
                "SELECT c.id, f.path, c.start_line, c.end_line, c.symbol FROM symbols s JOIN files f"
                " ON f.id=s.file_id JOIN chunks c ON c.file_id=s.file_id AND c.start_line<=s.start_line"
                " AND c.end_line>=s.start_line WHERE s.qualname=? LIMIT 1", (qual,)).fetchone()
            if got and got[0] not in rows:
                rows[got[0]] = tuple(got[1:])
        scored = []
        for cid, row in rows.items():
            # The symbol's own rank; its file's rank only breaks ties (and scores module-level code).
            s = (pr.get(f"s:{row[3]}", 0.0) if row[3] else 0.0) + 0.1 * pr.get(f"f:{row[0]}", 0.0)
            if s > 0:
                scored.append((s, cid))
        scored.sort(key=lambda x: (-x[0], x[1]))
        scored = scored[:limit]
        return Ranked("graph", [c for _, c in scored], [s for s, _ in scored])

    def _file_signal(self, query: str, limit: int, lists: list[Ranked]) -> Ranked:
        """Whole-file BM25 ranks files; every candidate chunk of a ranked file gets its file's rank
        (ties), so chunks of the right module rise without displacing symbol-level evidence. (Letting
        it add files no other signal found, through their first chunk, measured no better.)"""
        ranked = self.lexical.files(query, limit)
        if not ranked:
            return Ranked("file", [], [])
        by_file: dict[int, list[int]] = {}
        for cid, fid in self._by_ids("SELECT id, file_id FROM chunks WHERE id IN ({})",
                                     (cid for r in lists for cid in r.ids)):
            by_file.setdefault(fid, []).append(cid)
        out = [(cid, s) for fid, s in ranked for cid in by_file.get(fid, ())]
        return Ranked("file", [c for c, _ in out], [s for _, s in out])

    def _path_prior(self, path: str) -> float:
        boost = self.weights.path_boost
        if self._path_rx is None or self._path_rx[0] is not boost:
            self._path_rx = (boost, [(re.compile(rx), m) for rx, m in boost])
            self._path_priors = {}
        got = self._path_priors.get(path)
        if got is None:
            got = 1.0
            for rx, m in self._path_rx[1]:
                if rx.search(path):
                    got *= m
            self._path_priors[path] = got
        return got

    def _by_ids(self, sql: str, ids: Iterable[int]) -> Iterator[tuple]:
        """Rows of `sql` (one `IN ({})` placeholder) for distinct ids, in batches under SQLite's
        variable limit."""
        ids = list(dict.fromkeys(ids))
        for i in range(0, len(ids), 900):
            part = ids[i : i + 900]
            yield from self.store.conn.execute(sql.format(",".join("?" * len(part))), part)

    def _rows(self, ids: Iterable[int]) -> dict[int, tuple]:
        return {r[0]: tuple(r[1:]) for r in self._by_ids(
            "SELECT c.id, f.path, c.start_line, c.end_line, c.symbol, c.kind, c.text FROM chunks c"
            " JOIN files f ON f.id=c.file_id WHERE c.id IN ({})", ids)}

    # -- dense re-rank ------------------------------------------------------------------------
    def _rerank_tools(self) -> Any:
        """The DenseReranker for this index and mode, or None (built once per index generation)."""
        if self._reranker is None:
            self._reranker = False
            if self.rerank and self.lexical_only and not self._lexical_forced:
                try:
                    self._reranker = self._make_reranker() or False
                except Exception as e:  # noqa: BLE001 - model/cache errors: rank without it
                    if (d := current_deadline()) is not None and d.expired():
                        self._reranker = None  # stopped by the deadline, not broken: try again next query
                        raise d.error() from e
                    log.warning("dense re-rank unavailable: %s", e)
        return self._reranker or None

    def _make_reranker(self) -> Any:
        from repoloop.indexer.embed.embedders import embedder_from_config
        from repoloop.indexer.embed.query_time_cache import VectorCache, cache_path
        from repoloop.retrieval.rerank import DenseReranker

        self._embedder = self._embedder or embedder_from_config()  # the model a later `index` would use
        return DenseReranker(self.store.conn, self._embedder, penalty=self.weights.rerank_penalty,
                             cache=VectorCache(cache_path(self.idx), self._embedder.name),
                             per_file=self.weights.rerank_chunks)

    def set_rerank(self, on: bool) -> None:
        """Turn the re-rank on or off on an open retriever (benchmarks compare both in one process)."""
        self.rerank = on
        self._drop_reranker()

    def _drop_reranker(self) -> None:
        if self._reranker and self._reranker.cache is not None:
            self._reranker.cache.close()
        self._reranker = None

    def _rerank(self, query: str, fused: list[Fused], rows: dict[int, tuple]) -> list[Fused]:
        """Re-order the top files by dense similarity (see repoloop.retrieval.rerank): each file's
        chunks are scaled so that its best chunk takes the score of the position it moved to."""
        rr = self._rerank_tools()
        n = self.weights.rerank_files
        if rr is None or n < 2 or not fused:
            return fused
        from repoloop.retrieval.rerank import first_files, reassign

        paths = {f.chunk_id: rows[f.chunk_id][0] for f in fused if f.chunk_id in rows}
        # Candidates: the first n files the path priors do not discount (tests, docs and examples
        # keep the places the first stage gave them; embedding them would be most of the cost).
        cands = first_files((p for f in fused if (p := paths.get(f.chunk_id)) and self._path_prior(p) >= 1.0), n)
        injected = self._inject_files(query, cands)
        cands += injected
        rr.penalty = self.weights.rerank_penalty
        rr.per_file = self.weights.rerank_chunks
        try:
            new, chunks = rr.order(rr.query_vector(query), cands, query)
            self.last_rerank_best = chunks  # path -> (cosine, best chunk id): locate reads it
            sims = {p: s for p, (s, _) in chunks.items()}
            if injected:  # their best chunk joins the list below every candidate, then moves like one
                fused = self._add_injected(fused, rows, paths, {p: chunks[p] for p in injected if p in chunks})
                placed = set(paths.values())
                cands = [p for p in cands if p in placed]
                new = [p for p in new if p in placed]
        except QueryTimeoutError:
            raise
        except RepoloopError as e:  # the model cannot be loaded (offline, bad name): not per query
            check_deadline()
            log.warning("dense re-rank off for this index: %s", e)
            self._drop_reranker()
            self._reranker = False
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

    def _inject_files(self, query: str, cands: list[str]) -> list[str]:
        """Whole-file BM25's top source files (`rerank_inject` of them) that the fused ranking left
        out, offered to the re-rank after its candidates: an issue whose words spread over one module
        finds it there while no single chunk of it ranks high. Only the re-rank can judge them (added
        to the fused list itself, they measured no better: `_file_signal`)."""
        m = self.weights.rerank_inject
        if m <= 0:
            return []
        have = set(cands)
        ids = [fid for fid, _ in self.lexical.files(query, 20 * m)]  # docs and tests rank high there
        out: list[str] = []
        by_id = dict(self._by_ids("SELECT id, path FROM files WHERE status != 'text' AND id IN ({})", ids))
        for fid in ids:
            p = by_id.get(fid)
            if p and p not in have and self._path_prior(p) >= 1.0:
                out.append(p)
                if len(out) == m:
                    break
        return out

    def _add_injected(self, fused: list[Fused], rows: dict[int, tuple], paths: dict[int, str],
                      best: Mapping[str, tuple[float, int]]) -> list[Fused]:
        """Each injected file's best chunk (by the re-rank's similarity) joins the fused list below
        every candidate; the re-rank then moves it like any other file."""
        floor = min((f.score for f in fused), default=1.0) * 0.5
        rows.update(self._rows(cid for _, cid in best.values() if cid not in rows))
        for i, (path, (_, cid)) in enumerate(best.items(), start=1):
            if cid in rows:
                paths[cid] = path
                fused.append(Fused(cid, floor, {"inject": {"rank": i, "score": 0.0}}))
        return fused

    # -- the facade ---------------------------------------------------------------------------
    def fused(self, query: str, k: int = 10, *, signals: Iterable[str] | str | None = None
              ) -> tuple[list[Fused], dict[int, tuple]]:
        """Fused ranking (chunk ids) and the rows of every candidate. A query over
        MAX_QUERY_CHARS is refused (QueryTooLongError): every entry point searches through here."""
        check_query_length(query)
        sig = parse_signals(signals)
        qa = analyze(query)
        check_deadline()
        depth = max(self.weights.depth, k)
        # Dense (query embedding + chroma) runs on a worker thread while the lexical signals and
        # the graph run here: the latency is the longer of the two, not their sum.
        pending = None
        if "dense" in sig and not self.lexical_only and self._dense_ready():
            pending = self._pool().submit(self.dense.nearest, query, depth)
        lists: list[Ranked] = []
        try:
            if "trace" in sig:
                lists.append(self.names.trace(qa, depth))
            if "name" in sig:
                lists.append(self.names.names(qa, depth))
            if "bm25" in sig:
                lists.append(self.lexical.search(query, depth))
            if "file" in sig:
                lists.append(self._file_signal(query, depth, lists))
            check_deadline()  # a signal that swallowed an interrupted statement answered []
            rows = self._rows(i for r in lists for i in r.ids)
            if "graph" in sig:
                # Seeds: the lexical signals' top hits; for graph alone, computed here but not fused.
                seed_lists = lists if any(r.ids for r in lists) else [
                    self.names.trace(qa, depth), self.names.names(qa, depth), self.lexical.search(query, depth)]
                seed_rows = dict(rows) if seed_lists is lists else self._rows(
                    i for r in seed_lists for i in r.ids[: self.weights.graph_seeds])
                g = self._graph_signal(seed_lists, seed_rows, depth)
                check_deadline()
                if g.ids:
                    lists.append(g)
                    rows.update(self._rows(cid for cid in g.ids if cid not in rows))
        finally:
            nearest = self._collect(pending)
        if nearest is not None:
            d = self.dense.to_chunks(nearest, depth)
            lists.append(d)
            rows.update(self._rows(cid for cid in d.ids if cid not in rows))
        wk = self.weights
        boosts = {cid: wk.kind_boost.get(row[4], wk.default_kind_boost) * self._path_prior(row[0])
                  for cid, row in rows.items()}
        # Where the evidence names a definition inside a bigger chunk (a method in a class chunk),
        # report that definition: the result's symbol is the most specific one the query points at.
        for r in reversed(lists):  # trace first (listed first), so it wins
            for cid, qual in r.focus.items():
                row = rows.get(cid)
                if row and row[3] and qual != row[3] and qual.startswith(row[3] + "."):
                    k = self.store.conn.execute("SELECT kind FROM symbols WHERE qualname=? LIMIT 1", (qual,)).fetchone()
                    rows[cid] = (*row[:3], qual, k[0] if k else row[4], row[5])
        fused = rrf(lists, wk, boosts=boosts)
        self.last_rerank_best = {}
        if "dense" in sig:  # the re-rank is the dense signal where the index has no vectors
            fused = self._rerank(query, fused, rows)
        check_deadline()
        return fused, rows

    def search(self, query: str, k: int = 10, *, explain: bool = False,
               signals: Iterable[str] | str | None = None, merge: bool = True) -> list[SearchHit]:
        if k < 1:
            raise RepoloopError(f"-k must be at least 1, not {k}")
        fused, rows = self.fused(query, k, signals=signals)
        # After a free head, at most `per_file` hits of one file until every file had its turn (see
        # Weights.per_file); neighbouring chunks of one definition are one hit (retrieval.hits).
        cap = self.weights.per_file
        head = math.ceil(self.weights.free_head * k) if cap else k
        # A row can be missing: deleted by a concurrent index run between the signal and the row read.
        ranked = ((f, rows[f.chunk_id]) for f in fused if f.chunk_id in rows)
        return take_hits(ranked, k, head=head, cap=cap, explain=explain, merge=merge)

    def search_files(self, query: str, k: int = 10, *, signals: Iterable[str] | str | None = None,
                     depth: int = 50) -> list[tuple[str, float]]:
        """File-level ranking aggregated from the chunk ranking."""
        fused, rows = self.fused(query, depth, signals=signals)
        return rank_files([(rows[f.chunk_id][0], f.score) for f in fused[:depth] if f.chunk_id in rows])[:k]

    @property
    def counter(self) -> TokenCounter:
        if self._counter is None:
            self._counter = get_counter()
        return self._counter

    def _lines(self, path: str) -> list[str] | None:
        """A file's current lines, read as the indexer reads (inside the repository, a regular file,
        bounded, never blocking): it may have been swapped for a FIFO or a symlink since indexing."""
        data = read_repo_file(str(self.repo / path), str(self.repo.resolve()), MAX_HIT_FILE_BYTES)
        return data.decode("utf-8", errors="replace").split("\n") if isinstance(data, bytes) else None

    def context(self, task: str, budget: int, *, k: int = 30) -> ContextPack:
        from repoloop.retrieval.context import build_context

        if budget < 0:
            raise RepoloopError(f"--budget must not be negative, not {budget}")
        task = bounded_prefix(task)  # a long task (an issue, an agent's task text): its first part
        hits = self.search(task, k, merge=False) if task.strip() else []  # chunks: fitted one by one
        check_deadline()
        return build_context(hits, budget, self.counter, self._lines, self._map_source)

    def _map_source(self, budget: int, focus: tuple[str, ...]) -> str:
        try:
            from repoloop.retrieval.repomap import render_repo_map
        except ImportError:
            return self._simple_map(budget, focus)
        try:
            return render_repo_map(self.store, budget, focus)
        except TypeError:
            return render_repo_map(self.store, budget=budget, focus=list(focus))

    def _simple_map(self, budget: int, focus: tuple[str, ...]) -> str:
        """Signatures of the focus files first, then of the files with the most symbols referenced."""
        paths = list(focus)
        for (p,) in self.store.conn.execute(
                "SELECT f.path FROM files f JOIN symbols s ON s.file_id=f.id GROUP BY f.id"
                " ORDER BY count(*) DESC LIMIT 200"):
            if p not in paths:
                paths.append(p)
        out: list[str] = []
        approx = 0
        for p in paths:
            rows = self.store.conn.execute(
                "SELECT s.signature, s.name, s.kind, s.parent FROM symbols s JOIN files f ON f.id=s.file_id"
                " WHERE f.path=? AND s.kind NOT IN ('variable','field','constant') ORDER BY s.start_line", (p,)
            ).fetchall()
            if not rows:
                continue
            out.append(f"{p}:")
            for sig, name, kind, parent in rows:
                out.append(("    " if parent else "  ") + (sig or f"{kind} {name}"))
            approx += sum(len(x) for x in out[-len(rows) - 1:]) // 3
            if approx > budget * 2:
                break
        return "\n".join(out)

    def definitions(self, name: str, *, neighbours: int = 0) -> list[dict]:
        """Definitions of `name`; with `neighbours` > 0 each also lists up to that many direct
        callers and callees from the graph (each with its `confidence`)."""
        from repoloop.indexer.lookup import find_definitions

        defs = find_definitions(self.store, name)
        if neighbours > 0:
            from repoloop.retrieval.graph import neighbours as graph_neighbours

            for d in defs[:6]:
                d.update(graph_neighbours(self.store, d["qualname"], neighbours))
        return defs

    def outline(self, path: str) -> dict:
        from repoloop.indexer.lookup import outline

        got = outline(self.store, path)
        if got is None:
            raise RepoloopError(f"{path}: not in the index")
        return got

    def repo_map(self, budget: int = 1024, focus: tuple[str, ...] = ()) -> str:
        text = self._map_source(budget, tuple(focus))
        lines = text.split("\n")
        while lines and self.counter.count("\n".join(lines)) > budget:
            lines = lines[: max(0, len(lines) - max(1, len(lines) // 8))]
        return "\n".join(lines)

    @contextmanager
    def time_limit(self, deadline: Deadline | None) -> Iterator[Deadline | None]:
        """Calls in the block stop with QueryTimeoutError once `deadline` passes: checked between
        the signals and in their loops, and inside SQLite statements through a progress handler
        (a long FTS5 or graph statement is interrupted, not waited for)."""
        if deadline is None:
            yield None
            return
        conn = self.store.conn
        conn.set_progress_handler(deadline.expired, SQL_CHECK_EVERY)
        try:
            with deadline_scope(deadline):
                yield deadline
        except sqlite3.OperationalError as e:
            if deadline.expired():
                raise deadline.error() from e
            raise
        finally:
            conn.set_progress_handler(None, 0)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="repoloop-dense")
        return self._executor

    def close(self) -> None:
        self._drop_reranker()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._loader is not None:
            self._loader.shutdown(wait=True)
            self._loader = None
        self.store.close()


def _load_graph_readonly(db_path: Path) -> Any:
    """The whole graph, read through a connection of its own (the Retriever's belongs to its thread)."""
    import sqlite3

    from repoloop.retrieval.graph import load_graph

    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    try:
        return load_graph(conn)
    finally:
        conn.close()
