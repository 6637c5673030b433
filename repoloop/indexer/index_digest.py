"""A digest of everything an index holds, independent of row ids and insertion order.

Two indexes of the same tree built different ways (a bulk full build, file-by-file updates, a
branch switch, another version of the writer) must hold the same symbols, references, chunks, FTS
rows and edges; ids and `indexed_at` may differ. `table_digests` gives one sha256 per table over
its rows keyed by file path, sorted, so a test or a benchmark can compare two indexes (or one
index against a stored expectation) without keeping either in memory.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

# (table, SELECT producing id-free rows). Every row is keyed by its file's path.
QUERIES: dict[str, str] = {
    "files": "SELECT path, hash, language, module, size, lines, status, syntax_errors, decode_errors FROM files",
    "symbols": "SELECT f.path, s.name, s.qualname, s.kind, s.start_line, s.end_line, s.signature, s.doc, s.parent"
               " FROM symbols s JOIN files f ON f.id = s.file_id",
    "refs": "SELECT f.path, r.name, r.kind, r.line, r.scope, r.full, r.module, r.alias"
            " FROM refs r JOIN files f ON f.id = r.file_id",
    "chunks": "SELECT f.path, c.start_line, c.end_line, c.symbol, c.kind, c.text, c.header, c.hash"
              " FROM chunks c JOIN files f ON f.id = c.file_id",
    "chunks_fts": "SELECT f.path, c.start_line, c.end_line, c.symbol, x.path, x.names, x.body"
                  " FROM chunks_fts x JOIN chunks c ON c.id = x.rowid JOIN files f ON f.id = c.file_id",
    "files_fts": "SELECT f.path, x.path, x.body FROM files_fts x JOIN files f ON f.id = x.rowid",
    "edges": "SELECT f.path, e.src, e.dst, e.kind, e.weight, e.line FROM edges e JOIN files f ON f.id = e.file_id",
    "graph_files": "SELECT path, hash, iface FROM graph_files",
    "graph_edge_sums": "SELECT path, digest FROM graph_edge_sums",
    "skips": "SELECT path, reason FROM skips",
}


def table_digests(db: Path | str | sqlite3.Connection) -> dict[str, dict[str, object]]:
    """{table: {"rows": n, "sha256": hex}} over the sorted rows of each table in QUERIES, plus the
    FTS tables' own consistency: rows of chunks_fts/files_fts without their chunk/file count as
    `orphans` (they must be 0)."""
    conn = db if isinstance(db, sqlite3.Connection) else sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out: dict[str, dict[str, object]] = {}
        for table, sql in QUERIES.items():
            rows = sorted(tuple("" if v is None else v for v in r) for r in conn.execute(sql))
            h = hashlib.sha256()
            for r in rows:
                h.update(repr(r).encode("utf-8", "surrogatepass"))
                h.update(b"\n")
            out[table] = {"rows": len(rows), "sha256": h.hexdigest()}
        out["orphans"] = {
            "chunks_fts": conn.execute(
                "SELECT count(*) FROM chunks_fts WHERE rowid NOT IN (SELECT id FROM chunks)").fetchone()[0],
            "files_fts": conn.execute(
                "SELECT count(*) FROM files_fts WHERE rowid NOT IN (SELECT id FROM files)").fetchone()[0],
        }
        return out
    finally:
        if not isinstance(db, sqlite3.Connection):
            conn.close()


def differences(a: dict, b: dict) -> list[str]:
    """Tables whose digests differ, with their row counts: empty when the two indexes are equal."""
    return [f"{t}: {a.get(t)} != {b.get(t)}" for t in sorted(set(a) | set(b)) if a.get(t) != b.get(t)]
