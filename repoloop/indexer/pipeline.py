"""Build or update one repository's index: walk -> parse (worker processes) -> store -> graph -> embed.

Incremental: a file is re-parsed only when its content hash changed. Its size and mtime, recorded
with the hash, let the walk pass a file without reading it when neither moved (and the mtime is
not in the same second as the indexing, where a later write could hide). Deleted, renamed and
newly skipped files leave every table.

Parsing spreads over worker processes that read the files themselves (paths go out, ParsedFile
records come back); only this process writes SQLite, a batch of files per transaction, so a kill
leaves each file fully old or fully new and the next run completes the job. One writer at a time:
the index directory's lock (`lock.py`).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repoloop.errors import RepoloopError
from repoloop.indexer import safe_read
from repoloop.indexer import walk as walk_mod
from repoloop.indexer.config import EmbedConfig
from repoloop.indexer.lock import IndexLock
from repoloop.indexer.models import ParsedFile
from repoloop.indexer.parse import parser
from repoloop.indexer.parse.languages import HEADER_SNIFF_BYTES, detect_language
from repoloop.indexer.parse.textchunk import (
    TEXT_LANGUAGE,
    is_text_name,
    looks_like_text,
    may_be_text_name,
    parse_text,
)
from repoloop.indexer.schema import LAST_RUN_KEY, MAX_FILE_SIZE_KEY, PARSER_FINGERPRINT_KEY
from repoloop.indexer.store import (
    DB_NAME,
    FileRows,
    FileWrite,
    IndexStore,
    file_rows,
    index_dir_for,
    prepare_index_dir,
)

if TYPE_CHECKING:
    from repoloop.indexer.embed.embedders import Embedder

# Files per store transaction: few big transactions cost less than many small ones (each commit
# writes the touched index pages again and leaves FTS5 one more segment to merge): replaying a
# django branch switch's 1,209 files, 20 a transaction took 7.3-7.7 writer CPU s, 200 6.2, all
# in one 5.8-6.1 (wall 23-31 / 20-23 / 13-18 s at load ~7). A kill loses at most one batch.
_BATCH_FILES = 1000
_BATCH_BYTES = 64 << 20  # ... or this much source
_BATCH_SECONDS = 5.0  # ... or whatever arrived within this long (a slow, loaded run still commits)
_POOL_MIN_TASKS = 40  # below this, parsing in-process beats starting workers
_MAX_IN_FLIGHT_BYTES = 32 << 20  # source bytes handed to workers ahead of the store (bounds memory)
_TRUST_MARGIN = 1.0  # an mtime this close to the indexing time is not trusted (racy write)
_BULK_MIN_TASKS = 500  # an empty index filled with at least this many files loads without indexes
_WRITER_CACHE_KIB = 131072  # SQLite page cache of the writer (index B-trees stay in memory)
# Helper threads SQLite's sorter may use (CREATE INDEX after a bulk load, the graph's edge indexes):
# the parse workers are done by then. refs_name over a monorepo's 7.4M references: 7.2-11.4 s with
# none, 5.0-5.2 s with one (same index).
_WRITER_SORT_THREADS = 3

PHASES = ("walk", "parse", "store", "graph", "embed")


@dataclass(slots=True)
class IndexReport:
    repo: str
    index_dir: str
    files_seen: int = 0  # files the walk kept
    files_indexed: int = 0  # parsed and written this run
    files_unchanged: int = 0
    files_deleted: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, message): indexed as text
    decode_errors: int = 0  # files indexed with replacement characters this run
    symbols: int = 0  # totals in the index after the run
    chunks: int = 0
    edges: int = 0
    embedded: int | None = None  # chunks embedded this run (None: no embedding phase)
    skips: dict[str, int] = field(default_factory=dict)  # reason -> count
    seconds: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    graph: bool = False  # whether the graph phase ran
    damaged_index: str | None = None  # a damaged index file found and set aside (then rebuilt)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["errors"] = [{"path": p, "error": m} for p, m in self.errors]
        d["seconds"] = {k: round(v, 3) for k, v in self.seconds.items()}
        d["total_seconds"] = round(self.total_seconds, 3)
        return d

    def summary(self) -> str:
        skipped = sum(self.skips.values())
        return (
            f"indexed {self.files_seen:,} files ({self.files_indexed:,} parsed, {self.files_deleted:,} removed,"
            f" {skipped:,} skipped{f', {len(self.errors)} errors' if self.errors else ''})"
            f" · {self.symbols:,} symbols · {self.chunks:,} chunks · {self.edges:,} edges"
            f"{'' if self.embedded is None else f' · {self.embedded:,} chunks embedded'}"
            f" · {self.total_seconds:.1f} s"
        )


@dataclass(slots=True)
class _Task:
    path: str
    abspath: str
    size: int
    mtime: float
    known_hash: str | None
    root: str  # the repository (resolved): the file must still be inside it when read
    limit: int  # the run's max file size: a file grown past it since the walk is skipped


@dataclass(slots=True)
class _Result:
    path: str
    size: int
    mtime: float
    hash: str = ""
    parsed: ParsedFile | None = None  # None: content unchanged (hash equal) or skipped
    skip: str | None = None  # a skip reason found on reading
    vanished: bool = False
    decode_errors: int = 0
    error: str | None = None
    rows: FileRows | None = None  # the parsed rows as tuples (then `parsed` keeps only its header fields)


# -- the worker side ------------------------------------------------------------------------------
def _language_of(path: str, head: bytes) -> str | None:
    """The grammar's language (by name or `#!` line), TEXT_LANGUAGE for textual files without
    one, None to skip."""
    return detect_language(path, head) or (TEXT_LANGUAGE if is_text_name(path) else None)


def wanted(path: str) -> bool:
    """Name filter for the walk (read nothing yet): files with a grammar, textual by name, or of an
    extension that is not known to be binary or data (their content decides, in the worker)."""
    return bool(detect_language(path)) or is_text_name(path) or may_be_text_name(path)


_PARSER_SOURCES = ("parse/*.py", "parse/handlers/*.py", "lexical_tokens.py", "queries/*.scm")
_GRAMMAR_DISTS = ("tree-sitter", *(f"tree-sitter-{g}" for g in (
    "python", "javascript", "typescript", "go", "rust", "java", "c", "cpp", "c-sharp", "ruby", "php")))


def parser_fingerprint() -> str:
    """What the stored rows depend on besides the file: the parsing code and grammar versions. When
    it changes, every file is parsed again (its content hash alone would keep stale rows)."""
    from importlib import metadata

    h = hashlib.sha1()
    here = Path(__file__).parent
    for pattern in _PARSER_SOURCES:
        for f in sorted(here.glob(pattern)):
            h.update(f.name.encode())
            h.update(f.read_bytes())
    for dist in _GRAMMAR_DISTS:
        try:
            h.update(f"{dist}=={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            pass
    return h.hexdigest()


def _parse_file(task: _Task) -> _Result:
    """Read, hash, parse and tokenize one file. Runs in a worker; never raises for bad input."""
    return _with_rows(_read_and_parse(task))


def parse_bytes(path: str, size: int, mtime: float, hash: str, data: bytes) -> _Result:
    """Parse and tokenize a file read (and hashed) elsewhere: what `_parse_file` does after its
    read, so a worker without the checkout (repoloop.indexer.cluster) gives the same rows."""
    return _with_rows(_parse_data(_Result(path, size, mtime, hash), data))


def _with_rows(res: _Result) -> _Result:
    if res.parsed is not None:
        p = res.parsed
        res.rows = file_rows(p)
        res.parsed = ParsedFile(p.path, p.language, p.module, syntax_errors=p.syntax_errors, lines=p.lines)
    return res


def read_task(task: _Task) -> tuple[_Result, bytes | None]:
    """Read and hash one file: its result so far, and its bytes where they must be parsed (None
    when it vanished, became a skip, or its content is the one already indexed). Shared by the
    local workers and the cluster's driver, which ships the bytes."""
    res = _Result(task.path, task.size, task.mtime)
    data = safe_read.read_repo_file(task.abspath, task.root, task.limit)
    if isinstance(data, str):  # not what the walk saw any more (FIFO, symlink out, grown, gone)
        if data == safe_read.VANISHED:
            res.vanished = True
        else:
            res.skip = data
        return res, None
    res.hash = hashlib.sha1(data).hexdigest()
    return res, (None if res.hash == task.known_hash else data)


def _read_and_parse(task: _Task) -> _Result:
    res, data = read_task(task)
    return res if data is None else _parse_data(res, data)


def _parse_data(res: _Result, data: bytes) -> _Result:
    head_reason = walk_mod.classify_head(data[: walk_mod.HEAD_BYTES])
    if head_reason:
        res.skip = head_reason
        return res
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        # Not lost: indexed with replacement characters (line numbers stay right), and counted.
        res.decode_errors = 1
        data = data.decode("utf-8", errors="replace").encode("utf-8")
    language = _language_of(res.path, data[:HEADER_SNIFF_BYTES])
    if language is None:
        if res.decode_errors or not looks_like_text(data):
            res.skip, res.decode_errors = walk_mod.UNSUPPORTED, 0
            return res
        language = TEXT_LANGUAGE  # an unknown extension, plainly text: searchable like any text file
    if language != TEXT_LANGUAGE:
        try:
            res.parsed = parser.parse_source(res.path, data, language)
            return res
        except Exception as e:  # a parser bug must not lose the file: keep it as text
            res.error = f"{type(e).__name__}: {e}"
    res.parsed = parse_text(res.path, data)
    return res


# -- the main side --------------------------------------------------------------------------------
class _Progress:
    """rich progress bars on a terminal, nothing otherwise."""

    def __init__(self, enabled: bool) -> None:
        self._p = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                               TimeElapsedColumn(), console=Console(stderr=True), transient=True)

    def __enter__(self) -> _Progress:
        if self._p:
            self._p.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._p:
            self._p.__exit__(*exc)

    def task(self, description: str, total: int | None) -> Any:
        return self._p.add_task(description, total=total) if self._p else None

    def advance(self, task: Any, n: int = 1) -> None:
        if self._p is not None and task is not None:
            self._p.advance(task, n)


def index_repo(
    repo: Path,
    index_dir: Path | None = None,
    *,
    jobs: int | None = None,
    embed: bool = True,
    progress: bool | None = None,
    max_file_size: int = walk_mod.DEFAULT_MAX_FILE_SIZE,
    wait: bool = False,
    embedder: Embedder | None = None,
    embed_config: EmbedConfig | None = None,
) -> IndexReport:
    """Build or update the index of `repo`; returns what was done. Raises IndexLockedError when
    another run holds the index (unless `wait`). `embed_config`: how to embed (the caller's, read
    at its edge; default `EmbedConfig()`); `embedder`: an already-loaded model to embed with (a
    long-running process keeps one); None builds one from `embed_config`."""
    repo = Path(repo).expanduser().resolve()
    if not repo.is_dir():
        raise RepoloopError(f"{repo}: not a directory")
    if max_file_size <= 0:
        raise RepoloopError(f"--max-file-size must be positive, not {max_file_size}")
    if jobs is not None and jobs < 1:
        raise RepoloopError(f"--jobs must be at least 1, not {jobs}")
    idx = index_dir_for(repo, index_dir).resolve()
    if progress is None:
        progress = sys.stderr.isatty()
    prepare_index_dir(idx)
    with IndexLock(idx, wait=wait):
        return _locked_run(repo, idx, jobs or usable_cpus(), max_file_size, progress, embed, None, embedder,
                           embed_config)


def usable_cpus() -> int:
    """CPUs this process may run on (affinity and cpusets count, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def index_paths(
    repo: Path,
    paths: Iterable[str],
    index_dir: Path | None = None,
    *,
    embed: bool = True,
    progress: bool = False,
    wait: bool = False,
    embedder: Embedder | None = None,
    embed_config: EmbedConfig | None = None,
) -> IndexReport:
    """Update the index for a few changed paths (a watcher's events) without walking the whole
    tree: each path gets the walk's rules, and is re-parsed if its hash changed, removed if gone or
    now skipped. A directory among them, or an index never built, means a full incremental run.
    `embedder` and `embed_config` as for `index_repo`: a watcher passes the model it keeps loaded."""
    repo = Path(repo).expanduser().resolve()
    idx = index_dir_for(repo, index_dir).resolve()
    rels: set[str] = set()
    full = False
    for p in paths:
        pp = Path(p)
        if pp.is_absolute():
            try:
                pp = pp.relative_to(repo)
            except ValueError:
                continue  # outside the repository
        rel = pp.as_posix()
        if (repo / rel).is_dir():
            full = True
        rels.add(rel)
    prepare_index_dir(idx)
    with IndexLock(idx, wait=wait):
        limit = None
        if not full and (idx / DB_NAME).exists():
            with IndexStore(idx / DB_NAME) as store:
                limit = store.get_meta(MAX_FILE_SIZE_KEY)
        if limit is None:
            return _locked_run(repo, idx, usable_cpus(), walk_mod.DEFAULT_MAX_FILE_SIZE, progress, embed,
                               None, embedder, embed_config)
        return _locked_run(repo, idx, 1, int(limit), progress, embed, sorted(rels), embedder, embed_config)


def _locked_run(repo: Path, idx: Path, jobs: int, max_file_size: int, progress: bool, embed: bool,
                scope: list[str] | None, embedder: Embedder | None = None,
                embed_config: EmbedConfig | None = None) -> IndexReport:
    store = IndexStore(idx / DB_NAME)
    try:
        run = _Run(repo, idx, store, jobs, max_file_size, progress, scope, embed_config=embed_config)
        run.embedder = embedder
        return run.run(embed)
    finally:
        store.close()


class _Run:
    """One indexing run's state (kept off module globals)."""

    def __init__(self, repo: Path, idx: Path, store: IndexStore, jobs: int, max_file_size: int,
                 progress: bool, scope: list[str] | None = None, *,
                 embed_config: EmbedConfig | None = None) -> None:
        self.repo, self.idx, self.store = repo, idx, store
        self.embed_config = embed_config or EmbedConfig()
        self.jobs, self.max_file_size = jobs, max_file_size
        self.report = IndexReport(repo=str(repo), index_dir=str(idx))
        if store.damaged_copy is not None:
            self.report.damaged_index = str(store.damaged_copy)
        self.progress = _Progress(progress)
        self.known = store.file_stats()
        self.fingerprint = parser_fingerprint()
        if not self.known:  # nothing old to keep apart: a run killed from here on resumes, not restarts
            store.set_meta(PARSER_FINGERPRINT_KEY, self.fingerprint)
        elif store.get_meta(PARSER_FINGERPRINT_KEY) != self.fingerprint:
            # Another parser (upgrade, new grammar): unchanged files must be parsed again too.
            self.known = {p: ("", size, mtime, 0.0) for p, (_h, size, mtime, _t) in self.known.items()}
        self.skips: dict[str, str] = {}
        self.scope = scope  # only these paths (index_paths), or None for the whole tree
        self.embedder: Embedder | None = None  # a caller's loaded model, else one from embed_config

    def run(self, embed: bool) -> IndexReport:
        rep = self.report
        with self.progress:
            t = time.perf_counter()
            tasks, seen = self._walk()
            rep.seconds["walk"] = time.perf_counter() - t
            self._parse_and_store(tasks, seen)
            t = time.perf_counter()
            self._graph()
            rep.seconds["graph"] = time.perf_counter() - t
            t = time.perf_counter()
            if embed:
                self._embed()
            rep.seconds["embed"] = time.perf_counter() - t
        counts = self.store.counts()
        rep.symbols, rep.chunks, rep.edges = counts["symbols"], counts["chunks"], counts["edges"]
        self.store.set_meta(MAX_FILE_SIZE_KEY, str(self.max_file_size))
        if self.scope is None or self.store.get_meta(PARSER_FINGERPRINT_KEY) == self.fingerprint:
            self.store.set_meta(PARSER_FINGERPRINT_KEY, self.fingerprint)
        self.store.set_meta(LAST_RUN_KEY, json.dumps(rep.to_json()))
        return rep

    # -- walk ---------------------------------------------------------------------------------
    def _trusted(self, path: str, size: int, mtime: float) -> bool:
        k = self.known.get(path)
        return k is not None and k[1] == size and k[2] == mtime and mtime < k[3] - _TRUST_MARGIN

    def _walk(self) -> tuple[list[_Task], set[str]]:
        opts = walk_mod.WalkOptions(max_file_size=self.max_file_size, want=wanted,
                                    known_unchanged=self._trusted)
        walker = walk_mod.Walker(self.repo, opts)
        bar = self.progress.task("scanning", None)
        tasks: list[_Task] = []
        seen: set[str] = set()
        try:
            rel_idx = self.idx.relative_to(self.repo).as_posix()
        except ValueError:
            rel_idx = None
        entries = walker if self.scope is None else filter(None, map(walker.check, self.scope))
        root = str(walker.root)
        for e in entries:
            if rel_idx and (e.path == rel_idx or e.path.startswith(rel_idx + "/")):
                continue  # an --index-dir inside the repository
            seen.add(e.path)
            self.progress.advance(bar)
            if self._trusted(e.path, e.size, e.mtime):
                self.report.files_unchanged += 1
                continue
            known = self.known.get(e.path)
            tasks.append(_Task(e.path, e.abspath, e.size, e.mtime, known[0] if known else None, root,
                               self.max_file_size))
        self.skips.update(walker.skips)
        return tasks, seen

    # -- parse + store ------------------------------------------------------------------------
    def _results(self, tasks: list[_Task]) -> Iterator[_Result]:
        if self.jobs <= 1 or len(tasks) < _POOL_MIN_TASKS:
            for t in tasks:
                yield _parse_file(t)
            return
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["repoloop.indexer.pipeline", "repoloop.indexer.parse.parser"])
        chunksize = max(1, min(32, len(tasks) // (self.jobs * 8)))
        # Biggest first, so one huge file does not finish alone at the end.
        tasks = sorted(tasks, key=lambda t: -t.size)
        # Bounded work in flight (parsed but not yet stored): when SQLite writes are the slower
        # side, an unbounded imap buffers the whole repository's rows here (GBs on a monorepo).
        # The bound is in source bytes (the biggest files go first), with enough files always
        # allowed to fill a chunk for every worker.
        min_files = 2 * self.jobs * chunksize
        cond = threading.Condition()
        flight = {"files": 0, "bytes": 0, "stop": False}

        def feed() -> Iterator[_Task]:  # runs on the pool's task-feeding thread
            for t in tasks:
                with cond:
                    cond.wait_for(lambda t=t: flight["stop"] or flight["files"] < min_files
                                  or flight["bytes"] + t.size <= _MAX_IN_FLIGHT_BYTES)
                    if flight["stop"]:
                        return
                    flight["files"] += 1
                    flight["bytes"] += t.size
                yield t

        with ctx.Pool(self.jobs) as pool:
            try:
                for res in pool.imap_unordered(_parse_file, feed(), chunksize=chunksize):
                    with cond:
                        flight["files"] -= 1
                        flight["bytes"] -= res.size
                        cond.notify()
                    yield res
            finally:  # unblock the feeder so the pool can shut down
                with cond:
                    flight["stop"] = True
                    cond.notify_all()

    def _parse_and_store(self, tasks: list[_Task], seen: set[str]) -> None:
        rep, store = self.report, self.store
        store.conn.execute(f"PRAGMA cache_size=-{_WRITER_CACHE_KIB}")
        store.conn.execute(f"PRAGMA threads={max(0, min(self.jobs - 1, _WRITER_SORT_THREADS))}")
        store.ensure_indexes()  # a run killed while bulk-loading left them dropped
        bulk = not self.known and len(tasks) >= _BULK_MIN_TASKS
        if bulk:
            store.drop_bulk_indexes()
        bar = self.progress.task("parsing", len(tasks))
        batch: list[FileWrite] = []
        touched: list[tuple[str, int, float]] = []
        store_s = 0.0
        t0 = time.perf_counter()
        last_flush = t0
        batch_bytes = 0
        for res in self._results(tasks):
            self.progress.advance(bar)
            if res.vanished or res.skip:
                seen.discard(res.path)
                if res.skip:
                    self.skips[res.path] = res.skip
                continue
            if res.parsed is None:
                rep.files_unchanged += 1
                touched.append((res.path, res.size, res.mtime))
                continue
            if res.error:
                rep.errors.append((res.path, res.error))
            rep.decode_errors += res.decode_errors
            batch.append(FileWrite(res.parsed, res.hash, res.size, res.mtime, res.decode_errors, res.rows))
            batch_bytes += res.size
            now = time.perf_counter()
            if len(batch) >= _BATCH_FILES or batch_bytes >= _BATCH_BYTES or now - last_flush > _BATCH_SECONDS:
                store_s += self._flush(batch)
                rep.files_indexed += len(batch)
                batch = []
                batch_bytes = 0
                last_flush = time.perf_counter()
        store_s += self._flush(batch)
        rep.files_indexed += len(batch)
        t = time.perf_counter()
        if bulk:
            store.ensure_indexes()
        if touched:
            store.touch_files(touched)
        candidates = set(self.known) if self.scope is None else set(self.scope) & set(self.known)
        deleted = sorted(candidates - seen)
        if deleted:
            rep.files_deleted = store.delete_files(deleted)
        if self.scope is None:
            store.set_skips(self.skips)
        else:
            store.update_skips(self.scope, self.skips)
        store_s += time.perf_counter() - t
        rep.files_seen = len(seen)
        rep.skips = dict(Counter(self.skips.values()))
        rep.seconds["parse"] = time.perf_counter() - t0 - store_s
        rep.seconds["store"] = store_s

    def _flush(self, batch: list[FileWrite]) -> float:
        if not batch:
            return 0.0
        t = time.perf_counter()
        self.store.replace_files(batch)
        return time.perf_counter() - t

    # -- graph, embeddings --------------------------------------------------------------------
    def _graph(self) -> None:
        try:
            from repoloop.indexer.graph.build import stale, update_edges
        except ImportError:
            return  # the graph builder is not installed; pending paths wait for it
        changed, deleted = self.store.pending()
        self.report.graph = True
        if not changed and not deleted and not stale(self.store):
            return
        update_edges(self.store, changed, deleted, jobs=self.jobs)
        self.store.clear_pending(changed | deleted)

    def _embed(self) -> None:
        from repoloop.indexer.embed.phase import embed_missing

        self.report.embedded = embed_missing(self.store, self.idx, progress=self.progress._p is not None,
                                             embedder=self.embedder, config=self.embed_config)


def changed_since_index(repo: Path, store: IndexStore, max_file_size: int | None = None
                        ) -> dict[str, list[str]]:
    """What is stale: {"changed", "added", "deleted"} paths on disk versus the index (a quick walk;
    files whose size or mtime moved are hashed to tell a real change from a touch)."""
    known = store.file_stats()
    skipped = {r[0] for r in store.conn.execute("SELECT path FROM skips")}
    if max_file_size is None:
        max_file_size = int(store.get_meta(MAX_FILE_SIZE_KEY) or walk_mod.DEFAULT_MAX_FILE_SIZE)

    def same_stat(path: str, size: int, mtime: float) -> bool:
        k = known.get(path)
        return k is not None and k[1] == size and k[2] == mtime

    walker = walk_mod.Walker(Path(repo), walk_mod.WalkOptions(max_file_size=max_file_size, want=wanted,
                                                              known_unchanged=same_stat))
    root = str(walker.root)
    changed: list[str] = []
    added: list[str] = []
    seen: set[str] = set()
    for e in walker:
        seen.add(e.path)
        k = known.get(e.path)
        if k is None:
            if e.path not in skipped:
                added.append(e.path)
        elif not same_stat(e.path, e.size, e.mtime) and _hash_file(e.abspath, root, max_file_size) != k[0]:
            changed.append(e.path)
    deleted = sorted(set(known) - seen)
    return {"changed": changed, "added": added, "deleted": deleted}


def _hash_file(path: str, root: str, limit: int) -> str | None:
    """The content hash, None when the file cannot be read as the index would (then it counts as changed)."""
    data = safe_read.read_repo_file(path, root, limit)
    return None if isinstance(data, str) else hashlib.sha1(data).hexdigest()
