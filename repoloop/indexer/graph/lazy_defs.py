"""The Resolver's symbol tables read from SQLite on demand, for incremental graph updates.

A one-file re-index resolves a few hundred references, yet loading every symbol into dicts costs
seconds on a big repo (1 s of CPU on the standard library's 75k symbols, 10x that on a monorepo).
These read-only mappings answer the same questions (`q in defs`, `defs.get(q)`, `by_name.get(n)`,
`file_syms.get(fid)`) through the `symbols_qualname`, `symbols_name` and `symbols_file` indexes,
with the same first-definition-wins rule as the eager tables, and remember what they read.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class _SqlTable(Generic[K, V]):
    """A memoizing read-only mapping; subclasses say how to read one key."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._memo: dict[K, V | None] = {}

    def _read(self, key: K) -> V | None:
        raise NotImplementedError

    def get(self, key: K, default: Any = None) -> Any:
        if key not in self._memo:
            self._memo[key] = self._read(key)
        got = self._memo[key]
        return default if got is None else got

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None  # type: ignore[arg-type]

    def __getitem__(self, key: K) -> V:
        got = self.get(key)
        if got is None:
            raise KeyError(key)
        return got


class SqlDefs(_SqlTable[str, Any]):
    """qualname -> info_type(kind, file_id, parent) of its first definition (lowest symbol id)."""

    def __init__(self, conn: sqlite3.Connection, info_type: Any) -> None:
        super().__init__(conn)
        self.info_type = info_type
        self.names: dict[str, str] = {}  # qualname -> the name of that first definition

    def _read(self, key: str) -> Any:
        row = self.conn.execute(
            "SELECT kind, file_id, parent, name FROM symbols WHERE qualname=? ORDER BY id LIMIT 1", (key,)
        ).fetchone()
        if row is None:
            return None
        self.names[key] = row[3]
        return self.info_type(row[0], row[1], row[2])


class SqlByName(_SqlTable[str, list]):
    """name -> qualnames whose first definition has that name, in order of first definition."""

    def __init__(self, conn: sqlite3.Connection, defs: SqlDefs) -> None:
        super().__init__(conn)
        self.defs = defs

    def _read(self, key: str) -> list | None:
        quals = [q for (q,) in self.conn.execute(
            "SELECT qualname FROM symbols WHERE name=? GROUP BY qualname ORDER BY min(id)", (key,))]
        out = [q for q in quals if q in self.defs and self.defs.names.get(q) == key]
        return out or None


class SqlFileSyms(_SqlTable[int, list]):
    """file id -> the qualnames defined in it, in symbol order."""

    def _read(self, key: int) -> list | None:
        out = [q for (q,) in self.conn.execute("SELECT qualname FROM symbols WHERE file_id=? ORDER BY id", (key,))]
        return out or None
