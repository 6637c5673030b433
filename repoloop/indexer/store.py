"""The SQLite index: files, symbols, references, chunks, an FTS5 table and graph edges.

One database per repository at `.repoloop/index.db`, in WAL mode so readers never block on the
writer. Every file's rows are replaced in one transaction, so a killed run leaves each file either
fully old or fully new; `files.hash` is written in that same transaction, so the next run redoes
exactly the files that did not make it.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from repoloop.errors import IndexMissingError, RepoloopError
from repoloop.indexer.lexical_tokens import fts_text, split_identifier
from repoloop.indexer.models import ParsedFile
from repoloop.indexer.schema import (
    BULK_INDEXES,
    FILES_FTS_SCHEMA,
    SCHEMA,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE (the write lock up front: no deadlock upgrading a read) ... COMMIT, or ROLLBACK
    on any exception, KeyboardInterrupt included, so a failed write never leaves a transaction open."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


@contextmanager
def read_snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A deferred BEGIN ... COMMIT around reads that must agree with each other (one WAL snapshot);
    takes no write lock. Inside a transaction already, the caller's is used as is."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


INDEX_DIRNAME = ".repoloop"
DB_NAME = "index.db"


def _is_corrupt(e: sqlite3.DatabaseError) -> bool:
    """Not a database or a malformed one (as opposed to busy/locked, which are transient)."""
    code = getattr(e, "sqlite_errorcode", None)
    return code in (11, 26) or "not a database" in str(e) or "malformed" in str(e)


def chunk_hash(header: str, text: str) -> str:
    return hashlib.sha1(f"{header}\n{text}".encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class FileRows:
    """A file's rows as plain tuples, ready for executemany (file and chunk ids left out).

    Building them is pure and CPU-heavy (tokenizing for FTS, hashing), and tuples pickle ~3x
    cheaper than the dataclasses, so the pipeline builds them in the parser workers."""

    symbols: list[tuple]  # (name, qualname, kind, start_line, end_line, signature, doc, parent)
    refs: list[tuple]  # (name, kind, line, scope, full, module, alias)
    chunks: list[tuple]  # (start_line, end_line, symbol, kind, text, header, hash)
    fts: list[tuple]  # (path words, names, body), one per chunk


def file_rows(parsed: ParsedFile) -> FileRows:
    path_words = fts_text(parsed.path.replace("/", " ").replace(".", " "))
    chunks, fts = [], []
    for ch in parsed.chunks:
        names = " ".join(split_identifier(ch.symbol.replace(".", "_"))) if ch.symbol else ""
        if ch.symbol:
            names = f"{ch.symbol.rsplit('.', 1)[-1].lower()} {names}"
        chunks.append((ch.start_line, ch.end_line, ch.symbol, ch.kind, ch.text, ch.header,
                       chunk_hash(ch.header, ch.text)))
        fts.append((path_words, names, fts_text(ch.text)))
    return FileRows(
        symbols=[(s.name, s.qualname, s.kind, s.start_line, s.end_line, s.signature, s.doc, s.parent)
                 for s in parsed.symbols],
        refs=[(r.name, r.kind, r.line, r.scope, r.full, r.module, r.alias) for r in parsed.refs],
        chunks=chunks, fts=fts)


@dataclass(slots=True)
class FileWrite:
    """One file's new content for `replace_files`. With `rows`, only the header fields of
    `parsed` (path, language, module, lines, syntax_errors) are read; its lists may be empty."""

    parsed: ParsedFile
    hash: str
    size: int
    mtime: float
    decode_errors: int = 0
    rows: FileRows | None = None  # file_rows(parsed), if built already


def index_dir_for(repo: Path, index_dir: Path | None = None) -> Path:
    if index_dir:
        return Path(index_dir)
    d = Path(repo) / INDEX_DIRNAME
    refuse_symlinked_state_dir(d)
    return d


def prepare_index_dir(d: Path) -> None:
    """Create the index directory with a `.gitignore` of `*`, so that `git status` never shows an
    index (tens of MB) as untracked. Written into the default `.repoloop` whenever it lacks one, and
    into an --index-dir only when repoloop creates it (an existing directory is the user's)."""
    d = Path(d)
    created = not d.exists()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RepoloopError(f"cannot write the index directory {d}: {e.strerror}") from e
    ignore = d / ".gitignore"
    if (created or d.name == INDEX_DIRNAME) and not ignore.exists() and not ignore.is_symlink():
        try:
            ignore.write_text("# repoloop's index: never part of the repository\n*\n")
        except OSError:
            pass  # a read-only place: the index still works, git merely sees it


def refuse_symlinked_state_dir(d: Path) -> None:
    """A repository can commit `.repoloop` as a symlink (to ~/.ssh, /etc, ...): repoloop would then
    write its index and worktrees there. It never follows one."""
    if d.is_symlink():
        raise RepoloopError(f"{d} is a symbolic link; repoloop keeps its state there and will not follow "
                            "it: remove it, or pass --index-dir")


@dataclass(slots=True)
class FileRow:
    id: int
    path: str
    hash: str
    language: str
    module: str
    size: int
    mtime: float
    lines: int
    status: str


class IndexStore:
    """Access to one repository's index database. Not thread-safe; open one per thread/process."""

    def __init__(self, db_path: Path, *, readonly: bool = False) -> None:
        self.db_path = Path(db_path)
        if readonly and not self.db_path.exists():
            raise IndexMissingError(f"no index at {self.db_path.parent} (run `repoloop index` first)")
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RepoloopError(f"cannot create the index directory {self.db_path.parent}: {e.strerror}") from e
        try:
            self._connect(readonly)
        except sqlite3.DatabaseError as e:
            if not _is_corrupt(e):
                raise
            self.conn.close()
            if readonly:
                raise IndexMissingError(f"the index at {self.db_path.parent} is damaged ({e});"
                                        " run `repoloop index` to rebuild it") from e
            # The index is a cache of the repository: keep the damaged file aside and start afresh.
            aside = self.db_path.with_name(f"{self.db_path.name}.damaged-{int(time.time())}")
            self.db_path.rename(aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)
            self.damaged_copy: Path | None = aside
            self._connect(readonly)
        else:
            self.damaged_copy = None

    def _connect(self, readonly: bool) -> None:
        self.conn = sqlite3.connect(str(self.db_path), timeout=30.0, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=30000")
        self._ensure_schema(readonly)

    @classmethod
    def open(cls, repo: Path, index_dir: Path | None = None, *, readonly: bool = False) -> IndexStore:
        return cls(index_dir_for(repo, index_dir) / DB_NAME, readonly=readonly)

    # -- schema -------------------------------------------------------------------------------
    def _ensure_schema(self, readonly: bool) -> None:
        have = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        version = None
        if have:
            row = self.conn.execute("SELECT value FROM meta WHERE key=?", (SCHEMA_VERSION_KEY,)).fetchone()
            version = int(row[0]) if row else None
        if version == SCHEMA_VERSION:
            if not readonly:
                self._add_files_fts()
            return
        if readonly and version is None:
            raise IndexMissingError(f"no index at {self.db_path.parent} (run `repoloop index` first)")
        if readonly:
            raise IndexMissingError(
                f"the index at {self.db_path.parent} has schema {version}, this repoloop reads"
                f" {SCHEMA_VERSION} (run `repoloop index` to rebuild it)")
        if version is not None and version != SCHEMA_VERSION:
            # An index from another schema is rebuilt, never misread.
            self._drop_all()
        self.conn.executescript(SCHEMA)
        self.conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (SCHEMA_VERSION_KEY, str(SCHEMA_VERSION))
        )

    def _add_files_fts(self) -> None:
        """Indexes written before the file-level FTS table get it, filled from the chunk FTS rows
        (same schema version: the table is additive, readers without it skip that signal)."""
        if self.conn.execute("SELECT 1 FROM sqlite_master WHERE name='files_fts'").fetchone():
            return
        with transaction(self.conn):
            self.conn.execute(FILES_FTS_SCHEMA)
            self.conn.execute(
                "INSERT INTO files_fts(rowid, path, body) SELECT c.file_id, min(x.path),"
                " group_concat(x.names || ' ' || x.body, ' ') FROM chunks c JOIN chunks_fts x ON x.rowid = c.id"
                " GROUP BY c.file_id")

    def _drop_all(self) -> None:
        rows = self.conn.execute(
            "SELECT type, name FROM sqlite_master WHERE type IN ('table','view') AND name NOT LIKE 'sqlite_%'"
            " AND name NOT LIKE 'chunks_fts_%' AND name NOT LIKE 'files_fts_%'"
        ).fetchall()
        for r in rows:
            self.conn.execute(f'DROP {r["type"].upper()} IF EXISTS "{r["name"]}"')

    def close(self) -> None:
        self.conn.close()

    # -- bulk loading -------------------------------------------------------------------------
    def drop_bulk_indexes(self) -> None:
        """Drop the secondary indexes of symbols/refs/chunks before filling an empty index: rows
        then go in about twice as fast, and `ensure_indexes` rebuilds them in one sorted pass.
        A run killed in between leaves them missing; every index run starts with ensure_indexes."""
        for name in BULK_INDEXES:
            self.conn.execute(f"DROP INDEX IF EXISTS {name}")

    def ensure_indexes(self) -> None:
        """(Re)create any missing table or index of the schema (idempotent, cheap when present)."""
        self.conn.executescript(SCHEMA)

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta ---------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # -- writes -------------------------------------------------------------------------------
    def replace_file(self, parsed: ParsedFile, *, hash: str, size: int, mtime: float,
                     decode_errors: int = 0) -> int:
        """Replace every row of one file in one transaction; returns the file id."""
        return self.replace_files([FileWrite(parsed, hash, size, mtime, decode_errors)])[0]

    def replace_files(self, batch: Sequence[FileWrite]) -> list[int]:
        """Replace the rows of several files in one transaction: a kill leaves each of them fully
        old or fully new, and `files.hash` is written with its rows. Marks them pending for the
        graph phase."""
        c = self.conn
        ids: list[int] = []
        with transaction(c):
            for w in batch:
                ids.append(self._insert_file(w))
            c.executemany("INSERT OR REPLACE INTO pending(path, op) VALUES (?, 'changed')",
                          [(w.parsed.path,) for w in batch])
        return ids

    def _insert_file(self, w: FileWrite) -> int:
        c = self.conn
        parsed = w.parsed
        file_id = self._delete_file_rows(parsed.path)
        status = "partial" if parsed.syntax_errors else ("ok" if parsed.language != "text" else "text")
        cur = c.execute(
            "INSERT INTO files(id, path, hash, language, module, size, mtime, lines, status,"
            " syntax_errors, decode_errors, indexed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (file_id, parsed.path, w.hash, parsed.language, parsed.module, w.size, w.mtime, parsed.lines,
             status, parsed.syntax_errors, w.decode_errors, time.time()),
        )
        file_id = cur.lastrowid
        rows = w.rows if w.rows is not None else file_rows(parsed)
        c.executemany(
            "INSERT INTO symbols(file_id, name, qualname, kind, start_line, end_line, signature, doc,"
            " parent) VALUES (?,?,?,?,?,?,?,?,?)", [(file_id, *r) for r in rows.symbols])
        c.executemany(
            "INSERT INTO refs(file_id, name, kind, line, scope, full, module, alias) VALUES (?,?,?,?,?,?,?,?)",
            [(file_id, *r) for r in rows.refs])
        if rows.chunks:
            # Chunk ids are allocated here so chunks and their FTS rows go in with two executemany.
            first = (c.execute("SELECT max(id) FROM chunks").fetchone()[0] or 0) + 1
            c.executemany(
                "INSERT INTO chunks(id, file_id, start_line, end_line, symbol, kind, text, header, hash)"
                " VALUES (?,?,?,?,?,?,?,?,?)", [(first + i, file_id, *r) for i, r in enumerate(rows.chunks)])
            c.executemany("INSERT INTO chunks_fts(rowid, path, names, body) VALUES (?,?,?,?)",
                          [(first + i, *r) for i, r in enumerate(rows.fts)])
            c.execute("INSERT INTO files_fts(rowid, path, body) VALUES (?,?,?)",
                      (file_id, rows.fts[0][0], " ".join(f"{n} {b}" for _, n, b in rows.fts)))
        return file_id

    def touch_files(self, stats: Iterable[tuple[str, int, float]]) -> None:
        """Record a new size/mtime for files whose content hash did not change (the stat shortcut):
        `indexed_at` moves too, as the moment the content was last verified."""
        now = time.time()
        with transaction(self.conn):
            self.conn.executemany("UPDATE files SET size=?, mtime=?, indexed_at=? WHERE path=?",
                                  [(size, mtime, now, path) for path, size, mtime in stats])

    def _delete_file_rows(self, path: str) -> int | None:
        row = self.conn.execute("SELECT id FROM files WHERE path=?", (path,)).fetchone()
        if not row:
            return None
        fid = row[0]
        self.conn.execute(
            "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE file_id=?)", (fid,)
        )
        self.conn.execute("DELETE FROM files_fts WHERE rowid=?", (fid,))
        for table in ("chunks", "symbols", "refs", "edges"):
            self.conn.execute(f"DELETE FROM {table} WHERE file_id=?", (fid,))
        self.conn.execute("DELETE FROM files WHERE id=?", (fid,))
        return fid

    def delete_files(self, paths: Iterable[str]) -> int:
        n = 0
        with transaction(self.conn):
            for p in paths:
                if self._delete_file_rows(p) is not None:
                    n += 1
                    self.conn.execute("INSERT OR REPLACE INTO pending(path, op) VALUES (?, 'deleted')", (p,))
        return n

    def set_skips(self, skips: dict[str, str]) -> None:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM skips")
            self.conn.executemany("INSERT INTO skips(path, reason) VALUES (?,?)", skips.items())

    def update_skips(self, paths: Iterable[str], skips: dict[str, str]) -> None:
        """Forget the skip records of `paths`, then record `skips` (a partial re-index). The records
        of an ignore file's bad lines (`dir/.gitignore:3`) go with the file's own."""
        paths = list(paths)
        with transaction(self.conn):
            self.conn.executemany("DELETE FROM skips WHERE path=?", [(p,) for p in paths])
            self.conn.executemany("DELETE FROM skips WHERE substr(path, 1, ?) = ?",
                                  [(len(p) + 1, p + ":") for p in paths if p.endswith(("ignore", "exclude"))])
            self.conn.executemany("INSERT OR REPLACE INTO skips(path, reason) VALUES (?,?)", skips.items())

    def pending(self) -> tuple[set[str], set[str]]:
        """(changed, deleted) paths whose graph edges are not rebuilt yet."""
        changed: set[str] = set()
        deleted: set[str] = set()
        for path, op in self.conn.execute("SELECT path, op FROM pending"):
            (deleted if op == "deleted" else changed).add(path)
        return changed, deleted

    def clear_pending(self, paths: Iterable[str]) -> None:
        with transaction(self.conn):
            self.conn.executemany("DELETE FROM pending WHERE path=?", [(p,) for p in paths])

    # -- reads --------------------------------------------------------------------------------
    def files(self) -> Iterator[FileRow]:
        for r in self.conn.execute(
            "SELECT id, path, hash, language, module, size, mtime, lines, status FROM files ORDER BY path"
        ):
            yield FileRow(*r)

    def file(self, path: str) -> FileRow | None:
        r = self.conn.execute(
            "SELECT id, path, hash, language, module, size, mtime, lines, status FROM files WHERE path=?",
            (path,),
        ).fetchone()
        return FileRow(*r) if r else None

    def file_stats(self) -> dict[str, tuple[str, int, float, float]]:
        """path -> (hash, size, mtime, indexed_at) of every indexed file, for the incremental check."""
        return {r[0]: (r[1], r[2], r[3], r[4])
                for r in self.conn.execute("SELECT path, hash, size, mtime, indexed_at FROM files")}

    def counts(self) -> dict[str, int]:
        out = {}
        for table in ("files", "symbols", "refs", "chunks", "edges"):
            out[table] = self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        return out

    def skip_counts(self) -> dict[str, int]:
        return {r[0]: r[1] for r in self.conn.execute("SELECT reason, count(*) FROM skips GROUP BY reason")}
