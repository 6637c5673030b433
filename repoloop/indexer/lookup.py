"""Read-side queries on the symbol tables: definitions by name, references, a file's outline.

Shared by the CLI (`symbol`, `outline`) and anything else that wants the JSON shapes README documents
without going through retrieval ranking.
"""

from __future__ import annotations

from typing import Any

from repoloop.indexer.store import IndexStore

# Separators that may precede a name's last component in a qualname, across languages.
_SEPS = (".", "::", "\\", "/", "#")


def _norm(name: str) -> str:
    for sep in _SEPS[1:]:
        name = name.replace(sep, ".")
    return name


def find_definitions(store: IndexStore, name: str) -> list[dict[str, Any]]:
    """Definitions of NAME: an exact qualified name, else a bare name, else a dotted suffix
    (`Class.method`). Exact qualname matches win; results in path/line order."""
    name = name.strip()
    if not name:
        return []
    rows = store.conn.execute(
        "SELECT s.qualname, s.kind, f.path, s.start_line, s.end_line, s.signature, s.doc"
        " FROM symbols s JOIN files f ON f.id = s.file_id WHERE s.qualname = ?"
        " ORDER BY f.path, s.start_line", (name,)).fetchall()
    if not rows:
        want = _norm(name)
        last = want.rsplit(".", 1)[-1]
        cands = store.conn.execute(
            "SELECT s.qualname, s.kind, f.path, s.start_line, s.end_line, s.signature, s.doc"
            " FROM symbols s JOIN files f ON f.id = s.file_id WHERE s.name = ?"
            " ORDER BY f.path, s.start_line", (last,)).fetchall()
        if "." in want:
            rows = [r for r in cands if _norm(r[0]) == want or _norm(r[0]).endswith("." + want)]
        else:
            rows = cands
    return [{"qualname": r[0], "kind": r[1], "path": r[2], "start_line": r[3], "end_line": r[4],
             "signature": r[5], "doc": r[6]} for r in rows]


def find_refs(store: IndexStore, name: str, limit: int = 1000) -> list[dict[str, Any]]:
    """References to NAME: `{"qualname": enclosing scope or None, "path", "line", "kind"}`.

    Matched on the last component only: the receiver's type of `x.save()` is not known statically,
    so `A.save` lists every `.save` reference (over-inclusive rather than missing callers)."""
    last = _norm(name.strip()).rsplit(".", 1)[-1]
    if not last:
        return []
    rows = store.conn.execute(
        "SELECT r.scope, f.path, r.line, r.kind FROM refs r JOIN files f ON f.id = r.file_id"
        " WHERE r.name = ? AND r.kind != 'type' ORDER BY f.path, r.line LIMIT ?", (last, limit)).fetchall()
    return [{"qualname": r[0], "path": r[1], "line": r[2], "kind": r[3]} for r in rows]


def outline(store: IndexStore, path: str) -> dict[str, Any] | None:
    """Every definition in one file, in order (the `outline --json` shape in README); None if not indexed."""
    row = store.conn.execute("SELECT id, module FROM files WHERE path = ?", (path,)).fetchone()
    if row is None:
        return None
    file_id, module = row[0], row[1] or ""
    symbols = []
    for r in store.conn.execute(
            "SELECT name, qualname, kind, start_line, end_line, signature, parent FROM symbols"
            " WHERE file_id = ? ORDER BY start_line, end_line DESC, id", (file_id,)):
        symbols.append({"name": _local_name(r[1], r[0], module), "qualname": r[1], "kind": r[2],
                        "start_line": r[3], "end_line": r[4], "signature": r[5]})
    return {"path": path, "symbols": symbols}


def _local_name(qualname: str, name: str, module: str) -> str:
    """`Class.method` from `pkg.mod.Class.method`: the qualname without its module prefix."""
    if module:
        for sep in _SEPS:
            if qualname.startswith(module + sep):
                return qualname[len(module) + len(sep):]
    return qualname or name
