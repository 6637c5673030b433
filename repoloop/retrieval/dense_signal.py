"""The dense signal inside a retriever: opened on first use, run beside the lexical signals.

Why its own part: the query embedding and the vector search run on a worker thread while the
lexical signals and the graph run on the caller's (the latency is the longer of the two, not their
sum), and a vector store or model that fails is a logged degradation, never a failed query. It also
keeps the model: one given by the caller, or the one the re-rank loaded, survives a reopened index.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING

from repoloop.indexer.store import IndexStore
from repoloop.retrieval.dense_ahead import DenseAhead, Nearest
from repoloop.retrieval.fusion import Ranked
from repoloop.retrieval.limits import current_deadline

if TYPE_CHECKING:
    import sqlite3

    from repoloop.indexer.config import EmbedConfig
    from repoloop.indexer.embed.embedders import Embedder
    from repoloop.retrieval.dense import Dense

log = logging.getLogger(__name__)



class DenseSignal:
    def __init__(self, store: IndexStore, index_dir: Path, *, embedder: Embedder | None,
                 chroma_url: str | None, use_array: bool, embed_config: EmbedConfig | None = None,
                 ahead: DenseAhead | None = None) -> None:
        self.store = store
        self.ahead = ahead  # the first query's answer, computed in a forked child (a one-shot CLI query)
        self.embed_config = embed_config  # how a query embedder is made (an endpoint's URL, the backend, ...)
        self.index_dir = index_dir
        self.embedder = embedder  # the model to embed queries with, where it made the index
        self._chroma_url = chroma_url
        self._use_array = use_array
        self._dense: Dense | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def dense(self) -> Dense:
        if self._dense is None:
            from repoloop.retrieval.dense import Dense

            self._dense = Dense(self.store, self.index_dir, embedder=self.embedder, chroma_url=self._chroma_url,
                                use_array=self._use_array, embed_config=self.embed_config)
        return self._dense

    def prepare(self) -> bool:
        """Open the vector side on this thread (it owns the SQLite connection); False if there is
        nothing to search. Raises what the model or the store raise."""
        return bool(self.dense.prepare())

    def warm(self) -> None:
        self.dense.warm()

    def submit(self, query: str, depth: int) -> Future[Nearest]:
        """The nearest vectors, computed on the worker thread (call `prepare` first)."""
        return self._pool().submit(self.dense.nearest, query, depth)

    def take_ahead(self, query: str, depth: int) -> Future[Nearest | None] | None:
        """The answer the forked child computes for this query, awaited on the worker thread (None
        from it: the child had none, search in process); None when no child computes this query
        (one computing another is stopped). Nothing here imports numpy or loads the model."""
        ahead, self.ahead = self.ahead, None
        if ahead is None:
            return None
        if not ahead.matches(query, depth):
            ahead.discard()
            return None
        return self._pool().submit(ahead.result)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="repoloop-dense")
        return self._executor

    def collect(self, pending: Future[Nearest] | Future[Nearest | None] | None) -> Nearest | None:
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

    def to_chunks(self, nearest: Nearest, depth: int) -> Ranked:
        return nearest_chunks(self.store.conn, nearest, depth)

    def refresh(self) -> None:
        if self._dense is not None:
            self._dense.refresh()

    def reopen(self, store: IndexStore) -> None:
        """A new database file: the vector side is opened afresh on next use; the model stays."""
        self.store = store
        if self._dense is not None and self.embedder is None:
            self.embedder = self._dense.embedder  # keep the loaded model
        self._dense = None

    def close(self) -> None:
        if self.ahead is not None:
            self.ahead.discard()
            self.ahead = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def nearest_chunks(conn: sqlite3.Connection, hits: Nearest, limit: int) -> Ranked:
    """Map vector ids (embedding keys) to the chunks that use them (one vector may serve several).
    SQLite only: an answer computed ahead is mapped without importing numpy."""
    if not hits:
        return Ranked("dense", [], [])
    sim = dict(hits)
    q = ",".join("?" * len(hits))
    rows = conn.execute(
        "SELECT e.key, e.chunk_id FROM embed_keys e JOIN chunks c ON c.id=e.chunk_id AND c.hash=e.chunk_hash"
        f" WHERE e.key IN ({q})", [k for k, _ in hits]).fetchall()
    scored = sorted(((sim[k], cid) for k, cid in rows), key=lambda x: (-x[0], x[1]))[:limit]
    return Ranked("dense", [cid for _, cid in scored], [s for s, _ in scored])
