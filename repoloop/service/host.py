"""One warm Retriever for a long-running process, touched by one thread only.

SQLite connections belong to the thread that opened them and the embedding model is not meant
for concurrent calls, so every call runs on the single worker thread that owns the Retriever.
A reload (after the watcher re-indexed) refreshes the Retriever in place when it can (model,
chroma client and graph stay loaded); otherwise a new Retriever is opened and warmed on a new thread while the old one keeps answering, and calls
move over to the new one only once it is ready: queries never wait for a model load, and never
see half of an update.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from repoloop.retrieval.api import Retriever

T = TypeVar("T")
log = logging.getLogger(__name__)


def _one_thread(name: str) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)


@dataclass(eq=False)
class _Slot:
    """A Retriever and the one thread allowed to touch it."""

    executor: ThreadPoolExecutor = field(default_factory=lambda: _one_thread("retriever"))
    retriever: Retriever | None = None


class RetrieverHost:
    """Owns the Retriever and its thread; `call` runs a function of the Retriever on that thread."""

    def __init__(self, opener: Callable[[], Retriever]) -> None:
        self._opener = opener
        self._lock = threading.Lock()  # guards _slot and generation
        self._slot = _Slot()
        self._reloader = _one_thread("retriever-reload")  # one reload at a time, in order
        self.generation = 0  # bumped on every successful (re)load; tests and logs read it

    def start(self, *, warm_in_background: bool = False) -> None:
        """Open the Retriever now, in its thread (errors such as a missing index raise here), and
        warm it (model, collection, caches) so the first query does not pay for that. With
        `warm_in_background` the warming runs after this returns, so a server can answer the
        client's handshake at once; the first query then queues behind it."""
        slot = self._slot
        slot.executor.submit(self._open_into, slot, False).result()
        with self._lock:
            self.generation += 1
        warming = slot.executor.submit(self._warm_slot, slot)
        if not warm_in_background:
            warming.result()
        else:
            warming.add_done_callback(_log_failure)

    def submit(self, fn: Callable[[Retriever], T]) -> Future[T]:
        with self._lock:  # submit under the lock: a reload cannot retire this slot in between
            slot = self._slot
            return slot.executor.submit(self._run, slot, fn)

    async def call(self, fn: Callable[[Retriever], T]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def reload(self, *, reopen: bool = False) -> Future[None]:
        """See a fresh index: `refresh()` the Retriever in place if it has one (cheap: its model,
        clients and caches stay), else, or if that fails, or with `reopen`, open and warm a new one
        beside it and switch over. If that fails, the old one stays in service."""
        return self._reloader.submit(self._reload, reopen)

    def close(self) -> None:
        self._reloader.shutdown(wait=True)
        with self._lock:
            slot = self._slot
        try:
            slot.executor.submit(self._empty, slot).result(timeout=30)
        finally:
            slot.executor.shutdown(wait=False)

    # -- on the reload thread ------------------------------------------------------------
    def _reload(self, reopen: bool) -> None:
        with self._lock:
            current = self._slot
        refresh: Any = getattr(current.retriever, "refresh", None)
        if callable(refresh) and not reopen:
            try:
                current.executor.submit(refresh).result()
            except Exception as e:  # noqa: BLE001 - fall back to a fresh Retriever beside this one
                log.warning("refreshing the Retriever in place failed (%s); opening a new one", e)
            else:
                with self._lock:
                    self.generation += 1
                return
        fresh = _Slot()
        try:
            fresh.executor.submit(self._open_into, fresh, True).result()
        except BaseException:
            fresh.executor.shutdown(wait=False)
            raise
        with self._lock:
            old, self._slot = self._slot, fresh
            self.generation += 1
        old.executor.submit(self._empty, old)  # after the calls already queued on it
        old.executor.shutdown(wait=False)

    # -- on a slot's own thread ----------------------------------------------------------
    def _open_into(self, slot: _Slot, warm: bool) -> None:
        r = self._opener()
        if warm:
            try:
                _warm(r)
            except BaseException:
                r.close()
                raise
        slot.retriever = r

    def _warm_slot(self, slot: _Slot) -> None:
        if slot.retriever is not None:
            _warm(slot.retriever)

    def _run(self, slot: _Slot, fn: Callable[[Retriever], T]) -> T:
        if slot.retriever is None:
            self._open_into(slot, False)
        assert slot.retriever is not None
        return fn(slot.retriever)

    @staticmethod
    def _empty(slot: _Slot) -> None:
        if slot.retriever is not None:
            r, slot.retriever = slot.retriever, None
            try:
                r.close()
            except Exception:  # a stale handle failing to close must not take the process down
                log.exception("closing a Retriever failed")


def _warm(r: Retriever) -> None:
    warm: Any = getattr(r, "warm", None)  # load the model, open the collection, fill caches now
    if callable(warm):
        warm()


def _log_failure(f: Future[None]) -> None:
    if not f.cancelled() and f.exception() is not None:
        log.error("warming the Retriever failed: %s", f.exception())
