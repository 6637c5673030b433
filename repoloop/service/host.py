"""One warm Retriever for a long-running process, touched by one thread only.

SQLite connections belong to the thread that opened them and the embedding model is not meant
for concurrent calls, so every call runs on the single worker thread that owns the Retriever.
A reload (after the watcher re-indexed) refreshes the Retriever in place when it can (model,
chroma client and graph stay loaded); otherwise a new Retriever is opened and warmed on a new thread while the old one keeps answering, and calls
move over to the new one only once it is ready: queries never wait for a model load, and never
see half of an update.

That one thread is shared by every client, so a call can carry a deadline (`call(fn, timeout=)`):
the Retriever checks it as it ranks and stops itself (a thread cannot be killed from outside), and
the caller gets QueryTimeoutError; a caller that goes away cancels its call the same way, and
`close()` cancels them all (issue 14: one slow query must not hold every client, nor a server
whose client is gone).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

from repoloop.retrieval import Retriever
from repoloop.retrieval.limits import Deadline

T = TypeVar("T")
log = logging.getLogger(__name__)

GRACE_S = 2.0  # past its deadline, a caller stops waiting for a call that did not stop itself
QUEUED_POLL_S = 0.5  # how often a waiting caller looks whether its call has started


def _one_thread(name: str) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)


@dataclass(eq=False)
class _Job:
    """One call's time limit: its deadline starts when the call starts on the retriever thread (time
    queued behind other calls, or behind warming, does not count)."""

    seconds: float | None
    deadline: Deadline | None = None
    cancelled: bool = False

    def begin(self) -> Deadline:
        self.deadline = Deadline(self.seconds)
        if self.cancelled:
            self.deadline.cancel()
        return self.deadline

    def cancel(self) -> None:
        self.cancelled = True
        if self.deadline is not None:
            self.deadline.cancel()

    def wait_s(self) -> float:
        """How long the caller may wait before it looks again (or gives up: `overdue`)."""
        d = self.deadline
        if d is None or math.isinf(d.at):
            return QUEUED_POLL_S
        return max(0.01, d.at + GRACE_S - time.monotonic())

    def overdue(self) -> bool:
        d = self.deadline
        return d is not None and time.monotonic() >= d.at + GRACE_S


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
        self._reloading: Future[None] | None = None  # the last reload asked for
        self._running: set[Deadline] = set()  # deadlines of the calls running now (guarded by _lock)
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

    def submit(self, fn: Callable[[Retriever], T], *, timeout: float | None = None) -> Future[T]:
        """Run `fn(retriever)` on the retriever thread; with `timeout`, it stops with
        QueryTimeoutError once it has run that many seconds."""
        return self._submit(fn, _Job(timeout))

    def _submit(self, fn: Callable[[Retriever], T], job: _Job) -> Future[T]:
        with self._lock:  # submit under the lock: a reload cannot retire this slot in between
            slot = self._slot
            return slot.executor.submit(self._run, slot, fn, job)

    async def call(self, fn: Callable[[Retriever], T], *, timeout: float | None = None) -> T:
        """`submit`, awaited. With `timeout` the caller gets QueryTimeoutError at the latest
        GRACE_S after the deadline, even if the call is stuck where it cannot check it (a
        busy-waiting SQLite read, a model load); it then stops at its next check. A caller that
        is cancelled (its client went away) cancels the call the same way."""
        job = _Job(timeout)
        fut = self._submit(fn, job)
        waiter = asyncio.wrap_future(fut)
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=job.wait_s())
                if done:
                    return waiter.result()
                if job.overdue():
                    assert job.deadline is not None
                    err = job.deadline.error()
                    job.cancel()
                    waiter.add_done_callback(_consume)
                    log.warning("a call overran its %g s deadline and did not stop itself; answering without it",
                                timeout)
                    raise err
        except asyncio.CancelledError:
            job.cancel()
            fut.cancel()  # not started yet: never runs
            waiter.add_done_callback(_consume)
            raise

    def cancel_running(self) -> int:
        """Cancel the calls running now (each stops at its next deadline check); how many."""
        with self._lock:
            running = list(self._running)
        for d in running:
            d.cancel()
        return len(running)

    def reload(self, *, reopen: bool = False) -> Future[None]:
        """See a fresh index: `refresh()` the Retriever in place if it has one (cheap: its model,
        clients and caches stay), else, or if that fails, or with `reopen`, open and warm a new one
        beside it and switch over. If that fails, the old one stays in service."""
        fut = self._reloader.submit(self._reload, reopen)
        self._reloading = fut
        return fut

    def close(self, timeout: float = 30.0) -> bool:
        """Cancel the running calls and drop the queued ones, then close the Retriever on its
        thread. False if that thread did not come back within `timeout` (stuck where it cannot
        check its deadline): a process may then exit without it."""
        end = time.monotonic() + timeout
        self.cancel_running()
        self._reloader.shutdown(wait=False, cancel_futures=True)
        reloading = self._reloading
        if reloading is not None:
            try:
                reloading.result(timeout=max(0.0, end - time.monotonic()))
            except FutureTimeout:
                log.warning("a reload did not finish within %g s of closing", timeout)
                return False
            except BaseException:  # noqa: BLE001 - its failure was reported to whoever asked for it
                pass
        self.cancel_running()  # anything that started meanwhile
        with self._lock:
            slot = self._slot
        try:
            slot.executor.submit(self._empty, slot).result(timeout=max(0.0, end - time.monotonic()))
            return True
        except FutureTimeout:
            log.warning("the retriever thread did not stop within %g s of closing", timeout)
            return False
        finally:
            slot.executor.shutdown(wait=False, cancel_futures=True)

    # -- on the reload thread ------------------------------------------------------------
    def _reload(self, reopen: bool) -> None:
        with self._lock:
            current = self._slot
        retriever = current.retriever
        if retriever is not None and not reopen:
            try:
                current.executor.submit(retriever.refresh).result()
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

    def _run(self, slot: _Slot, fn: Callable[[Retriever], T], job: _Job) -> T:
        if slot.retriever is None:
            self._open_into(slot, False)
        r = slot.retriever
        assert r is not None
        d = job.begin()
        with self._lock:
            self._running.add(d)
        try:
            with r.time_limit(d):  # the Retriever's own: it interrupts SQLite statements too
                d.check()  # cancelled while it waited in the queue
                return fn(r)
        finally:
            with self._lock:
                self._running.discard(d)

    @staticmethod
    def _empty(slot: _Slot) -> None:
        if slot.retriever is not None:
            r, slot.retriever = slot.retriever, None
            try:
                r.close()
            except Exception:  # a stale handle failing to close must not take the process down
                log.exception("closing a Retriever failed")


def _warm(r: Retriever) -> None:
    r.warm()  # load the model, open the collection, fill caches now


def _consume(f: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a call nobody waits for any more (no "never retrieved" warning)."""
    if not f.cancelled():
        f.exception()


def _log_failure(f: Future[None]) -> None:
    if not f.cancelled() and f.exception() is not None:
        log.error("warming the Retriever failed: %s", f.exception())
