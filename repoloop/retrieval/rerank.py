"""Dense re-rank: the fused ranking's top files re-ordered by how close their best chunk is to the query.

Why a second stage: the lexical, name, trace and graph signals find the right file among their top
10 far more often than they put it first (SWE-bench dev, 214 issues at their base commits: Acc@10
82.2 but Acc@1 52.3). Embedding every chunk of a big repository is slow on a CPU (~100k chunks for
one django snapshot), but a query only needs the chunks of the files it is about to rank: ~900
chunks for 20 files, embedded once and cached (repoloop.indexer.embed.query_time_cache). For an index built
with `--no-embed`; an embedded index has the dense signal in the fusion already (and re-ranking it
measured worse). Measured in benchmarks/RESULTS.md ("Dense re-rank in the product").

The new file score is `max cosine(query, chunk) - penalty * ln(fused rank)`: the dense evidence
decides among candidates the first stage found, and the first stage's order is a prior that only a
clearly closer file overturns (experiments/loc_rerank_dense.py compared max / top-2 / soft-max
aggregation, rank-fusion and score-fusion variants; this one was best on Acc@1 and MRR).
"""

from __future__ import annotations

import logging
import math
import sqlite3
import sys
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from repoloop.indexer.embed.embedders import Embedder
from repoloop.indexer.embed.phase import MAX_EMBED_CHARS, embed_key, embed_text
from repoloop.indexer.embed.query_time_cache import VectorCache

log = logging.getLogger(__name__)

class DenseReranker:
    """Re-orders candidate files for one query; chunk vectors come from memory, then `cache` (those
    embedded earlier), then the model (and go to the cache)."""

    def __init__(self, conn: sqlite3.Connection, embedder: Embedder, *, penalty: float,
                 cache: VectorCache | None = None, memory: int = 50_000, per_file: int = 0) -> None:
        self.conn = conn
        self.per_file = per_file  # embed at most this many new chunks per file (0: all); see select_chunks
        self.embedder = embedder
        self.penalty = penalty
        self.cache = cache
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()  # warm processes: recent vectors
        self._memory_max = memory
        self.embedded = 0  # chunk texts embedded by this reranker (logs, tests, benchmarks read it)
        self.last_sims: dict[int, float] = {}  # chunk id -> cosine of the last best_chunks call

    def query_vector(self, query: str) -> np.ndarray:
        return np.asarray(self.embedder.embed([query[: MAX_EMBED_CHARS * 2]])[0], dtype=np.float32)

    def best_chunks(self, qvec: Sequence[float] | np.ndarray, files: Sequence[str], query: str = ""
                    ) -> dict[str, tuple[float, int]]:
        """File -> (its best chunk's cosine similarity to the query, that chunk's id); files with no
        vector left out. With `per_file` and a query, a file's chunks not embedded yet are embedded
        only up to `per_file` of them, the ones sharing the most query words."""
        qvec = np.asarray(qvec, dtype=np.float32)
        keys = self._chunk_keys(files)
        texts = {k: t for per in keys.values() for k, t, _ in per}
        known = self._known(texts)
        if self.per_file > 0 and query:
            wanted = select_chunks(query, keys, known.keys(), self.per_file)
            texts = {k: t for k, t in texts.items() if k in wanted}
        vecs = self._vectors(texts, known)
        out = {}
        self.last_sims = {}  # chunk id -> cosine, every chunk scored by this call (locate reads it)
        for path, per in keys.items():
            sims = [(float(vecs[k] @ qvec), cid) for k, _, cid in per if k in vecs]
            if sims:
                out[path] = max(sims)
                self.last_sims.update((cid, s) for s, cid in sims)
        return out

    def order(self, qvec: Sequence[float] | np.ndarray, files: Sequence[str], query: str = ""
              ) -> tuple[list[str], dict[str, tuple[float, int]]]:
        """The candidates re-ordered (best first) and each file's best chunk (see best_chunks)."""
        best = self.best_chunks(qvec, files, query)
        if not best:
            return list(files), {}
        neutral = sum(s for s, _ in best.values()) / len(best)
        score = {p: best[p][0] if p in best else neutral for p in files}
        score = {p: score[p] - self.penalty * math.log(i + 1) for i, p in enumerate(files)}
        return sorted(files, key=lambda p: -score[p]), best

    # -- vectors ------------------------------------------------------------------------------
    def _chunk_keys(self, files: Sequence[str]) -> dict[str, list[tuple[str, str, int]]]:
        """File -> [(key, embedded text, chunk id)] for each of its chunks, as `repoloop index` embeds them."""
        out: dict[str, list[tuple[str, str, int]]] = {p: [] for p in files}
        q = ",".join("?" * len(files))
        for path, module, text, symbol, cid in self.conn.execute(
                "SELECT f.path, f.module, c.text, c.symbol, c.id FROM chunks c JOIN files f ON f.id=c.file_id"
                f" WHERE f.path IN ({q})", list(files)):
            t = embed_text(text, symbol, module or "")
            out[path].append((embed_key(t), t, cid))
        return out

    def _known(self, texts: Mapping[str, str]) -> dict[str, np.ndarray]:
        """The vectors of these keys already made: memory, then the cache."""
        out = {k: self._memory[k] for k in texts if k in self._memory}
        want = [k for k in texts if k not in out]
        if want and self.cache is not None:
            out.update(self.cache.get(want))
        return out

    def _vectors(self, texts: Mapping[str, str], known: Mapping[str, np.ndarray] | None = None
                 ) -> dict[str, np.ndarray]:
        """key -> unit vector, from memory, the cache, and the model."""
        out = dict(known) if known is not None else self._known(texts)
        out = {k: v for k, v in out.items() if k in texts}
        missing = [k for k in texts if k not in out]
        if missing:
            _announce(len(missing), self.cache)
            vecs = self.embedder.embed([texts[k] for k in missing])
            fresh = {k: np.asarray(v, dtype=np.float32) for k, v in zip(missing, vecs, strict=True)}
            self.embedded += len(fresh)
            if self.cache is not None:
                self.cache.put(fresh)
            out.update(fresh)
        self._remember(out)
        return out

    def _remember(self, vecs: Mapping[str, np.ndarray]) -> None:
        for k, v in vecs.items():
            self._memory[k] = v
            self._memory.move_to_end(k)
        while len(self._memory) > self._memory_max:
            self._memory.popitem(last=False)


def select_chunks(query: str, per_file: Mapping[str, Sequence[tuple[str, str, int]]], known: Iterable[str],
                  n: int) -> set[str]:
    """Keys worth embedding: every key already embedded, and per file at most n others, those whose
    text shares the most query words (each word weighted by its idf among these chunks; ties: the
    file's order). Embedding is the cost of a cold re-rank; a file is scored by its best chunk, which
    shares the query's words far more often than not."""
    from repoloop.indexer.lexical_tokens import code_tokens

    known = set(known)
    terms = set(code_tokens(query, stop=True))
    chunk_terms = {k: terms.intersection(code_tokens(t)) for per in per_file.values() for k, t, _ in per
                   if k not in known} if terms else {}
    df: dict[str, int] = {}
    for ts in chunk_terms.values():
        for t in ts:
            df[t] = df.get(t, 0) + 1
    total = max(len(chunk_terms), 1)
    idf = {t: math.log(1 + total / c) for t, c in df.items()}
    out = set(known)
    for per in per_file.values():
        fresh = [(k, i) for i, (k, _, _) in enumerate(per) if k not in known]
        if len(fresh) > n:
            fresh.sort(key=lambda ki: (-sum(idf[t] for t in chunk_terms.get(ki[0], ())), ki[1]))
        out.update(k for k, _ in fresh[:n])
    return out


def _announce(n: int, cache: VectorCache | None) -> None:
    """Say on a terminal what the re-rank is about to embed (a cold re-rank takes seconds)."""
    if sys.stderr.isatty():
        where = f"; cached in {cache.path}" if cache is not None and cache.path is not None else ""
        print(f"re-rank: embedding {n:,} chunks of the candidate files (once{where})", file=sys.stderr, flush=True)


def reassign(order_old: Sequence[str], order_new: Sequence[str], best: Mapping[str, float]) -> dict[str, float]:
    """Per-file score multipliers that give the files of `order_new` the best-chunk scores the old
    order had at the same positions (so the files come first in the new order, and each file's
    chunks keep their ratios to its best one). A hair of decrease keeps tied scores in order."""
    out = {}
    for i, (old, new) in enumerate(zip(order_old, order_new, strict=True)):
        if best[new] > 0:
            out[new] = best[old] * (1.0 - 1e-9 * i) / best[new]
    return out


def first_files(paths: Iterable[str], n: int) -> list[str]:
    """The first n distinct paths, in order."""
    out: dict[str, None] = {}
    for p in paths:
        if len(out) >= n:
            break
        out.setdefault(p)
    return list(out)
