"""Definitions of unchanged files taken from an existing index instead of parsing them again.

`repoloop tags` on an indexed tree: a file whose size and mtime equal the index's row (and whose
mtime is safely older than its indexing) has the same symbols in SQLite as a parse would give, as
long as the index was built by the same parser code and grammars (the `parser_fingerprint` meta).
The index stores each symbol's qualname and parent; the in-file scope and the parent's kind that
a tags file shows are rebuilt from them. Anything unusable (no index, another parser, a locked or
damaged database) means a cold run, never an error.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from repoloop.indexer.parse.languages import LANGUAGES, MODULE_PREFIXED, QUALNAME_SEP
from repoloop.indexer.schema import PARSER_FINGERPRINT_KEY
from repoloop.indexer.store import DB_NAME
from repoloop.indexer.tags.extract import OUTER_KIND, DefRow

_TRUST_MARGIN = 1.0  # as the pipeline: an mtime this close to the indexing time is not trusted


class IndexedDefs:
    """The usable part of an index: which files it can answer for, and their definitions."""

    def __init__(self, conn: sqlite3.Connection, stats: dict[str, tuple[int, int, float, float]]) -> None:
        self._conn = conn
        self._stats = stats  # path -> (file id, size, mtime, indexed_at)

    @classmethod
    def open(cls, root: Path) -> IndexedDefs | None:
        db = Path(root) / ".repoloop" / DB_NAME
        if not db.is_file():
            return None
        try:
            from repoloop.indexer.pipeline import parser_fingerprint

            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)
            row = conn.execute("SELECT value FROM meta WHERE key=?", (PARSER_FINGERPRINT_KEY,)).fetchone()
            if row is None or row[0] != parser_fingerprint():
                conn.close()
                return None
            stats = {r[0]: (r[1], r[2], r[3], r[4]) for r in conn.execute(
                "SELECT path, id, size, mtime, indexed_at FROM files WHERE language IS NOT NULL")}
        except sqlite3.Error:
            return None
        return cls(conn, stats)

    def close(self) -> None:
        self._conn.close()

    def fresh(self, path: str, size: int, mtime: float) -> int | None:
        """The file's id in the index when its row is known to match the file on disk."""
        s = self._stats.get(path)
        if s is None or s[1] != size or s[2] != mtime or not mtime < s[3] - _TRUST_MARGIN:
            return None
        return s[0]

    def defs(self, file_ids: list[int]) -> dict[int, tuple[str, list[DefRow]]]:
        """file id -> (language, definition rows, as `extract.extract_file` returns them), for the files
        the index parsed with a grammar (one it kept as plain text is parsed again)."""
        out: dict[int, tuple[str, list[DefRow]]] = {}
        if not file_ids:
            return out
        try:
            self._conn.execute("CREATE TEMP TABLE IF NOT EXISTS want(id INTEGER PRIMARY KEY)")
            self._conn.execute("DELETE FROM want")
            self._conn.executemany("INSERT INTO want VALUES (?)", [(i,) for i in file_ids])
            rows = self._conn.execute(
                "SELECT f.id, f.language, s.name, s.qualname, s.kind, s.start_line, s.end_line, s.parent"
                " FROM want w JOIN files f ON f.id = w.id JOIN symbols s ON s.file_id = f.id"
                " ORDER BY f.id, s.id").fetchall()
            files = self._conn.execute(
                "SELECT f.id, f.language, f.module FROM want w JOIN files f ON f.id = w.id").fetchall()
        except sqlite3.Error:
            return {}
        by_file: dict[int, list[tuple]] = {}
        for r in rows:
            by_file.setdefault(r[0], []).append(r[2:])
        for fid, lang, module in files:
            if lang in LANGUAGES:
                out[fid] = (lang, _rows(lang, module or "", by_file.get(fid, [])))
        return out


def _rows(language: str, module: str, symbols: list[tuple]) -> list[DefRow]:
    """Rebuild (local scope, scope kind) of each symbol from qualnames. The part of a qualname that
    is not written in the file is the module (languages whose qualnames start with it), else what
    precedes a top-level symbol's name (a file-wide namespace)."""
    sep = QUALNAME_SEP.get(language, ".")
    if language in MODULE_PREFIXED:
        prefix = f"{module}{sep}" if module else ""
    else:
        prefix = next((q[: len(q) - len(n)] for n, q, _k, _s, _e, p in symbols if not p and q.endswith(n)), "")
    kind_of = {q: k for _n, q, k, *_ in symbols}
    out: list[DefRow] = []
    for name, qual, kind, start, end, parent in symbols:
        if not parent:
            out.append((name, qual, kind, start, end, "", "", ""))
            continue
        local = parent[len(prefix):] if prefix and parent.startswith(prefix) else parent
        pkind = kind_of.get(parent) or OUTER_KIND.get(language, "class")
        out.append((name, qual, kind, start, end, parent, local, pkind))
    return out
