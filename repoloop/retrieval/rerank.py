"""Dense re-rank: the fused ranking's top files re-ordered by how close their best chunk is to the query.

Why a second stage: the lexical, name, trace and graph signals find the right file among their top
10 far more often than they put it first (SWE-bench dev, 214 issues at their base commits: Acc@10
82.2 but Acc@1 52.3). Embedding every chunk of a big repository is slow on a CPU (~100k chunks for
one django snapshot), but a query only needs the chunks of the files it is about to rank: ~900
chunks for 20 files, embedded once and cached (repoloop.indexer.vector_cache). For an index built
with `--no-embed`; an embedded index has the dense signal in the fusion already (and re-ranking it
measured worse). Measured in benchmarks/RESULTS.md ("Dense re-rank in the product").

The new file score is `max cosine(query, chunk) - penalty * ln(fused rank)`: the dense evidence
decides among candidates the first stage found, and the first stage's order is a prior that only a
clearly closer file overturns (benchmarks/loc_rerank_dense.py compared max / top-2 / soft-max
aggregation, rank-fusion and score-fusion variants; this one was best on Acc@1 and MRR).
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from repoloop.indexer.embed import Embedder
from repoloop.indexer.embed_phase import MAX_EMBED_CHARS, embed_key, embed_text
from repoloop.indexer.vector_cache import VectorCache

log = logging.getLogger(__name__)

class DenseReranker:
    """Re-orders candidate files for one query; chunk vectors come from memory, then `cache` (those
    embedded earlier), then the model (and go to the cache)."""

    def __init__(self, conn: sqlite3.Connection, embedder: Embedder, *, penalty: float,
                 cache: VectorCache | None = None, memory: int = 50_000) -> None:
        self.conn = conn
        self.embedder = embedder
        self.penalty = penalty
        self.cache = cache
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()  # warm processes: recent vectors
        self._memory_max = memory
        self.embedded = 0  # chunk texts embedded by this reranker (logs, tests, benchmarks read it)

    def query_vector(self, query: str) -> np.ndarray:
        return np.asarray(self.embedder.embed([query[: MAX_EMBED_CHARS * 2]])[0], dtype=np.float32)

    def best_chunks(self, qvec: Sequence[float] | np.ndarray, files: Sequence[str]) -> dict[str, tuple[float, int]]:
        """File -> (its best chunk's cosine similarity to the query, that chunk's id); files with no
        vector left out."""
        qvec = np.asarray(qvec, dtype=np.float32)
        keys = self._chunk_keys(files)
        vecs = self._vectors({k: t for per in keys.values() for k, t, _ in per})
        out = {}
        for path, per in keys.items():
            sims = [(float(vecs[k] @ qvec), cid) for k, _, cid in per if k in vecs]
            if sims:
                out[path] = max(sims)
        return out

    def order(self, qvec: Sequence[float] | np.ndarray, files: Sequence[str]
              ) -> tuple[list[str], dict[str, tuple[float, int]]]:
        """The candidates re-ordered (best first) and each file's best chunk (see best_chunks)."""
        best = self.best_chunks(qvec, files)
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

    def _vectors(self, texts: Mapping[str, str]) -> dict[str, np.ndarray]:
        """key -> unit vector, from memory, the cache, and the model."""
        out = {k: self._memory[k] for k in texts if k in self._memory}
        want = [k for k in texts if k not in out]
        if want and self.cache is not None:
            out.update(self.cache.get(want))
        missing = [k for k in texts if k not in out]
        if missing:
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
