"""The bulk load of a fresh index: parse workers write their files' rows into scratch SQLite files,
and the writer copies each finished scratch file into the index with INSERT ... SELECT.

Why: while a fresh index fills, its one writer thread is the critical path, and most of its time
was Python's, not SQLite's: unpickling every row the workers sent, then binding it again,
parameter by parameter, into executemany. A copy between two attached databases stays inside
SQLite. The workers bind the rows instead, into plain tables (no index, no FTS tokenizer), beside
their parsing. The rows, and so the index, are those of the row-by-row path
(`IndexStore.replace_files`, which incremental runs keep): tests/test_index_equivalence.py.

A scratch file holds one worker's files since its previous one. The worker starts a new file after
SCRATCH_FILES files, SCRATCH_BYTES of source or SCRATCH_SECONDS; the writer copies a file as soon
as a result from that worker's next file arrives (one worker's results come back in the order it
made them), and the rest when the pool has finished. Each copy is one transaction: a killed run
loses at most the scratch files not yet copied, whose files the next run parses again, and the
scratch files it left are deleted when the next run starts (it holds the index lock, so no other
run's scratch files can be live).
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from repoloop.indexer.models import ParsedFile
from repoloop.indexer.store import FileRows, IndexStore, file_status, transaction

SCRATCH_PREFIX = "bulk-"
SCRATCH_FILES = 1000
SCRATCH_BYTES = 32 << 20  # of source
SCRATCH_SECONDS = 5.0  # a slow, loaded run still hands files over

_SCHEMA = """
CREATE TABLE files (id INTEGER PRIMARY KEY, path, hash, language, module, size, mtime, lines, status,
                    syntax_errors, decode_errors, indexed_at);
CREATE TABLE symbols (file_id, name, qualname, kind, start_line, end_line, signature, doc, parent);
CREATE TABLE refs (file_id, name, kind, line, scope, full, module, alias);
CREATE TABLE chunks (id INTEGER PRIMARY KEY, file_id, start_line, end_line, symbol, kind, text, header, hash);
CREATE TABLE chunks_fts (chunk_id, path, names, body);
CREATE TABLE files_fts (file_id, path, body);
"""

# (statement, which offsets it takes): "f" adds the file id offset, "c" the chunk id offset.
_COPIES: tuple[tuple[str, str], ...] = (
    ("INSERT INTO main.files(id, path, hash, language, module, size, mtime, lines, status, syntax_errors,"
     " decode_errors, indexed_at) SELECT id + ?, path, hash, language, module, size, mtime, lines, status,"
     " syntax_errors, decode_errors, indexed_at FROM scratch.files ORDER BY id", "f"),
    ("INSERT INTO main.symbols(file_id, name, qualname, kind, start_line, end_line, signature, doc, parent)"
     " SELECT file_id + ?, name, qualname, kind, start_line, end_line, signature, doc, parent"
     " FROM scratch.symbols ORDER BY rowid", "f"),
    ("INSERT INTO main.refs(file_id, name, kind, line, scope, full, module, alias)"
     " SELECT file_id + ?, name, kind, line, scope, full, module, alias FROM scratch.refs ORDER BY rowid", "f"),
    ("INSERT INTO main.chunks(id, file_id, start_line, end_line, symbol, kind, text, header, hash)"
     " SELECT id + ?, file_id + ?, start_line, end_line, symbol, kind, text, header, hash"
     " FROM scratch.chunks ORDER BY id", "cf"),
    ("INSERT INTO main.chunks_fts(rowid, path, names, body)"
     " SELECT chunk_id + ?, path, names, body FROM scratch.chunks_fts ORDER BY rowid", "c"),
    ("INSERT INTO main.files_fts(rowid, path, body)"
     " SELECT file_id + ?, path, body FROM scratch.files_fts ORDER BY rowid", "f"),
    ("INSERT OR REPLACE INTO main.pending(path, op) SELECT path, 'changed' FROM scratch.files", ""),
)


def remove_stale(idx: Path) -> None:
    """Delete the scratch files a killed run left (call with the index lock held)."""
    for p in Path(idx).glob(f"{SCRATCH_PREFIX}*.db*"):
        p.unlink(missing_ok=True)


def _unlink(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class ScratchWriter:
    """One worker process's scratch files: its parsed files' rows, one plain-table row each."""

    def __init__(self, directory: Path, run: str) -> None:
        self.directory, self.run = Path(directory), run
        self.seq = 0
        self.conn: sqlite3.Connection | None = None
        self.path: Path | None = None
        self.files = self.bytes = self.chunks = 0
        self.opened = 0.0

    def _open(self) -> None:
        self.seq += 1
        self.path = self.directory / f"{SCRATCH_PREFIX}{self.run}-{os.getpid()}-{self.seq}.db"
        _unlink(self.path)
        # No journal and no syncs: the file is read only after this worker is done with it, and a
        # crash loses nothing the next run would not parse again.
        self.conn = sqlite3.connect(str(self.path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=OFF")
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.executescript(_SCHEMA)
        self.files = self.bytes = self.chunks = 0
        self.opened = time.monotonic()

    def add(self, parsed: ParsedFile, rows: FileRows, *, hash: str, size: int, mtime: float,
            decode_errors: int) -> str:
        """Write one file's rows (committed before returning); returns the scratch file's path."""
        if self.conn is None or (self.files and (self.files >= SCRATCH_FILES or self.bytes >= SCRATCH_BYTES
                                                 or time.monotonic() - self.opened > SCRATCH_SECONDS)):
            if self.conn is not None:
                self.conn.close()
            self._open()
        c = self.conn
        assert c is not None and self.path is not None
        self.files += 1
        self.bytes += size
        fid, first = self.files, self.chunks + 1
        c.execute("BEGIN")
        c.execute("INSERT INTO files VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                  (fid, parsed.path, hash, parsed.language, parsed.module, size, mtime, parsed.lines,
                   file_status(parsed), parsed.syntax_errors, decode_errors, time.time()))
        c.executemany("INSERT INTO symbols VALUES (?,?,?,?,?,?,?,?,?)", [(fid, *r) for r in rows.symbols])
        c.executemany("INSERT INTO refs VALUES (?,?,?,?,?,?,?,?)", [(fid, *r) for r in rows.refs])
        if rows.chunks:
            c.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?)",
                          [(first + i, fid, *r) for i, r in enumerate(rows.chunks)])
            c.executemany("INSERT INTO chunks_fts VALUES (?,?,?,?)",
                          [(first + i, *r) for i, r in enumerate(rows.fts)])
            c.execute("INSERT INTO files_fts VALUES (?,?,?)", (fid, *rows.file_fts()))
            self.chunks += len(rows.chunks)
        c.execute("COMMIT")
        return str(self.path)


class ScratchCopier:
    """The writer's side: which scratch files are finished, and their copy into the index."""

    def __init__(self, store: IndexStore) -> None:
        self.store = store
        self.current: dict[str, str] = {}  # worker (pid) -> the scratch file its last result named
        self.waiting: set[str] = set()  # named by a result, not copied yet

    def arrived(self, scratch: str) -> list[str]:
        """Note a result's scratch file; returns the files this finishes (that worker's previous one)."""
        worker = Path(scratch).stem.rsplit("-", 1)[0]
        self.waiting.add(scratch)
        prev = self.current.get(worker)
        self.current[worker] = scratch
        return [prev] if prev is not None and prev != scratch else []

    def rest(self) -> list[str]:
        """Every file named and not copied yet (the pool has finished: they are complete)."""
        return sorted(self.waiting)

    def copy(self, scratch: str) -> int:
        """Copy one scratch file's rows into the index in one transaction, then delete it; returns
        the number of files it held."""
        c = self.store.conn
        c.execute("ATTACH DATABASE ? AS scratch", (scratch,))
        try:
            with transaction(c):
                fo = c.execute("SELECT coalesce(max(id), 0) FROM main.files").fetchone()[0]
                co = c.execute("SELECT coalesce(max(id), 0) FROM main.chunks").fetchone()[0]
                n = c.execute("SELECT count(*) FROM scratch.files").fetchone()[0]
                for sql, offsets in _COPIES:
                    c.execute(sql, tuple(fo if o == "f" else co for o in offsets))
        finally:
            c.execute("DETACH DATABASE scratch")
        self.waiting.discard(scratch)
        _unlink(Path(scratch))
        return n
