"""Typed call resolution: follow a call's receiver chain through declared types.

`h.pool.Get(ctx).Dial()` is evaluated left to right: `h` is a parameter, local, receiver,
`self`/`this`, a package or module, a type or a variable; each `.name` is then a method or a field
of the type found so far (through embedded structs, bases and traits), each `()` the declared
result of the function just named. The declared types come from the `type` references the parser
stores (`handlers.typefacts`); names in them resolve through the same imports as calls.

The answer for a call is one of: the target (certain: weight 1), nothing (certain: the receiver is
outside the repository: an imported package, a standard type, a builtin), or "unknown" (None),
for which the resolver keeps its weighted name-only candidates.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from repoloop.indexer.graph.resolve_imports import FileInfo, _rust_use
from repoloop.indexer.graph.typed.langs import PARSERS, PASS, UNWRAP
from repoloop.indexer.graph.typed.syntax import Builtin, Holder, Named

if TYPE_CHECKING:
    from repoloop.indexer.graph.resolve_refs import Resolver

FAMILIES = frozenset({"go", "rust", "js", "java"})
MAX_DEPTH = 8
MEMO_FILES = 4096
_CLASSY = frozenset({"class", "struct", "interface", "trait", "enum", "impl", "type", "namespace"})
_FUNCS = frozenset({"function", "method"})
_VALUES = frozenset({"variable", "constant", "field"})


# -- states of a chain being evaluated --------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Mod:
    prefix: str
    in_repo: bool


@dataclass(frozen=True, slots=True)
class Sym:  # a function or method, not called yet
    q: str
    ctx: int = -1  # a file id of the crate q was found from (Rust qualnames repeat across crates)


@dataclass(frozen=True, slots=True)
class Inst:  # a value of a repository type
    q: str
    ctx: int = -1


@dataclass(frozen=True, slots=True)
class Static:  # the type itself: `T::new`, `Foo.create`
    q: str
    ctx: int = -1


@dataclass(frozen=True, slots=True)
class Ext:
    """Outside the repository; `elem` is what an index, `?`, `await` or unwrap reaches, where known."""

    elem: tuple[str, int, str | None] | None = None  # (type text, file id, scope)
    unwrap: bool = False  # a pending `.unwrap()`-like call: its result is elem
    keep: bool = False  # a pending `.as_ref()`-like call: its result is this holder


State = Mod | Sym | Inst | Static | Ext | None
EXT = Ext()


@dataclass(slots=True)
class Seg:
    name: str
    ops: list[str] = field(default_factory=list)  # "()", "[]", "?", in order
    cast: bool = False  # Go `x.(T)`: name is the asserted type

_ID = re.compile(r"[A-Za-z_$@#][\w$]*")
_SEPS = ("::", "?.", "!.", "->", ".")
_CLOSE = {"(": ")", "[": "]", "<": ">"}


def parse_chain(text: str) -> list[Seg] | None:
    """`a.b(x)?.c[0]` -> [a, b ()?, c []]; None when the text is not a plain receiver chain.
    A fresh list each time (callers append to the last segment's ops); parsed once per text."""
    got = _parse_cached(text)
    return None if got is None else [Seg(n, list(ops), cast) for n, ops, cast in got]


@lru_cache(maxsize=65536)
def _parse_cached(text: str) -> tuple[tuple[str, tuple[str, ...], bool], ...] | None:
    segs = _parse_chain(text)
    return None if segs is None else tuple((x.name, tuple(x.ops), x.cast) for x in segs)


def _parse_chain(text: str) -> list[Seg] | None:
    segs: list[Seg] = []
    i, n = 0, len(text)
    want_name = True
    while i < n:
        if want_name:
            m = _ID.match(text, i)
            if m is None:
                return None
            segs.append(Seg(m.group()))
            i = m.end()
            want_name = False
            continue
        c = text[i]
        if text.startswith("::<", i) or c == "<":
            j = _skip(text, i + (2 if c == ":" else 0))
            if j < 0:
                return None
            i = j
            continue
        if text.startswith(".(", i):  # a Go type assertion
            j = _skip(text, i + 1)
            if j < 0:
                return None
            segs.append(Seg(text[i + 2:j - 1], cast=True))
            i = j
            continue
        sep = next((s for s in _SEPS if text.startswith(s, i)), None)
        if sep is not None:
            i += len(sep)
            want_name = True
            continue
        if c in "([":
            j = _skip(text, i)
            if j < 0:
                return None
            segs[-1].ops.append("()" if c == "(" else "[]")
            i = j
        elif c == "?":
            segs[-1].ops.append("?")
            i += 1
        elif c == "!":
            i += 1
        else:
            return None
    return segs if segs and not want_name else None


def _skip(text: str, i: int) -> int:
    """Index after the bracket group opening at i, or -1."""
    open_ = text[i]
    close = _CLOSE[open_]
    depth = 0
    for j in range(i, len(text)):
        if text[j] == open_:
            depth += 1
        elif text[j] == close:
            depth -= 1
            if depth == 0:
                return j + 1
    return -1


class TypeFlow:
    """Declared types per file, and chain evaluation over the resolver's symbol tables."""

    def __init__(self, resolver: Resolver) -> None:
        self.r = resolver
        self._facts: dict[int, dict[str | None, dict[str, list[tuple[int, str, str]]]]] = {}
        self._types: dict[tuple[int, str | None, str], State] = {}
        self._dups: dict[str, list[Any]] | None = None
        # Set when an answer depended on the call's line (a local in force): the graph build
        # memoizes other answers per (scope, callee) across lines.
        self.line_sensitive = False

    # -- facts ------------------------------------------------------------------------------------
    def facts(self, fid: int) -> dict[str | None, dict[str, list[tuple[int, str, str]]]]:
        """scope -> name -> [(line, role, type)], lines ascending."""
        got = self._facts.get(fid)
        if got is None:
            got = defaultdict(lambda: defaultdict(list))
            for name, line, scope, role, full in self.r.conn.execute(
                    "SELECT name, line, scope, module, full FROM refs WHERE file_id=? AND kind='type' ORDER BY line, id",
                    (fid,)):
                got[scope][name].append((line, role or "", full or ""))
            got = {k: dict(v) for k, v in got.items()}
            self._facts[fid] = got
            if len(self._facts) > MEMO_FILES:
                del self._facts[next(iter(self._facts))]
        return got

    def _fact(self, fid: int, scope: str | None, name: str, roles: frozenset[str], line: int | None
              ) -> tuple[int, str] | None:
        """(line, type) of the declaration of `name` in `scope` in force at `line`: the innermost
        visible one (a local's role carries the last line of its block: `local:120`)."""
        rows = self.facts(fid).get(scope, {}).get(name)
        if not rows:
            return None
        best = None
        for ln, role, full in rows:
            base, _, end = role.partition(":")
            if base not in roles:
                continue
            if line is not None and base == "local":
                self.line_sensitive = True  # a local is seen from its line to its block's end
            if line is not None and (ln > line or (end and int(end) < line)):
                continue
            best = (ln, full)
        return best

    # -- entry point ------------------------------------------------------------------------------
    def call(self, f: FileInfo, scope: str | None, full: str, line: int | None) -> list[tuple[str, float]] | None:
        """Targets of the call whose callee text is `full`: [(qualname, 1.0)], [] when the callee is
        certainly outside the repository, None when the declared types do not tell."""
        if f.family not in FAMILIES or not full or full.endswith("!"):
            return None
        while full.startswith("(") and full.endswith(")") and _skip(full, 0) == len(full):
            full = full[1:-1].lstrip("*&")  # `(T)(x)`, `(*T)(nil)`: a conversion
        segs = parse_chain(full)
        if segs is None:
            return None
        segs[-1].ops.append("()")
        if f.family == "java" and len(segs) == 1:
            return None  # `m(x)` in Java names a method, never a variable: scopes and bases decide
        target, state, complete = self._eval(f, scope, segs, line, 0)
        if target is not None:
            info = self.r.defs.get(target)
            if f.family == "java" and info is not None and info.parent and info.kind == "method" \
                    and target.rsplit(".", 1)[-1] == info.parent.rsplit(".", 1)[-1]:
                target = info.parent  # `new T()` names the class (its constructor is T.T)
            return [(target, 1.0)]
        if isinstance(state, Ext) and complete:
            return []
        if len(segs) == 1 and self._local(f, scope, segs[0].name, line):
            return []  # calling a function value held by a local: nothing the code names
        return None

    def _local(self, f: FileInfo, scope: str | None, name: str, line: int | None) -> bool:
        s = scope
        while s:
            if self._fact(f.id, s, name, _LOCAL_ROLES, line) is not None:
                return True
            info = self.r.defs.get(s)
            if info is None or info.kind in _CLASSY:
                return False
            s = info.parent
        return False

    def _eval(self, f: FileInfo, scope: str | None, segs: list[Seg], line: int | None, depth: int
              ) -> tuple[str | None, State, bool]:
        """(target of the last call, state after the chain, whether the state was reached with
        certainty up to the last call)."""
        if depth > MAX_DEPTH:
            return None, None, False
        state = self._head(f, scope, segs[0].name, line, depth)
        target = None
        for i, seg in enumerate(segs):
            if seg.cast:
                state = self._type(f.id, scope, seg.name, depth + 1)
            elif i:
                state = self._member(f, state, seg.name, depth, bool(seg.ops) and seg.ops[0] == "()")
            for op in seg.ops:
                if state is None:
                    return None, None, False
                if op == "()":
                    target, state = self._call(state, depth)
                elif op == "[]":
                    target, state = None, self._elem(state, depth)
                elif op == "?":
                    target, state = None, self._elem(state, depth) if isinstance(state, Ext) else state
            if state is None and i < len(segs) - 1:
                return None, None, False
        return target, state, state is not None

    def _expr(self, f: FileInfo, scope: str | None, text: str, line: int | None, depth: int) -> State:
        """The type of an initializer chain (`=pkg.New()`), evaluated where it was written."""
        awaited = text.startswith("await ")
        text, _, nth = text.removeprefix("await ").partition("#")
        segs = parse_chain(text)
        if segs is None:
            return None
        if nth:  # the n-th result of a call: `a, b := f()`
            if not segs[-1].ops or segs[-1].ops[-1] != "()":
                return None
            segs[-1].ops.pop()
            _t, state, _ok = self._eval(f, scope, segs, line, depth + 1)
            if isinstance(state, Sym):
                return self._result(state.q, depth, f"return{nth}", state.ctx)
            return EXT if isinstance(state, Ext) else None
        _t, state, _ok = self._eval(f, scope, segs, line, depth + 1)
        if awaited and isinstance(state, Ext):
            state = self._elem(state, depth)
        return state

    # -- the head of a chain ----------------------------------------------------------------------
    def _head(self, f: FileInfo, scope: str | None, name: str, line: int | None, depth: int) -> State:
        r = self.r
        if name in ("self", "this", "$this", "@"):
            cls = r.enclosing_class(scope)
            if cls is None:
                return None
            return Inst(cls, f.id)
        if name == "Self" and f.family == "rust":
            cls = r.enclosing_class(scope)
            return Static(cls, f.id) if cls is not None else None
        if name in ("super", "base", "parent"):
            return None
        if name == "$lit":  # a literal's methods are the language's
            return EXT
        # parameters and locals, innermost function first (closures see their enclosing function's)
        s = scope
        while s:
            got = self._fact(f.id, s, name, _LOCAL_ROLES, line)
            if got is not None:
                return self._typed(f.id, s, got[1], got[0], depth)
            info = r.defs.get(s)
            if info is None or info.kind in _CLASSY:
                break
            s = info.parent
        if f.family == "java":  # a field of this class (or a base) used by its bare name
            cls = r.enclosing_class(scope)
            if cls is not None:
                st = self._field(cls, name, depth, f.id)
                if st is not None:
                    return st
        hit = r.lookup(f, scope, name)
        if hit is None:
            got = self._fact(f.id, None, name, _LOCAL_ROLES, line)  # a file-level variable
            if got is not None:
                return self._typed(f.id, None, got[1], got[0], depth)
            return self._unknown_name(f, name)
        target, is_module = hit
        if is_module:
            return Mod(target, (f.family, target) in r.repo.modules or self._rust_module(f, target))
        return self._symbol(target, depth, f.id)

    def _unknown_name(self, f: FileInfo, name: str) -> State:
        """A name nothing declares: a builtin of the language, else unknown."""
        parse = PARSERS[f.family]
        return EXT if isinstance(parse(name), Builtin) and f.family != "go" else None

    def _rust_module(self, f: FileInfo, target: str) -> bool:
        tree = self.r.repo.rust
        return f.family == "rust" and tree is not None and target in tree.modules.values()

    def _symbol(self, q: str, depth: int, ctx: int = -1) -> State:
        """What a name bound to symbol q is, as the head or a member of a chain."""
        info = self._info(q, ctx)
        if info is None:
            return EXT  # imported from outside the repository
        if info.kind in _FUNCS or info.kind == "macro":
            return Sym(q, ctx)
        if info.kind == "type":
            alias = self._alias(q, depth, ctx)
            return alias if alias is not None else Static(q, info.file_id)
        if info.kind in _CLASSY:
            return Static(q, info.file_id)
        if info.kind in _VALUES:
            name = q.rsplit(self.r.repo.by_id[info.file_id].sep, 1)[-1]
            got = self._fact(info.file_id, info.parent, name, _VAR_ROLES, None)
            return self._typed(info.file_id, info.parent, got[1], got[0], depth) if got is not None else None
        if info.kind == "module":
            return Mod(q, True)
        return None

    def _alias(self, q: str, depth: int, ctx: int = -1) -> State:
        """`type Range = Match`: the aliased type (as a type, not a value)."""
        info = self._info(q, ctx)
        if info is None:
            return None
        name = q.rsplit(self.r.repo.by_id[info.file_id].sep, 1)[-1]
        got = self._fact(info.file_id, q, name, _ALIAS_ROLES, None)
        if got is None:
            return None
        st = self._type(info.file_id, info.parent, got[1], depth + 1)
        return Static(st.q, st.ctx) if isinstance(st, Inst) else st

    # -- steps ------------------------------------------------------------------------------------
    def _member(self, f: FileInfo, state: State, name: str, depth: int, called: bool = True) -> State:
        r = self.r
        if state is None or isinstance(state, Sym):
            return None
        if isinstance(state, Ext):
            if state.elem is not None:
                fam = f.family
                if name in UNWRAP.get(fam, ()):
                    return Ext(state.elem, unwrap=True)
                if name in PASS.get(fam, ()):
                    return Ext(state.elem, keep=True)
            return EXT
        if isinstance(state, Mod):
            if not state.in_repo:
                return EXT
            q = f"{state.prefix}{f.sep}{name}"
            found = r.chase(q, f.sep)
            if found is not None:
                return self._symbol(found, depth, f.id)
            if (f.family, q) in r.repo.modules:
                return Mod(q, True)
            return None
        sep = self._sep(state.q)
        ctx = state.ctx
        if isinstance(state, Static):
            m = r.member(state.q, name, sep)
            return self._symbol(m, depth, ctx) if m is not None else self._method_elsewhere(state.q, name) or EXT
        if not called:  # `self.stats.add()`: a field before a same-named getter method
            st = self._field(state.q, name, depth, ctx)
            if st is not None:
                return st
        m = r.member(state.q, name, sep)
        if m is not None:
            info = self._info(m, ctx)
            if info is not None and info.kind in _VALUES:
                return self._symbol(m, depth, ctx)
            return Sym(m, ctx)
        st = self._field(state.q, name, depth, ctx) if called else None
        if st is not None:
            return st
        elsewhere = self._method_elsewhere(state.q, name)
        if elsewhere is not None:
            return elsewhere
        return EXT  # a member the repository does not declare: an external base, trait or interface

    def _call(self, state: State, depth: int) -> tuple[str | None, State]:
        if isinstance(state, Sym):
            return state.q, self._result(state.q, depth, "return", state.ctx)
        if isinstance(state, Static):
            return state.q, Inst(state.q, state.ctx)
        if isinstance(state, Ext):
            if state.unwrap:
                return None, self._elem(Ext(state.elem), depth)
            if state.keep:
                return None, Ext(state.elem)
            return None, EXT
        return None, None

    def _elem(self, state: State, depth: int) -> State:
        if isinstance(state, Inst):  # `type Pool []*Upstream`: pool[i]
            info = self._info(state.q, state.ctx)
            if info is None:
                return None
            name = state.q.rsplit(self.r.repo.by_id[info.file_id].sep, 1)[-1]
            got = self._fact(info.file_id, state.q, name, _UNDERLYING_ROLES, None)
            if got is None:
                return None
            under = self._type(info.file_id, info.parent, got[1], depth + 1)
            return self._elem(under, depth + 1) if isinstance(under, Ext) else None
        if isinstance(state, Ext):
            if state.elem is None:
                return EXT
            text, fid, scope = state.elem
            return self._type(fid, scope, text, depth + 1) if text else None
        return None

    def _result(self, q: str, depth: int, which: str = "return", ctx: int = -1) -> State:
        info = self._info(q, ctx)
        if info is None:
            return None
        if info.kind in _CLASSY:
            return Inst(q, info.file_id)  # a conversion `T(x)`, a tuple struct `T(x)`
        got = self._fact(info.file_id, q, which, _RETURN_ROLES, None)
        if got is None:
            got = self._fact(info.file_id, q, which, _INFERRED_ROLES, None)
        if got is None:
            fam = self.r.repo.by_id[info.file_id].family
            return EXT if fam == "go" else None  # a Go function without results returns nothing
        return self._type(info.file_id, q, got[1], depth + 1)

    def _field(self, cls: str, name: str, depth: int, ctx: int = -1) -> State:
        for c in self.r.mro(cls):
            info = self._info(c, ctx)
            if info is None:
                continue
            got = self._fact(info.file_id, c, name, _FIELD_ROLES, None)
            if got is not None:
                return self._type(info.file_id, c, got[1], depth + 1)
        return None

    def _method_elsewhere(self, q: str, name: str) -> State:
        """Rust: `impl T` blocks in another module of the crate name the methods after that module."""
        info = self.r.defs.get(q)
        if info is None or self.r.repo.by_id[info.file_id].family != "rust":
            return None
        tname = q.rsplit("::", 1)[-1]
        cands = [m for m in self.r.by_name.get(name, ())
                 if (p := self.r.defs[m].parent) and p.rsplit("::", 1)[-1] == tname and p != q
                 and self.r.defs[m].kind in _FUNCS]
        return Sym(cands[0]) if len(cands) == 1 else None

    # -- types ------------------------------------------------------------------------------------
    def _typed(self, fid: int, scope: str | None, text: str, line: int, depth: int) -> State:
        """The value a declaration gives its name: its type's instance, or its initializer's type."""
        if text.startswith("="):
            return self._expr(self.r.repo.by_id[fid], scope, text[1:], line, depth + 1)
        if not text:
            return None
        return self._type(fid, scope, text, depth + 1)

    def _type(self, fid: int, scope: str | None, text: str, depth: int) -> State:
        """A value of the type written `text` in file fid at scope (Inst, Ext, or None)."""
        key = (fid, scope, text)
        if key in self._types:
            return self._types[key]
        self._types[key] = None  # cycles
        st = self._type_uncached(fid, scope, text, depth)
        self._types[key] = st
        return st

    def _type_uncached(self, fid: int, scope: str | None, text: str, depth: int) -> State:
        if depth > MAX_DEPTH * 2:
            return None
        r = self.r
        f = r.repo.by_id[fid]
        te = PARSERS[f.family](text)
        if te is None:
            return None
        if isinstance(te, Builtin):
            return EXT
        if isinstance(te, Holder):
            return Ext((te.elem, fid, scope))
        assert isinstance(te, Named)
        head = te.parts[0]
        if len(te.parts) == 1:
            s = scope  # a type parameter: its bound
            while s:
                got = self._fact(fid, s, head, _GENERIC_ROLES, None)
                if got is not None:
                    return self._type(fid, s, got[1], depth + 1) if got[1] else None
                info = r.defs.get(s)
                if info is None:
                    break
                s = info.parent
            if head == "Self" and f.family == "rust":
                cls = r.enclosing_class(scope)
                return Inst(cls, fid) if cls is not None else None
        if f.family == "rust" and r.repo.rust is not None and len(te.parts) > 1:
            got = _rust_use(r.repo.rust, f, scope, list(te.parts))
            if got is not None:
                pos, rest = got
                if pos is None:
                    return EXT
                q = r.chase("::".join([r.repo.rust.prefix(pos), *rest]), "::")
                return self._as_instance(q, depth, fid)
        hit = r.lookup(f, scope, head)
        if hit is None:
            return None
        target, is_module = hit
        if is_module:
            in_repo = (f.family, target) in r.repo.modules or self._rust_module(f, target)
            if not in_repo:
                return EXT
            q = r.chase(f.sep.join([target, *te.parts[1:]]), f.sep)
            return self._as_instance(q, depth, fid)
        if target not in r.defs:
            return EXT
        q = target
        if len(te.parts) > 1:
            q = r.chase(f.sep.join([target, *te.parts[1:]]), f.sep) or ""
        return self._as_instance(q or None, depth, fid)

    def _as_instance(self, q: str | None, depth: int, ctx: int = -1) -> State:
        if q is None:
            return None
        info = self._info(q, ctx)
        if info is None:
            return None
        if info.kind == "type":
            alias = self._alias(q, depth, ctx)
            if isinstance(alias, Static):
                return Inst(alias.q, alias.ctx)
            if alias is not None:
                return alias
        return Inst(q, info.file_id) if info.kind in _CLASSY else None

    def _info(self, q: str, ctx: int) -> Any:
        """q's definition, from the crate of file `ctx` where a Rust qualname repeats in several
        crates of a workspace (`crate::Error`)."""
        info = self.r.defs.get(q)
        tree = self.r.repo.rust
        if info is None or ctx < 0 or tree is None:
            return info
        if self._dups is None:
            self._dups = _repeated_rust_qualnames(self.r.conn)
        alts = self._dups.get(q)
        if not alts:
            return info
        want = tree.root(ctx)
        for alt in alts:
            if tree.root(alt.file_id) == want:
                return alt
        return info

    def _sep(self, q: str) -> str:
        info = self.r.defs.get(q)
        return self.r.repo.by_id[info.file_id].sep if info is not None else "."


def _repeated_rust_qualnames(conn: Any) -> dict[str, list[Any]]:
    """Rust qualnames defined in more than one file: each definition (a struct before its impl)."""
    from repoloop.indexer.graph.resolve_refs import SymInfo

    out: dict[str, list[Any]] = defaultdict(list)
    seen: set[tuple[str, int]] = set()
    for q, fid, kind, parent in conn.execute(
            "SELECT s.qualname, s.file_id, s.kind, s.parent FROM symbols s WHERE s.qualname IN ("
            " SELECT s2.qualname FROM symbols s2 JOIN files f ON f.id=s2.file_id WHERE f.language='rust'"
            " GROUP BY s2.qualname HAVING count(DISTINCT s2.file_id) > 1) ORDER BY s.kind='impl', s.id"):
        if (q, fid) not in seen:
            seen.add((q, fid))
            out[q].append(SymInfo(kind, fid, parent))
    return dict(out)


_LOCAL_ROLES = frozenset({"param", "local"})
_VAR_ROLES = frozenset({"local", "field"})
_FIELD_ROLES = frozenset({"field"})
_RETURN_ROLES = frozenset({"return"})
_INFERRED_ROLES = frozenset({"inferred"})  # from `return new X()` where no result type is written
_GENERIC_ROLES = frozenset({"generic"})
_ALIAS_ROLES = frozenset({"alias"})
_UNDERLYING_ROLES = frozenset({"underlying"})
