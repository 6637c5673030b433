"""Resolve a stored reference (a call, a base class, an identifier use) to symbol qualnames.

Order, as a reader of the code would: the enclosing definitions and the module, then what the file
imports, then `self`/`this` members of the enclosing class and its bases, then — only where the
language's scoping is loose (C, C++, Ruby, PHP, C#, Java, JS, Rust) — a name unique in the repo.
An ambiguous name gives one weaker edge per candidate (weight 1/n, none at all beyond
MAX_CANDIDATES), never a guess presented as fact; JS/Rust bare-name guesses and `obj.method()` with
an unknown receiver type weigh half that again. Python and Go scoping is exact, so a bare name that
is neither local nor imported (a builtin, a parameter) gives no edge there. Names bound to modules
outside the repo (`os.path.join`, `fmt.Println`) give no edge either.
"""

from __future__ import annotations

import builtins
import json
import os
import posixpath
import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repoloop.indexer.graph import rust_crates
from repoloop.indexer.graph.resolve_imports import (
    FileInfo,
    ImportRef,
    JsPackage,
    RepoFiles,
    ResolvedImports,
    TsPath,
    resolve_imports,
)
from repoloop.indexer.graph.typed.engine import FAMILIES as TYPED_FAMILIES
from repoloop.indexer.graph.typed.engine import TypeFlow
from repoloop.indexer.safe_read import read_repo_file

MAX_CANDIDATES = 5  # ambiguous names with more definitions than this give no edge at all
MEMO_FILES = 4096  # per-file memos (imports, base-class refs) kept: bounded memory on any repo size
RECEIVER_WEIGHT = 0.5  # `obj.method()` with an unknown receiver: a name match, weaker still
CLASS_KINDS = frozenset({"class", "struct", "interface", "trait", "enum", "impl", "module", "namespace"})
CALLABLE_KINDS = frozenset({"function", "method", "class", "struct", "interface", "trait", "enum", "type",
                            "macro", "impl"})
SELF_WORDS = frozenset({"self", "this", "cls", "Self", "$this", "@"})
SUPER_WORDS = frozenset({"super", "super()", "base", "parent"})
# Families where names from enclosing classes are not visible unqualified inside methods.
_CLASS_SCOPE_HIDDEN = frozenset({"python", "js", "go", "rust"})
# Families whose unresolved bare names fall back to a unique name in the repo (and its weight).
_FALLBACK = {"c": 1.0, "cs": 1.0, "ruby": 1.0, "php": 1.0, "java": 1.0, "js": 0.5, "rust": 0.5}
_VALUE_KINDS = frozenset({"variable", "constant", "field"})
_BOUND_KINDS = _VALUE_KINDS | {"module"}  # defined here, but an import says what the name is
_PY_BUILTINS = frozenset(dir(builtins))
_SPLIT = re.compile(r"::|->|\.|\\")
_IDENT = re.compile(r"^[A-Za-z_$@][\w$]*$")


@dataclass(slots=True)
class RefRow:
    name: str
    kind: str
    line: int
    scope: str | None
    full: str


@dataclass(slots=True, frozen=True)
class SymInfo:
    kind: str
    file_id: int
    parent: str | None


class Resolver:
    """Whole-repo symbol tables plus memoized per-file import bindings and class bases."""

    def __init__(self, conn: sqlite3.Connection, *, lazy: bool = False) -> None:
        """`lazy`: read symbols from SQLite as references need them (a few changed files),
        instead of loading every symbol up front (a full build)."""
        self.conn = conn
        self.repo = repo_files(conn)
        self.defs: dict[str, SymInfo] = {}
        self.by_name: dict[str, list[str]] = defaultdict(list)
        self.file_syms: dict[int, list[str]] = defaultdict(list)
        self._imports: dict[int, ResolvedImports] = {}
        self._bases: dict[str, list[str]] = {}
        self._inherits: dict[int, list[RefRow]] = {}
        self._go_recv: dict[str, str | None] = {}
        self._fallbacks: dict[tuple, list[tuple[str, float]]] = {}
        self.typed = TypeFlow(self)
        if lazy:
            from repoloop.indexer.graph.lazy_defs import SqlByName, SqlDefs, SqlFileSyms

            self.defs = SqlDefs(conn, SymInfo)  # type: ignore[assignment]
            self.by_name = SqlByName(conn, self.defs)  # type: ignore[assignment]
            self.file_syms = SqlFileSyms(conn)  # type: ignore[assignment]
            return
        # SQLite hands out a new str per row: one object per distinct qualname and kind (a parent
        # is some symbol's qualname) cuts the tables' size by about a fifth on big repos.
        one: dict[str, str] = {}
        for fid, name, qual, kind, parent in conn.execute(
            "SELECT file_id, name, qualname, kind, parent FROM symbols ORDER BY id"
        ):
            qual = one.setdefault(qual, qual)
            if qual not in self.defs:
                self.defs[qual] = SymInfo(one.setdefault(kind, kind), fid, parent and one.setdefault(parent, parent))
                self.by_name[name].append(qual)
            self.file_syms[fid].append(qual)

    # -- per-file data ------------------------------------------------------------------------
    def imports(self, file_id: int) -> ResolvedImports:
        got = self._imports.get(file_id)
        if got is None:
            rows = self.conn.execute(
                "SELECT name, line, full, module, alias, scope FROM refs WHERE file_id=? AND kind='import' ORDER BY id",
                (file_id,),
            ).fetchall()
            f = self.repo.by_id[file_id]
            got = resolve_imports(self.repo, f, [ImportRef(*r) for r in rows])
            self._imports[file_id] = got
            if len(self._imports) > MEMO_FILES:  # oldest out: a full build visits every file
                del self._imports[next(iter(self._imports))]
        return got

    def refs(self, file_id: int) -> list[RefRow]:
        return [RefRow(*r) for r in self.ref_rows(file_id)]

    def ref_rows(self, file_id: int) -> list[tuple[str, str, int, str | None, str]]:
        """(name, kind, line, scope, full) of the file's non-import references, as plain tuples."""
        cur = self.conn.cursor()
        cur.row_factory = None
        return cur.execute(
            "SELECT name, kind, line, scope, full FROM refs WHERE file_id=? AND kind!='import' ORDER BY id",
            (file_id,),
        ).fetchall()

    # -- classes ------------------------------------------------------------------------------
    def bases(self, cls: str) -> list[str]:
        """Resolved base classes of a class (memoized; cycles cut)."""
        got = self._bases.get(cls)
        if got is not None:
            return got
        self._bases[cls] = []  # cut cycles while resolving
        info = self.defs.get(cls)
        out: list[str] = []
        if info is not None:
            rows = self._inherits.get(info.file_id)
            if rows is None:
                rows = [RefRow(*r) for r in self.conn.execute(
                    "SELECT name, kind, line, scope, full FROM refs WHERE file_id=? AND kind='inherit'",
                    (info.file_id,),
                )]
                self._inherits[info.file_id] = rows
                if len(self._inherits) > MEMO_FILES:
                    del self._inherits[next(iter(self._inherits))]
            f = self.repo.by_id[info.file_id]
            for r in rows:
                if r.scope == cls:
                    out += [q for q, _w in self.resolve_ref(f, r.kind, r.scope, r.name, r.full) if q != cls]
        self._bases[cls] = out
        return out

    def mro(self, cls: str) -> list[str]:
        seen: list[str] = []
        todo = [cls]
        while todo and len(seen) < 64:
            c = todo.pop(0)
            if c in seen:
                continue
            seen.append(c)
            todo.extend(self.bases(c))
        return seen

    def member(self, cls: str, name: str, sep: str) -> str | None:
        for c in self.mro(cls):
            q = f"{c}{sep}{name}"
            if q in self.defs:
                return q
        return None

    def enclosing_class(self, scope: str | None) -> str | None:
        s = scope
        while s:
            info = self.defs.get(s)
            if info is None:
                return None
            if info.kind in CLASS_KINDS:
                return s
            s = info.parent
        return None

    # -- names --------------------------------------------------------------------------------
    def lookup(self, f: FileInfo, scope: str | None, name: str) -> tuple[str, bool] | None:
        """What a bare name means at `scope` in file f: (qualname or module prefix, is_module)."""
        sep = f.sep
        hide_class = f.family in _CLASS_SCOPE_HIDDEN
        s = scope
        while s:
            info = self.defs.get(s)
            if info is None:
                break
            if not (hide_class and s != scope and info.kind in CLASS_KINDS):
                q = f"{s}{sep}{name}"
                if q in self.defs:
                    return q, False
            s = info.parent
        imp = self.imports(f.id)
        if f.module and f.language in _MODULE_PREFIXED:
            q = f"{f.module}{sep}{name}"
            # `const h = require('./h')` defines a variable h, but the import says what it is
            # (and Rust's `mod x;` defines a module symbol, but the file it declares is what x names)
            if q in self.defs and not (name in imp.bindings and self.defs[q].kind in _BOUND_KINDS):
                return q, False
        else:
            for q in self.file_syms.get(f.id, ()):
                if q == name or q.endswith(sep + name):
                    if self.defs[q].parent is None:
                        return q, False
        for b in imp.bindings.get(name, ()):
            if b.is_module:
                return b.target, True
            q = self.chase(b.target, sep)
            if q is not None:
                return q, False
        for star in imp.stars:
            q = self.chase(f"{star}{sep}{name}", sep)
            if q is not None:
                return q, False
        if imp.bindings.get(name):
            return imp.bindings[name][0].target, False  # bound to something outside the repo
        return None

    def chase(self, qual: str, sep: str, depth: int = 0) -> str | None:
        """A symbol qualname, following re-exports (`from .impl import f` in a package)."""
        if qual in self.defs:
            return qual
        if depth > 4:
            return None
        mod, _, name = qual.rpartition(sep)
        if not mod:
            return None
        for fam in ("python", "js", "rust"):
            for fid in self.repo.modules.get((fam, mod), ()):
                imp = self.imports(fid)
                for b in imp.bindings.get(name, ()):
                    if not b.is_module:
                        q = self.chase(b.target, sep, depth + 1)
                        if q is not None:
                            return q
                for star in imp.stars:
                    q = self.chase(f"{star}{sep}{name}", sep, depth + 1)
                    if q is not None:
                        return q
        return None

    def resolve(self, f: FileInfo, r: RefRow) -> list[tuple[str, float]]:
        """Targets of one reference with their confidence weights (empty: unresolved/external)."""
        return self.resolve_ref(f, r.kind, r.scope, r.name, r.full, r.line)

    def resolve_ref(self, f: FileInfo, kind: str, scope: str | None, name: str, full: str,
                    line: int | None = None) -> list[tuple[str, float]]:
        """`resolve` on the fields of a reference (the hot path: no object per reference). Calls in
        Go, Rust, JS/TS and Java go by declared types first (`typed.engine`); only where those do
        not tell does a name-only guess follow."""
        if kind == "call" and f.family in TYPED_FAMILIES:
            got = self.typed.call(f, scope, full or name, line)
            if got is not None:
                return got
        full = full or name
        for ch in "[<":  # generic arguments / subscripts of base classes: `Generic[T]`, `List<T>`
            full = full.split(ch, 1)[0]
        parts = [p for p in _SPLIT.split(full) if p != ""]
        sep = f.sep
        if not parts:
            return []
        if len(parts) == 1 and _IDENT.match(parts[0]):
            hit = self.lookup(f, scope, parts[0])
            if hit is not None:
                return [(hit[0], 1.0)] if not hit[1] and hit[0] in self.defs else []
            if kind == "ref":
                return []
            return self._fallback(f, parts[0], _FALLBACK.get(f.family, 0.0), bare=True)
        head, rest = parts[0], parts[1:]
        if head in SELF_WORDS or head in SUPER_WORDS or (f.family == "go" and self._is_go_receiver(scope, head)):
            cls = self.enclosing_class(scope)
            if cls is None or len(rest) != 1:
                return []
            start = self.bases(cls) if head in SUPER_WORDS else [cls]
            for c in start:
                q = self.member(c, rest[0], sep)
                if q is not None:
                    return [(q, 1.0)]
            return []
        if not all(_IDENT.match(p) for p in parts):
            # The receiver is an expression (`foo().bar`, `a[0].b`): only the name is known.
            return self._fallback(f, name, RECEIVER_WEIGHT, bare=False) if kind == "call" else []
        hit = self.lookup(f, scope, head)
        if hit is None:
            if kind != "call" or (f.family == "python" and head in _PY_BUILTINS):
                return []
            return self._fallback(f, parts[-1], RECEIVER_WEIGHT, bare=False)  # a local variable's method
        target, is_module = hit
        q = self.chase(sep.join([target, *rest]), sep)
        if q is not None:
            return [(q, 1.0)]
        if not is_module and target in self.defs and len(rest) == 1:
            q = self.member(target, rest[0], sep)  # `Class.inherited_method`
            if q is not None:
                return [(q, 1.0)]
        return []

    def _fallback(self, f: FileInfo, name: str, weight: float, *, bare: bool) -> list[tuple[str, float]]:
        if weight <= 0 or name.startswith("__"):
            return []  # dunders (`__init__`) name a protocol, not one definition
        key = (f.family, name, bare, weight)
        got = self._fallbacks.get(key)
        if got is None:
            got = self._fallbacks[key] = self._fallback_candidates(f.family, name, weight, bare)
        return got

    def _fallback_candidates(self, fam: str, name: str, weight: float, bare: bool) -> list[tuple[str, float]]:
        cands = [q for q in self.by_name.get(name, ())
                 if self.defs[q].kind in CALLABLE_KINDS
                 and self.repo.by_id[self.defs[q].file_id].family == fam
                 and (not bare or self.defs[q].kind != "method" or fam in ("c", "ruby", "java", "cs", "php"))]
        if not cands or len(cands) > MAX_CANDIDATES:
            return []
        w = weight / len(cands)
        return [(q, w) for q in cands]

    def _is_go_receiver(self, scope: str | None, head: str) -> bool:
        """In a Go method, is `head` its receiver variable (`func (s *Server) ...`)?"""
        if not scope:
            return False
        if scope not in self._go_recv:
            row = self.conn.execute(
                "SELECT signature FROM symbols WHERE qualname=? AND kind='method' LIMIT 1", (scope,)
            ).fetchone()
            m = re.match(r"\s*func\s*\(\s*([A-Za-z_]\w*)", row[0]) if row else None
            self._go_recv[scope] = m.group(1) if m else None
        return self._go_recv[scope] == head


_MODULE_PREFIXED = frozenset({"python", "javascript", "typescript", "tsx", "go", "java", "rust"})


def go_module_path(conn: sqlite3.Connection) -> str | None:
    """The module path in go.mod, for resolving Go imports: from the index if go.mod was indexed
    as text, else from the go.mod beside the default index dir (REPO/.repoloop/index.db)."""
    try:
        if not conn.execute("SELECT 1 FROM files WHERE language='go' LIMIT 1").fetchone():
            return None
        row = conn.execute(
            "SELECT c.text FROM chunks c JOIN files f ON f.id=c.file_id WHERE f.path='go.mod' "
            "ORDER BY c.start_line LIMIT 1"
        ).fetchone()
        text = row[0] if row else None
        if text is None:
            db = next((r[2] for r in conn.execute("PRAGMA database_list") if r[1] == "main"), "")
            gomod = Path(db).parent.parent / "go.mod" if db else None
            if gomod is not None and gomod.is_file():
                # Not indexed, so perhaps skipped: a FIFO or a symlink out must not stall or leak.
                data = read_repo_file(str(gomod), os.path.realpath(gomod.parent), 65536, prefix=True)
                text = None if isinstance(data, str) else data.decode("utf-8", errors="replace")
    except (sqlite3.Error, OSError):
        return None
    m = re.search(r"^\s*module\s+(\S+)", text or "", re.M)
    return m.group(1).strip('"') if m else None


def _json_files(conn: sqlite3.Connection, where: str) -> dict[str, Any]:
    """Path -> parsed content of the JSON(C) files indexed as text whose path matches `where`, in a
    repository with JS/TS code; files that do not parse are left out."""
    texts: dict[str, list[str]] = defaultdict(list)
    try:
        if not conn.execute(
                "SELECT 1 FROM files WHERE language IN ('javascript', 'typescript', 'tsx') LIMIT 1").fetchone():
            return {}
        for path, text in conn.execute(
                f"SELECT f.path, c.text FROM chunks c JOIN files f ON f.id=c.file_id WHERE {where}"
                " ORDER BY f.path, c.start_line"):
            texts[path].append(text)
    except sqlite3.Error:
        return {}
    out: dict[str, Any] = {}
    for path, parts in texts.items():
        text = "\n".join(parts)  # text windows split at lines; blank ones are left out
        try:
            out[path] = json.loads(text)
        except ValueError:
            try:  # tsconfig and friends are JSON with comments and trailing commas
                import json5

                out[path] = json5.loads(text)
            except (ImportError, ValueError):
                continue
    return out


def js_packages(conn: sqlite3.Connection) -> dict[str, JsPackage]:
    """The repository's own JS/TS packages (name -> directory and entries), read from the
    package.json files indexed as text: a monorepo imports its workspace packages by name
    (`import { reactive } from '@vue/reactivity'`), and those imports are edges, not third-party."""
    out: dict[str, JsPackage] = {}
    for path, data in _json_files(conn, "f.path='package.json' OR f.path LIKE '%/package.json'").items():
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name:
            continue
        d = posixpath.dirname(path)
        if name in out and out[name].dir.count("/") <= d.count("/"):
            continue  # one name twice (a template, a fixture): the shallower package wins
        entries = tuple(v for k in ("source", "module", "main", "types", "typings")
                        if isinstance(v := data.get(k), str) and v)
        out[name] = JsPackage(d, entries)
    return out


def ts_paths(conn: sqlite3.Connection) -> list[TsPath]:
    """`compilerOptions.paths` of every tsconfig*.json / jsconfig*.json indexed as text, each
    relative to its `baseUrl` (else to the config's directory). Applied repository-wide: `extends`
    is not followed, and a pattern is taken from every config that has it."""
    out: list[TsPath] = []
    where = ("(f.path LIKE 'tsconfig%.json' OR f.path LIKE '%/tsconfig%.json'"
             " OR f.path LIKE 'jsconfig%.json' OR f.path LIKE '%/jsconfig%.json')")
    for path, data in _json_files(conn, where).items():
        opts = data.get("compilerOptions") if isinstance(data, dict) else None
        paths = opts.get("paths") if isinstance(opts, dict) else None
        if not isinstance(paths, dict):
            continue
        here = posixpath.dirname(path)
        base_url = opts.get("baseUrl")
        base = posixpath.normpath(posixpath.join(here, base_url)) if isinstance(base_url, str) else here
        base = "" if base == "." else base
        if base.startswith("../"):
            continue
        for pattern, targets in sorted(paths.items()):
            if isinstance(pattern, str) and pattern.count("*") <= 1 and isinstance(targets, list):
                good = tuple(t for t in targets if isinstance(t, str) and t.count("*") <= 1)
                if good:
                    out.append(TsPath(pattern, good, base))
    return out


def repo_files(conn: sqlite3.Connection) -> RepoFiles:
    """The index's files as import resolution sees them, with go.mod's module, the JS packages and
    the tsconfig path aliases."""
    files = [FileInfo.make(*r) for r in conn.execute("SELECT id, path, language, module FROM files")]
    return RepoFiles(files, go_module=go_module_path(conn), js_packages=js_packages(conn),
                     ts_paths=ts_paths(conn), rust=rust_crates.load(conn))
