"""The dependency graph a retriever ranks over: which one is in service, and its loading.

Why a class: the graph is ranked in one of two ways and changes under a warm process. By default
`LocalRanker` reads adjacency from SQLite near the seeds (a one-shot CLI query never loads the whole
graph, seconds on a big repo); `warm()` loads the whole graph in memory where it is not huge (`full`).
After an index pass a changed whole graph is re-read on a helper thread while the old one keeps
ranking, and put into service once ready. Each of those states is a field here.
"""

from __future__ import annotations

import logging
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from repoloop.indexer.store import IndexStore

if TYPE_CHECKING:
    from repoloop.retrieval.graph import RepoGraph
    from repoloop.retrieval.local_rank import LocalRanker

log = logging.getLogger(__name__)


class GraphRanker:
    """Personalized PageRank from seed nodes over the index's graph; {} where there is none."""

    def __init__(self, store: IndexStore) -> None:
        self.store = store
        self.full = False  # True: the whole graph in memory (warm(), comparisons); False: SQLite-local
        self.local: LocalRanker | None = None  # the local ranker in service (read lazily from SQLite)
        self.graph: RepoGraph | None = None  # the whole graph in service (full mode)
        self.pending: Future[RepoGraph] | None = None  # a whole graph being read beside it
        self.reloads = 0  # whole-graph re-reads refresh() started (logs, tests, benchmarks read it)
        self._loader: ThreadPoolExecutor | None = None

    def load_full(self) -> None:
        """Rank over the whole graph from now on, read now."""
        self.full, self.local, self.graph = True, None, None
        self._ensure()

    def rank(self, seeds: dict[str, float], tol: float) -> dict[str, float]:
        """Node -> PageRank personalized to `seeds`; a graph problem ranks nothing, never raises
        (loading a whole graph may)."""
        if not seeds:
            return {}
        self.swap()
        self._ensure()
        try:
            if self.graph is not None:
                from repoloop.retrieval.graph import pagerank

                # a looser tolerance: same top ranks (checked on the stdlib graph), half the time
                return dict(pagerank(self.graph, seeds, tol=tol, max_iter=50))
            assert self.local is not None
            return self.local.rank(seeds)
        except Exception:  # noqa: BLE001 - a graph problem must not break search
            return {}

    def refresh(self, edges_changed: bool) -> None:
        """After an index pass. The generation moves only when the ranking edges did (a body-only
        edit keeps it), so a whole graph is re-read then, or when it was read mid-pass (files stored,
        edges not yet). The local ranker read its adjacency lazily, maybe mid-pass: it restarts on
        any change (cheap: refilled on demand from the indexes)."""
        if self.full and self.graph is not None:
            if edges_changed or not self._complete():
                if self.pending is not None:
                    self.pending.cancel()  # superseded before it started: only the newest is read
                self.pending = self._thread().submit(_load_graph_readonly, self.store.db_path)
                self.reloads += 1
        else:
            self.local, self.graph = None, None

    def reopen(self, store: IndexStore) -> None:
        """A new database file: everything is read again from `store`, on demand."""
        self.store = store
        self.local, self.graph, self.pending = None, None, None

    def close(self) -> None:
        if self._loader is not None:
            self._loader.shutdown(wait=True)
            self._loader = None

    def _ensure(self) -> None:
        if self.full:
            if self.graph is None:
                from repoloop.retrieval.graph import load_graph

                self.graph = load_graph(self.store)
        elif self.local is None:
            from repoloop.retrieval.local_rank import LocalRanker

            self.local = LocalRanker(self.store.conn)

    def _complete(self) -> bool:
        """Whether the whole graph in service (or the one being read) was read from complete edges."""
        g = self.graph
        if self.pending is not None:
            if not self.pending.done():
                return False  # it may have begun mid-pass: read once more after it
            try:
                g = self.pending.result()
            except Exception:  # noqa: BLE001 - a failed load: read again
                return False
        return g is None or g.complete

    def swap(self) -> None:
        """Put a graph read beside the one in service into service once it is ready (never waits)."""
        nxt = self.pending
        if nxt is None or not nxt.done():
            return
        self.pending = None
        if self.graph is None:
            return
        try:
            self.graph = nxt.result()
        except Exception as e:  # noqa: BLE001 - keep ranking with the old graph
            log.warning("reloading the graph failed, keeping the previous one: %s", e)

    def _thread(self) -> ThreadPoolExecutor:
        if self._loader is None:
            self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="repoloop-graph")
        return self._loader


def _load_graph_readonly(db_path: Path) -> RepoGraph:
    """The whole graph, read through a connection of its own (the retriever's belongs to its thread)."""
    from repoloop.retrieval.graph import load_graph

    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    try:
        return load_graph(conn)
    finally:
        conn.close()
