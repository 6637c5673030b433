"""The chunk rows a query ranks, read from the index by id.

Why a type: every stage after the signals (boosts, the graph's seeds, the re-rank, hits, locate)
reads a candidate's path, lines, symbol and kind; named fields say which, where positional tuples
hid it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_VARIABLES = 900  # ids per statement, under SQLite's variable limit


@dataclass(frozen=True, slots=True)
class ChunkRow:
    path: str  # relative to the repo root
    start_line: int
    end_line: int
    symbol: str | None  # qualified name of the enclosing definition
    kind: str
    text: str


def by_ids(conn: sqlite3.Connection, sql: str, ids: Iterable[int]) -> Iterator[tuple]:
    """Rows of `sql` (one `IN ({})` placeholder) for distinct ids, in batches under SQLite's
    variable limit."""
    ids = list(dict.fromkeys(ids))
    for i in range(0, len(ids), MAX_VARIABLES):
        part = ids[i : i + MAX_VARIABLES]
        yield from conn.execute(sql.format(",".join("?" * len(part))), part)


def chunk_rows(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, ChunkRow]:
    """Chunk id -> its row, for the ids still in the index."""
    return {r[0]: ChunkRow(*r[1:]) for r in by_ids(
        conn, "SELECT c.id, f.path, c.start_line, c.end_line, c.symbol, c.kind, c.text FROM chunks c"
              " JOIN files f ON f.id=c.file_id WHERE c.id IN ({})", ids)}
