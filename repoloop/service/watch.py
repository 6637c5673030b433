"""Keep the index fresh while files change: watchdog events, debounced, one index pass at a time.

Events are collected into a set of repo-relative paths; after a quiet period (default 300 ms, at
most `max_wait` after the first event of a burst) one pass re-indexes them. Directory events
(created, deleted, moved) and big bursts (a `git checkout`: hundreds of paths) turn the pass into a
full incremental run, which the pipeline makes cheap (only files whose hash changed are re-parsed)
and which also sees deletions inside a vanished directory. Exactly one thread runs passes, so two
never overlap; events that arrive during a pass queue the next one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from repoloop.errors import IndexLockedError
from repoloop.indexer.config import EmbedConfig

log = logging.getLogger(__name__)

_IGNORED_EVENT_TYPES = frozenset({"opened", "closed_no_write", "attrib"})
_ALWAYS_IGNORED_DIRS = frozenset({".git", ".hg", ".svn"})


def _pruned_dirs() -> frozenset[str]:
    """The folders the indexer's walk never enters (dependencies, caches): their churn is noise."""
    from repoloop.indexer.walk import PRUNED_DIRS

    return _ALWAYS_IGNORED_DIRS | PRUNED_DIRS


class IndexPass(Protocol):
    """Re-index `paths` (repo-relative, posix), or everything that changed when `paths` is None."""

    def __call__(self, paths: frozenset[str] | None) -> Any: ...


@dataclass(slots=True)
class UpdateReport:
    """What one pass did; handed to `on_update` and printed by `repoloop watch`."""

    paths: tuple[str, ...]  # the changed paths that triggered it (all of them, even for a full pass)
    full: bool  # a full incremental run rather than just `paths`
    seconds: float
    result: Any = None  # whatever the pipeline returned (its summary)
    error: str | None = None

    def line(self) -> str:
        what = "full incremental pass" if self.full else f"{len(self.paths)} path(s)"
        if self.error:
            return f"index update failed ({what}, {self.seconds:.2f} s): {self.error}"
        shown = ", ".join(self.paths[:3]) + (", …" if len(self.paths) > 3 else "")
        return f"re-indexed {what} in {self.seconds:.2f} s" + (f": {shown}" if shown else "")


class PipelineIndexer:
    """The real index pass: `pipeline.index_paths` for a few paths when the pipeline has it,
    else `pipeline.index_repo`, which is incremental (only changed files are re-parsed).

    Every pass embeds with the same embedder, loaded once for the life of the watcher (given, e.g.
    the one a server shares with its Retriever, or made here from `embed_config`, which the caller
    read at its edge; it also says where vectors go)."""

    def __init__(self, repo: Path, index_dir: Path | None = None, *, embed: bool = True,
                 embedder: Any = None, embed_config: EmbedConfig | None = None) -> None:
        self.repo = repo
        self.index_dir = index_dir
        self.embed = embed
        self.embedder = embedder
        self.embed_config = embed_config or EmbedConfig()
        if embed and embedder is None:
            from repoloop.indexer.embed.embedders import embedder_from_config
            from repoloop.service.warm import SharedEmbedder

            # cheap: the model loads on first use
            self.embedder = SharedEmbedder(embedder_from_config(self.embed_config))

    def __call__(self, paths: frozenset[str] | None) -> Any:
        from repoloop.indexer import pipeline

        extra = {"embedder": self.embedder, "embed_config": self.embed_config} if self.embed else {}
        index_paths = getattr(pipeline, "index_paths", None)
        if paths is not None and callable(index_paths):
            return _call_quietly(index_paths, self.repo, sorted(paths), self.index_dir, embed=self.embed, **extra)
        return _call_quietly(pipeline.index_repo, self.repo, self.index_dir, embed=self.embed, **extra)


def _call_quietly(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Ask the pipeline for no progress bars when it takes the option: a watcher runs for hours
    and, under `serve`, shares the process with a stdio protocol."""
    import inspect

    params = inspect.signature(fn).parameters
    for name, value in (("progress", False), ("quiet", True)):
        if name in params:
            kwargs[name] = value
    return fn(*args, **kwargs)


class PathFilter:
    """Which changed paths matter: not the index directory, not VCS internals, not git-ignored."""

    def __init__(self, repo: Path, index_dir: Path | None = None) -> None:
        self.repo = repo.resolve()
        self.index_dir = (index_dir or self.repo / ".repoloop").resolve()
        self._spec: Any = None
        self._pruned = _pruned_dirs()
        self.reload()

    def reload(self) -> None:
        """Re-read the root .gitignore (called when it changes)."""
        import pathspec

        from repoloop.indexer.safe_read import read_repo_file
        from repoloop.indexer.walk import IGNORE_FILE_BYTES, parse_ignore_lines

        # Through the indexer's reader: a .gitignore swapped for a FIFO must not hang the watcher.
        data = read_repo_file(str(self.repo / ".gitignore"), str(self.repo), IGNORE_FILE_BYTES, prefix=True)
        lines = [] if isinstance(data, str) else data.decode("utf-8", errors="replace").splitlines()
        # A rule git would skip (a lone `!`) is skipped here too, never fatal to the watcher.
        self._spec = parse_ignore_lines(lines)[0] or pathspec.GitIgnoreSpec.from_lines([])

    def relative(self, path: str | bytes) -> str | None:
        """The repo-relative posix path of `path`, or None when it should be ignored."""
        p = Path(path.decode() if isinstance(path, bytes) else path)
        if p == self.index_dir or self.index_dir in p.parents:
            return None
        try:
            rel = p.relative_to(self.repo)
        except ValueError:
            return None
        if not rel.parts or self._pruned.intersection(rel.parts):
            return None
        posix = rel.as_posix()
        if self._spec.match_file(posix) or self._spec.match_file(posix + "/"):
            return None
        return posix


@dataclass
class _Pending:
    paths: set[str] = field(default_factory=set)
    full: bool = False
    first: float = 0.0  # monotonic time of the first event of this batch
    last: float = 0.0  # ... and of the latest
    not_before: float = 0.0  # back-off after a failed pass

    def __bool__(self) -> bool:
        return bool(self.paths) or self.full


class Watcher:
    """Debounces file events into index passes, run one at a time on one thread."""

    def __init__(
        self,
        repo: Path,
        index_pass: IndexPass,
        *,
        index_dir: Path | None = None,
        debounce: float = 0.3,
        max_wait: float = 5.0,
        max_paths: int = 200,
        on_update: Callable[[UpdateReport], None] | None = None,
        polling: bool = False,
    ) -> None:
        self.repo = repo.resolve()
        self.index_pass = index_pass
        self.filter = PathFilter(self.repo, index_dir)
        self.debounce = debounce
        self.max_wait = max_wait
        self.max_paths = max_paths
        self.on_update = on_update
        self.polling = polling
        self.passes = 0  # completed passes, failed ones included
        self._cond = threading.Condition()
        self._pending = _Pending()
        self._busy = False
        self._stop = False
        self._pass_lock = threading.Lock()  # belt and braces: one pass at a time, whoever calls
        self._thread: threading.Thread | None = None
        self._observer: Any = None

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        self._observer = self._make_observer()
        self._observer.start()
        self._thread = threading.Thread(target=self._loop, name="repoloop-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def _make_observer(self) -> Any:
        handler = _Handler(self)
        if not self.polling:
            from watchdog.observers import Observer

            obs = Observer()
            try:
                obs.schedule(handler, str(self.repo), recursive=True)
                return obs
            except OSError as e:  # e.g. the inotify watch limit on a huge tree
                log.warning("native file watching failed (%s); falling back to polling", e)
        from watchdog.observers.polling import PollingObserver

        obs = PollingObserver(timeout=1.0)
        obs.schedule(handler, str(self.repo), recursive=True)
        return obs

    # -- events (observer thread) --------------------------------------------------------
    def notice(self, paths: Iterable[str], *, full: bool = False) -> None:
        """Queue changed paths (repo-relative) or a full pass; the debounce clock restarts."""
        now = time.monotonic()
        with self._cond:
            if not self._pending:
                self._pending.first = now
            self._pending.last = now
            self._pending.paths.update(paths)
            self._pending.full = self._pending.full or full
            self._cond.notify_all()

    def _on_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED_EVENT_TYPES:
            return
        if event.is_directory and event.event_type in ("modified", "closed"):
            return  # a child changed; that child has its own event
        rels = [r for r in (self.filter.relative(p) for p in (event.src_path, event.dest_path) if p) if r]
        if not rels:
            return
        if ".gitignore" in rels:
            self.filter.reload()
        # a directory appearing, vanishing or moving: its files have no events of their own
        full = event.is_directory or ".gitignore" in rels
        self.notice(rels, full=full)

    # -- passes (watch thread) -----------------------------------------------------------
    def idle(self) -> bool:
        """No pass running and nothing queued."""
        with self._cond:
            return not self._busy and not self._pending

    def _loop(self) -> None:
        backoff = 1.0
        while True:
            with self._cond:
                while not self._stop:
                    now = time.monotonic()
                    if self._pending:
                        due = max(
                            min(self._pending.last + self.debounce, self._pending.first + self.max_wait),
                            self._pending.not_before,
                        )
                        if now >= due:
                            break
                        self._cond.wait(due - now)
                    else:
                        self._cond.wait()
                if self._stop:
                    return
                batch, self._pending = self._pending, _Pending()
                self._busy = True
            paths = tuple(sorted(batch.paths))
            full = batch.full or len(paths) > self.max_paths
            report = self.run_pass(None if full else frozenset(paths), paths)
            with self._cond:
                self._busy = False
                if report.error is not None:  # try again later, as a full pass: it catches up
                    self._pending.paths.update(paths)
                    self._pending.full = True
                    self._pending.first = self._pending.first or time.monotonic()
                    self._pending.last = self._pending.last or time.monotonic()
                    self._pending.not_before = time.monotonic() + backoff
                    backoff = min(backoff * 2, 30.0)
                else:
                    backoff = 1.0
                self._cond.notify_all()

    def run_pass(self, paths: frozenset[str] | None, changed: tuple[str, ...] = ()) -> UpdateReport:
        """One index pass (also used for the catch-up pass at start); never two at once."""
        with self._pass_lock:
            t0 = time.monotonic()
            try:
                result = self.index_pass(paths)
                report = UpdateReport(changed, paths is None, time.monotonic() - t0, result)
            except IndexLockedError as e:
                report = UpdateReport(changed, paths is None, time.monotonic() - t0, error=str(e))
            except Exception as e:  # a watcher runs for hours: log, retry, keep watching
                log.exception("index pass failed")
                report = UpdateReport(changed, paths is None, time.monotonic() - t0, error=f"{type(e).__name__}: {e}")
            self.passes += 1
        if self.on_update is not None:
            try:
                self.on_update(report)
            except Exception:
                log.exception("on_update callback failed")
        return report

    def run_forever(self) -> None:
        """Block until interrupted (Ctrl-C); the caller stops the watcher."""
        while True:
            with self._cond:
                if self._stop:
                    return
                self._cond.wait(1.0)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self._watcher._on_event(event)
        except Exception:  # never kill the observer thread
            log.exception("watch event handling failed")
