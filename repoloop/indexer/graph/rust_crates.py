"""Rust's module tree as the compiler builds it: crate roots, `mod` declarations, workspace crates.

A file's stored module (`crate::a::b`, or path-based `crates::core::flags` outside a `src/`) is a
naming convention; what `use crate::flags::HiArgs` means depends on the crate the file belongs to
and on the `mod` declarations that reach it. So: every `mod x;` (a module symbol with a file
`x.rs` or `x/mod.rs` beside its declarer) links a parent file to a child file; a file no other
file declares is a crate root (`src/lib.rs`, `src/main.rs`, a `[[bin]]` path such as
`crates/core/main.rs`, `tests/*.rs`); and the workspace's own crates are known by their
Cargo.toml names (`grep-matcher` is `grep_matcher`) and by the keys of path dependencies.

A position in the tree is (file id, inline module names): `mod tests { ... }` inside a file is
(file, ("tests",)). Its stored qualname prefix is the file's module joined with those names.
"""

from __future__ import annotations

import posixpath
import sqlite3
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field

Position = tuple[int, tuple[str, ...]]


@dataclass(slots=True)
class RustCrates:
    """The module tree of every Rust crate in the repository."""

    modules: dict[int, str] = field(default_factory=dict)  # file id -> stored module
    paths: dict[int, str] = field(default_factory=dict)  # file id -> path
    children: dict[Position, dict[str, int]] = field(default_factory=dict)  # `mod x;` -> file id
    inline: dict[Position, set[str]] = field(default_factory=dict)  # `mod x { .. }` names
    decl_line: dict[int, tuple[int, int]] = field(default_factory=dict)  # child -> (declaring file, line)
    parent: dict[int, Position] = field(default_factory=dict)  # child file -> where it is declared
    crates: dict[str, int] = field(default_factory=dict)  # crate name (underscored) -> lib root file

    @classmethod
    def build(cls, files: Iterable[tuple[int, str, str]], mods: Iterable[tuple[int, str, str | None, int]],
              manifests: dict[str, str]) -> RustCrates:
        """`files`: (id, path, module) of the Rust files; `mods`: (file id, qualname, parent, line)
        of their module symbols; `manifests`: Cargo.toml path -> text."""
        self = cls()
        by_path: dict[str, int] = {}
        for fid, path, module in files:
            self.modules[fid] = module
            self.paths[fid] = path
            by_path[path] = fid
        for fid, qual, _parent, line in sorted(mods, key=lambda m: (m[0], m[3])):
            module = self.modules.get(fid)
            if module is None:
                continue
            rel = qual[len(module) + 2:] if module and qual.startswith(module + "::") else qual
            names = tuple(p for p in rel.split("::") if p)
            if not names:
                continue
            *outer, name = names
            where: Position = (fid, tuple(outer))
            child = _mod_file(by_path, self.paths[fid], (*outer, name))
            if child is not None and child != fid and child not in self.parent:
                self.children.setdefault(where, {})[name] = child
                self.parent[child] = where
                self.decl_line[child] = (fid, line)
            else:
                self.inline.setdefault(where, set()).add(name)
        for path, text in sorted(manifests.items()):
            self._manifest(path, text, by_path)
        return self

    def _manifest(self, path: str, text: str, by_path: dict[str, int]) -> None:
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, ValueError):
            return
        here = posixpath.dirname(path)
        pkg = data.get("package") if isinstance(data.get("package"), dict) else {}
        lib = data.get("lib") if isinstance(data.get("lib"), dict) else {}
        lib_path = lib.get("path") if isinstance(lib.get("path"), str) else "src/lib.rs"
        root = by_path.get(posixpath.normpath(posixpath.join(here, lib_path)))
        name = lib.get("name") or pkg.get("name")
        if root is not None and isinstance(name, str):
            self.crates.setdefault(name.replace("-", "_"), root)
        for table in _dependency_tables(data):
            for key, spec in table.items():
                if isinstance(spec, dict) and isinstance(spec.get("path"), str):
                    d = posixpath.normpath(posixpath.join(here, spec["path"]))
                    dep_root = by_path.get(posixpath.join(d, "src/lib.rs").lstrip("./"))
                    if dep_root is not None:
                        self.crates.setdefault(key.replace("-", "_"), dep_root)

    # -- positions ------------------------------------------------------------------------------
    def root(self, fid: int) -> int:
        seen = {fid}
        while fid in self.parent:
            fid = self.parent[fid][0]
            if fid in seen:
                break
            seen.add(fid)
        return fid

    def prefix(self, pos: Position) -> str:
        """The stored qualname prefix of a position."""
        module = self.modules.get(pos[0], "")
        return "::".join(p for p in (module, *pos[1]) if p)

    def up(self, pos: Position) -> Position | None:
        """`super`: the enclosing module."""
        fid, inline = pos
        if inline:
            return fid, inline[:-1]
        return self.parent.get(fid)

    def child(self, pos: Position, name: str) -> Position | None:
        """The module `name` declared at `pos` (a file or an inline block), or None."""
        fid = self.children.get(pos, {}).get(name)
        if fid is not None:
            return fid, ()
        if name in self.inline.get(pos, ()):
            return pos[0], (*pos[1], name)
        return None

    def position_of_scope(self, fid: int, scope: str | None) -> Position:
        """Where an item with this scope sits: inside the inline modules its qualname names."""
        module = self.modules.get(fid, "")
        if not scope:
            return fid, ()
        if module:
            if not scope.startswith(module + "::"):
                return fid, ()
            scope = scope[len(module) + 2:]
        names = scope.split("::")
        pos: Position = (fid, ())
        for n in names:
            if n in self.inline.get(pos, ()):
                pos = (fid, (*pos[1], n))
            else:
                break
        return pos


def _dependency_tables(data: dict) -> list[dict]:
    out: list[dict] = []
    for key in ("dependencies", "dev-dependencies", "build-dependencies"):
        if isinstance(data.get(key), dict):
            out.append(data[key])
    ws = data.get("workspace")
    if isinstance(ws, dict) and isinstance(ws.get("dependencies"), dict):
        out.append(ws["dependencies"])
    target = data.get("target")
    if isinstance(target, dict):
        for t in target.values():
            if isinstance(t, dict):
                out += [t[k] for k in ("dependencies", "dev-dependencies") if isinstance(t.get(k), dict)]
    return out


def _mod_file(by_path: dict[str, int], path: str, names: tuple[str, ...]) -> int | None:
    """The file of `mod a { mod b; }` (names a, b) declared in `path`: dir/a/b.rs or dir/a/b/mod.rs,
    where dir is path's directory for lib.rs/main.rs/mod.rs and path without `.rs` otherwise."""
    d, base = posixpath.split(path)
    stem = posixpath.splitext(base)[0]
    roots = [d] if stem in ("lib", "main", "mod") else [posixpath.join(d, stem), d]  # d: a crate root
    rel = "/".join(names)                                                        # such as tests/tests.rs
    for root in roots:
        for c in (f"{root}/{rel}.rs", f"{root}/{rel}/mod.rs"):
            fid = by_path.get(c.lstrip("/"))
            if fid is not None:
                return fid
    return None


def load(conn: sqlite3.Connection) -> RustCrates | None:
    """The tree from the index: Rust files, their module symbols, the Cargo.toml files indexed as
    text. None in a repository without Rust."""
    try:
        files = conn.execute("SELECT id, path, module FROM files WHERE language='rust'").fetchall()
        if not files:
            return None
        mods = conn.execute(
            "SELECT s.file_id, s.qualname, s.parent, s.start_line FROM symbols s JOIN files f ON f.id=s.file_id"
            " WHERE f.language='rust' AND s.kind='module'").fetchall()
        texts: dict[str, list[str]] = {}
        for path, text in conn.execute(
                "SELECT f.path, c.text FROM chunks c JOIN files f ON f.id=c.file_id"
                " WHERE f.path='Cargo.toml' OR f.path LIKE '%/Cargo.toml' ORDER BY f.path, c.start_line"):
            texts.setdefault(path, []).append(text)
    except sqlite3.Error:
        return None
    return RustCrates.build(files, mods, {p: "\n".join(t) for p, t in texts.items()})
