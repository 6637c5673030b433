"""One warm Retriever for a long-running process, touched by one thread only.

SQLite connections belong to the thread that opened them and the embedding model is not meant
for concurrent calls, so every call runs on a single worker thread. That thread is also where a
reload (after the watcher re-indexed) swaps the Retriever, so a query never sees half of an update.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from repoloop.retrieval.api import Retriever

T = TypeVar("T")
log = logging.getLogger(__name__)


class RetrieverHost:
    """Owns the Retriever and its thread; `call` runs a function of the Retriever on that thread."""

    def __init__(self, opener: Callable[[], Retriever]) -> None:
        self._opener = opener
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retriever")
        self._retriever: Retriever | None = None
        self.generation = 0  # bumped on every successful (re)load; tests and logs read it

    def start(self, *, warm_in_background: bool = False) -> None:
        """Open the Retriever now, in its thread (errors such as a missing index raise here), and
        warm it (model, collection, caches) so the first query does not pay for that. With
        `warm_in_background` the warming runs after this returns, so a server can answer the
        client's handshake at once; the first query then queues behind it."""
        self._executor.submit(self._load_cold).result()
        warming = self._executor.submit(self._warm_current)
        if not warm_in_background:
            warming.result()
        else:
            warming.add_done_callback(_log_failure)

    def submit(self, fn: Callable[[Retriever], T]) -> Future[T]:
        return self._executor.submit(self._run, fn)

    async def call(self, fn: Callable[[Retriever], T]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def reload(self) -> Future[None]:
        """See a fresh index: refresh the Retriever in place if it can, else open a new one.

        The old Retriever stays in service until the new one is open, so a failed reopen (the
        index being rewritten at that moment, say) keeps the server answering.
        """
        return self._executor.submit(self._reload)

    def close(self) -> None:
        def _close() -> None:
            if self._retriever is not None:
                self._retriever.close()
                self._retriever = None

        try:
            self._executor.submit(_close).result(timeout=30)
        finally:
            self._executor.shutdown(wait=False)

    # -- on the worker thread ------------------------------------------------------------
    def _open_warm(self) -> Retriever:
        r = self._opener()
        _warm(r)
        return r

    def _load(self) -> None:
        self._retriever = self._open_warm()
        self.generation += 1

    def _load_cold(self) -> None:
        self._retriever = self._opener()
        self.generation += 1

    def _warm_current(self) -> None:
        if self._retriever is not None:
            _warm(self._retriever)

    def _run(self, fn: Callable[[Retriever], T]) -> T:
        if self._retriever is None:
            self._load()
        assert self._retriever is not None
        return fn(self._retriever)

    def _reload(self) -> None:
        old = self._retriever
        refresh: Any = getattr(old, "refresh", None)
        if old is not None and callable(refresh):
            refresh()
            self.generation += 1
            return
        new = self._open_warm()
        self._retriever = new
        self.generation += 1
        if old is not None:
            try:
                old.close()
            except Exception:  # a stale handle failing to close must not take the new one down
                log.exception("closing the previous Retriever failed")


def _warm(r: Retriever) -> None:
    warm: Any = getattr(r, "warm", None)  # load the model, open the collection, fill caches now
    if callable(warm):
        warm()


def _log_failure(f: Future[None]) -> None:
    if not f.cancelled() and f.exception() is not None:
        log.error("warming the Retriever failed: %s", f.exception())
