"""Bounds on what one query may cost: its length, and (in a long-running server) its time.

Why: a query is untrusted input (a pasted issue, an agent's step, an MCP client). Its analysis is
linear in its length (repoloop.retrieval.query), but every recognised identifier, path and term
costs index look-ups, so the length itself is capped, here and nowhere else:

- `search` (CLI, MCP `search_code`, the agent's `search_code` tool) refuses a query longer than
  MAX_QUERY_CHARS with a QueryTooLongError that names the limit (the CLI exits 2, MCP answers a
  tool error);
- `context` (CLI, MCP `get_context`, the agent's task text) analyses the first MAX_QUERY_CHARS
  characters of a longer task (`bounded_prefix`): a long issue still gets its context.

A server also bounds each query's time (`time_limit`): the Retriever checks the current deadline
between its signals and inside its per-identifier loops, SQLite statements are interrupted through
a progress handler, and the query fails with QueryTimeoutError. A Python thread cannot be killed,
so the thread that runs the query stops itself at the next check; the next query then runs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from repoloop.errors import RepoloopError

MAX_QUERY_CHARS = 32_768  # the longest SWE-bench Verified issue is ~10k; a pasted trace fits
CONTEXT_HITS = 30  # chunks a context pack is fitted from, one by one (the CLI's dense half starts on it)
MAX_IDENT_CHARS = 256  # a longer "identifier" is noise, not a name: not looked up as one
DEFAULT_QUERY_TIMEOUT_S = 20.0  # `repoloop serve --query-timeout`; a warm query takes milliseconds


class QueryTooLongError(RepoloopError):
    """A search query over MAX_QUERY_CHARS."""


class QueryTimeoutError(RepoloopError):
    """A query that ran past its deadline (or whose client went away) and was stopped."""


def check_query_length(query: str, what: str = "query") -> None:
    """Refuse a search query over the cap, naming the limit (not silently cut: a search for
    half a paste is not what was asked)."""
    if len(query) > MAX_QUERY_CHARS:
        raise QueryTooLongError(
            f"the {what} is {len(query):,} characters, over the limit of {MAX_QUERY_CHARS:,} for a search: "
            f"search for the relevant part (the error, a few identifiers), or ask for context "
            f"(`repoloop context`, get_context), which analyses the first {MAX_QUERY_CHARS:,} characters of a task")


def bounded_prefix(text: str, limit: int = MAX_QUERY_CHARS) -> str:
    """The first `limit` characters of `text`, cut at a line or word break near the end when there
    is one (a cut identifier or path would be a false lead)."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    floor = limit - limit // 16
    for sep in ("\n", " "):
        cut = head.rfind(sep, floor)
        if cut > 0:
            return head[:cut]
    return head


class Deadline:
    """A point in time after which the current query gives up (None: no time limit); `cancel()`
    ends it at once (the client went away, the server is stopping)."""

    __slots__ = ("at", "seconds", "cancelled")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.at = math.inf if seconds is None else time.monotonic() + seconds
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def expired(self) -> bool:
        return self.cancelled or time.monotonic() >= self.at

    def remaining(self) -> float | None:
        """Seconds left; None if there is no time limit."""
        if self.cancelled:
            return 0.0
        return None if math.isinf(self.at) else max(0.0, self.at - time.monotonic())

    def error(self) -> QueryTimeoutError:
        if self.cancelled:
            return QueryTimeoutError("the query was cancelled (its client went away, or the server is stopping)")
        return QueryTimeoutError(f"the query took longer than the {self.seconds:g} s per-query deadline "
                                 "and was stopped; try a shorter or more specific query")

    def check(self) -> None:
        if self.expired():
            raise self.error()


_current: ContextVar[Deadline | None] = ContextVar("repoloop_query_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The deadline of the query running on this thread, if any."""
    return _current.get()


def check_deadline() -> None:
    """Raise QueryTimeoutError if the current query's deadline has passed (cheap: call it in loops)."""
    d = _current.get()
    if d is not None and d.expired():
        raise d.error()


@contextmanager
def deadline_scope(d: Deadline | None) -> Iterator[Deadline | None]:
    """Make `d` the current query's deadline on this thread for the block."""
    token = _current.set(d)
    try:
        yield d
    finally:
        _current.reset(token)

# A file re-read to render a hit: bigger than any file the indexer keeps (1 MiB by default, more
# with --max-file-size), small enough that a file swapped since indexing cannot flood memory.
MAX_HIT_FILE_BYTES = 64 << 20
