"""Source bytes -> ParsedFile (symbols, references, chunks) with tree-sitter.

Why queries and not a Python walk over the tree: a walk pays Python overhead on every node (tens of
millions on a big repo); tree-sitter queries run in C and hand back only the nodes we want
(definitions, callees, identifiers, imports). All four patterns go into one query per language,
because each query execution is a full pass over the tree: one combined query costs about a third
of four separate ones (benchmarks/parse_bench.py). Nesting, qualnames and scopes are then rebuilt from
byte ranges: definitions sorted by start are nested with a stack, and any position's scope is found
by bisecting into that list and climbing parents. Per-language knowledge (node types, how to name
a definition, what an import looks like) lives in small `Handler` subclasses in
`repoloop.indexer.parse.handlers`; this module is the language-independent engine.

Language/Parser/Query objects are memoized per process (workers parse many files each).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

from tree_sitter import Node, Parser, Query, QueryCursor

from repoloop.indexer.models import ParsedFile, Reference, Symbol
from repoloop.indexer.parse.chunk import SplitPoints, chunk_file
from repoloop.indexer.parse.handlers import (
    Handler,
    definition_captures,
    handler_for,
    last_ident,
    nested_definitions,
)
from repoloop.indexer.parse.handlers.base import CLASS_KINDS
from repoloop.indexer.parse.languages import MODULE_PREFIXED, QUALNAME_SEP, module_name, ts_language
from repoloop.indexer.parse.source_view import source_view

__all__ = ["parse_source", "parse_tree"]


DOC_LIMIT = 2000  # characters of a docstring kept on the symbol (the chunk keeps the whole text)

# Definitions that name a value but are not a scope of their own: code inside them (an initializer)
# belongs to the enclosing scope.
_NOT_SCOPES = frozenset({"constant", "variable", "field"})


@dataclass(slots=True)
class _Def:
    """A definition while the file is being assembled (nodes stay here, never in the result)."""

    node: Node
    start: int
    end: int
    kind: str
    name: str
    parent: int  # index into the sorted definition list, -1 at top level
    qualname: str = ""


@dataclass(slots=True)
class _Compiled:
    handler: Handler
    parser: Parser
    query: Query  # definitions, calls, identifiers and imports in one query: one pass over the tree


@cache
def _compiled(language: str) -> _Compiled:
    lang = ts_language(language)
    h = handler_for(language)
    scm = "\n".join((h.def_query, h.call_query, h.ref_query, h.import_query, h.type_query))
    return _Compiled(handler=h, parser=Parser(lang), query=Query(lang, scm))


def parse_source(path: str, source: bytes, language: str, *, max_tokens: int = 400) -> ParsedFile:
    """Parse one file; never raises on bad input (syntax errors give a partial result)."""
    comp = _compiled(language)
    tree = comp.parser.parse(source_view(source, language))
    parsed, split_points = parse_tree(path, source, language, tree.root_node)
    text = source.decode("utf-8", errors="replace")
    parsed.chunks = chunk_file(parsed, text, max_tokens=max_tokens, split_points=split_points)
    return parsed


def _end_line(node: Node) -> int:
    row, col = node.end_point
    start = node.start_point[0] + 1
    return max(start, row + 1 if col > 0 else row)


def _count_errors(root: Node) -> int:
    if not root.has_error:
        return 0
    n = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            n += 1
        stack.extend(c for c in node.children if c.has_error or c.is_missing)
    return n


def parse_tree(path: str, source: bytes, language: str, root: Node) -> tuple[ParsedFile, SplitPoints]:
    """Extract symbols and references from a parsed tree; also return statement split points
    ((qualname, start line) -> first lines of the top-level statements of its body) for the chunker."""
    comp = _compiled(language)
    h = comp.handler
    sep = QUALNAME_SEP[language]
    module = h.module(root, path, module_name(path, language))
    prefix = module if language in MODULE_PREFIXED else h.namespace_prefix(root, source)

    # Definitions, nested by byte range.
    captures = QueryCursor(comp.query).captures(root)
    defs = [_Def(node, start, end, kind, name, parent)
            for node, name, kind, start, end, parent in nested_definitions(definition_captures(captures), h, source)]

    symbols: list[Symbol] = []
    split_points: SplitPoints = {}
    for d in defs:
        parent = defs[d.parent] if d.parent >= 0 else None
        d.kind = h.adjust_kind(d.kind, parent.kind if parent else None, d.node)
        outer = h.qualifier(d.node, d.kind, source)  # e.g. Go receiver type, C++ `Foo::` of Foo::bar
        base = parent.qualname if parent else prefix
        if outer:
            base = sep.join(p for p in (base, *outer) if p)
        join = h.member_sep if h.member_sep and (outer or (parent and parent.kind in CLASS_KINDS)) else sep
        d.qualname = f"{base}{join}{d.name}" if base else d.name
        parent_q = base if (parent is not None or outer) and base else None
        symbols.append(
            Symbol(
                name=d.name,
                qualname=d.qualname,
                kind=d.kind,
                start_line=d.node.start_point[0] + 1,
                end_line=_end_line(d.node),
                signature=h.signature(d.node, d.kind, source),
                doc=h.doc(d.node, d.kind, source)[:DOC_LIMIT],
                parent=parent_q,
            )
        )
        pts = h.split_points(d.node, d.kind)
        if pts:
            split_points[(d.qualname, symbols[-1].start_line)] = pts

    scopes = _Scopes(defs)
    scope_of = scopes.scope_of

    refs: list[Reference] = []
    seen: set[tuple[str | None, str]] = set()  # (scope, name) already referenced: no plain "ref" then
    _import_refs(h, captures.get("import", ()), source, scope_of, refs, seen)
    for d, sym in zip(defs, symbols, strict=True):
        for full in h.bases(d.node, d.kind, source):
            name = last_ident(full)
            if name:
                refs.append(Reference(name=name, kind="inherit", line=sym.start_line, scope=sym.qualname, full=full))
                seen.add((sym.qualname, name))
    for node in captures.get("call", ()):
        name, full = h.callee(node, source)
        if name:
            scope = scope_of(node.start_byte)
            refs.append(Reference(name=name, kind="call", line=node.start_point[0] + 1, scope=scope, full=full))
            seen.add((scope, name))
    if h.type_query:
        refs.extend(_type_refs(h, captures, source, scopes))
    def_names = {n.start_byte for n in map(h.name_node, (d.node for d in defs)) if n is not None}
    refs.extend(_identifier_refs(captures.get("ref", ()), source, scopes, seen, def_names, h.skip_refs))
    refs.sort(key=lambda r: r.line)
    n_lines = source.count(b"\n") + (1 if source and not source.endswith(b"\n") else 0)
    parsed = ParsedFile(
        path=path,
        language=language,
        module=module,
        symbols=symbols,
        refs=refs,
        syntax_errors=_count_errors(root),
        lines=n_lines,
    )
    return parsed, split_points


def _import_refs(h: Handler, nodes: Iterable[Node], source: bytes, scope_of: Callable[[int], str | None],
                 refs: list[Reference], seen: set[tuple[str | None, str]]) -> None:
    for node in nodes:
        scope = scope_of(node.start_byte)
        for r in h.imports(node, source):
            r.scope = scope
            refs.append(r)
            seen.add((scope, r.name))
            if r.alias:
                seen.add((scope, r.alias))
            for part in (r.module or "").replace("/", ".").split("."):
                seen.add((scope, part))


def _type_refs(h: Handler, captures: dict[str, list[Node]], source: bytes, scopes: _Scopes) -> list[Reference]:
    """Declared types of names (kind "type", role in `module`): fields belong to the enclosing
    class, everything else to the innermost scope. Not added to `seen`: a declaration is no use."""
    out: list[Reference] = []
    for cap, nodes in captures.items():
        if not cap.startswith("tf."):
            continue
        role = cap[3:]
        for node in nodes:
            pos = node.start_byte
            scope = scopes.class_of(pos) if role == "field" else scopes.scope_of(pos)
            if role == "field" and scope is None:
                continue
            line = node.start_point[0] + 1
            where = role
            if role in ("param", "local"):  # visible to the end of its block: `local:120`
                p: Node | None = node
                while p is not None and p.type not in _BLOCKS:
                    p = p.parent
                if p is not None:
                    where = f"{role}:{_end_line(p)}"
            for name, typ in h.type_facts(role, node, source):
                if name and name != "_":
                    out.append(Reference(name=name, kind="type", line=line, scope=scope, full=typ, module=where))
    return out


# Nodes that end the visibility of a local or parameter declared inside them.
_BLOCKS = frozenset({
    "block", "statement_block", "func_literal", "function_declaration", "method_declaration", "if_statement",
    "for_statement", "expression_switch_statement", "type_switch_statement", "select_statement",
    "closure_expression", "function_item", "arrow_function", "function_expression", "method_definition",
    "lambda_expression", "constructor_declaration", "for_in_statement", "enhanced_for_statement",
    "catch_clause", "function_signature_item", "method_elem", "try_with_resources_statement",
})


def _identifier_refs(nodes: Iterable[Node], source: bytes, scopes: _Scopes,
                     seen: set[tuple[str | None, str]], def_names: set[int], skip: frozenset[str]) -> list[Reference]:
    """One "ref" per (scope, identifier of 2+ characters), at its first line. The hot loop of the parser (an
    identifier is most of the nodes a query returns), hence the inlined scope lookup and keys made
    of the scope's index and the raw bytes."""
    starts, ends, parents, scoped = scopes.starts, scopes.ends, scopes.parents, scopes.scoped
    skip_b = {s.encode() for s in skip}
    first: dict[tuple[int, bytes], Node] = {}
    for node in nodes:
        sb = node.start_byte
        eb = node.end_byte
        if eb - sb < 2 or sb in def_names:
            continue  # one-letter names (i, x, _) are noise for every use of references
        name = source[sb:eb]
        if name in skip_b:
            continue
        i = bisect_right(starts, sb) - 1
        while i >= 0 and (ends[i] <= sb or not scoped[i]):
            i = parents[i]
        key = (i, name)
        prev = first.get(key)
        if prev is None or sb < prev.start_byte:
            first[key] = node
    out = []
    quals = scopes.quals
    for (i, raw), node in first.items():
        scope = quals[i] if i >= 0 else None
        name = raw.decode("utf-8", errors="replace")
        if (scope, name) not in seen:
            out.append(Reference(name=name, kind="ref", line=node.start_point[0] + 1, scope=scope, full=name))
    return out


class _Scopes:
    """Definitions as parallel arrays, to find the innermost scope around a byte offset."""

    def __init__(self, defs: list[_Def]) -> None:
        self.starts = [d.start for d in defs]
        self.ends = [d.end for d in defs]
        self.parents = [d.parent for d in defs]
        self.scoped = [d.kind not in _NOT_SCOPES for d in defs]
        self.quals = [d.qualname for d in defs]
        self.classy = [d.kind in CLASS_KINDS for d in defs]

    def scope_of(self, pos: int) -> str | None:
        i = bisect_right(self.starts, pos) - 1
        while i >= 0 and (self.ends[i] <= pos or not self.scoped[i]):
            i = self.parents[i]
        return self.quals[i] if i >= 0 else None

    def class_of(self, pos: int) -> str | None:
        """The innermost class-like definition (class, struct, impl, ...) around byte `pos`."""
        i = bisect_right(self.starts, pos) - 1
        while i >= 0 and (self.ends[i] <= pos or not self.classy[i]):
            i = self.parents[i]
        return self.quals[i] if i >= 0 else None
