"""Definitions (and optionally identifier references) of a whole tree, fast: the `repoloop tags` path.

Why a second path beside `parse.parser.parse_source`: an editor's tags file or a repo map needs
names, kinds and lines only. The index's parse also builds signatures, docstrings, references per
scope, chunks and FTS text, which costs about twice the tree-sitter parse itself. Here each language
gets a definitions-only query (the handler's `def_query`; with refs, plus its identifier pattern),
the Parser/Query objects are built once per worker process, files are read as bytes in the workers
(which receive paths, not contents), and results come back as compact tuples.

Definitions are nested and named exactly as `parse.parser.parse_tree` does (same handler calls, the
same byte-range walk: `handlers.nested_definitions`), so names, kinds, qualnames and lines equal the
index's symbols; the tests check that equality on fixtures in several languages. Python, the common
case, skips the query: a walk over statements finds the same definitions (checked against the query
on the whole stdlib) at about half the cost (0.83 vs 1.56 s CPU on stdlib's parsed trees:
`benchmarks/tags_bench.py --walk-ab`), since expressions, most of a tree's nodes, are never visited.

Where the time goes (stdlib, 1,794 files, one process): tree-sitter's `parse` is ~2/3 of it and is
the floor of any tree-sitter tagger; finding and naming definitions, reading files and freeing
trees share the rest. See benchmarks/tags_bench.py.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path

from tree_sitter import Parser, Query, QueryCursor

from repoloop.indexer import safe_read
from repoloop.indexer import walk as walk_mod
from repoloop.indexer.parse.handlers import Handler, definition_captures, handler_for, nested_definitions
from repoloop.indexer.parse.handlers.base import CLASS_KINDS
from repoloop.indexer.parse.languages import (
    HEADER_SNIFF_BYTES,
    MODULE_PREFIXED,
    QUALNAME_SEP,
    detect_language,
    module_name,
    ts_language,
)
from repoloop.indexer.parse.source_view import source_view
from repoloop.indexer.tags import pydefs
from repoloop.indexer.tags.pyrefs import python_refs

__all__ = ["Tag", "RefTag", "TagsResult", "extract_file", "extract_tags", "wanted"]

# Compact rows crossing the process boundary (tuples pickle far cheaper than dataclasses).
# def: (name, qualname, kind, line, end_line, scope qualname or "", local scope or "", scope kind or "")
DefRow = tuple[str, str, str, int, int, str, str, str]
# ref: (name, first line, occurrences)
RefRow = tuple[str, int, int]
# one file: (path, language, defs, refs, skip reason or "")
FileRow = tuple[str, str, list[DefRow], list[RefRow], str]

# The kind of a scope given by a qualifier rather than nesting (a Go receiver, C++ `Foo::bar`).
OUTER_KIND = {"go": "struct", "rust": "impl"}
_POOL_MIN_FILES = 16  # below this, worker start-up costs more than it saves


@dataclass(slots=True)
class Tag:
    """One definition. `scope` is the enclosing definition's qualname (None at top level);
    `local_scope` is the same path as written inside the file (ctags' `class:Foo` field)."""

    name: str
    qualname: str
    kind: str
    path: str
    line: int
    end_line: int
    scope: str | None = None
    local_scope: str | None = None
    scope_kind: str | None = None


@dataclass(slots=True)
class RefTag:
    """Identifier uses of `name` in one file (definitions' own names excluded): first line, count."""

    name: str
    path: str
    line: int
    count: int


@dataclass(slots=True)
class TagsResult:
    tags: list[Tag] = field(default_factory=list)
    refs: list[RefTag] = field(default_factory=list)
    files: int = 0  # files tagged (parsed, or taken from a fresh index)
    reused: int = 0  # of which taken from the index
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> files (walk and read)


def wanted(path: str) -> bool:
    """Walk filter: only files with a grammar (text files carry no tags)."""
    return detect_language(path) is not None


# -- the worker side ----------------------------------------------------------------------------
@dataclass(slots=True)
class _Compiled:
    handler: Handler
    parser: Parser
    query: Query


_PY_SKIP_REFS = handler_for("python").skip_refs


@cache
def _compiled(language: str, refs: bool) -> _Compiled:
    lang = ts_language(language)
    h = handler_for(language)
    scm = h.def_query + ("\n" + h.ref_query if refs else "")
    return _Compiled(h, Parser(lang), Query(lang, scm))


def extract_file(path: str, source: bytes, language: str, *, refs: bool = False) -> tuple[list[DefRow], list[RefRow]]:
    """Definitions (and identifier references) of one file's source; never raises on bad syntax."""
    # Python: the scanners (None: not sure of this file, tree-sitter decides). They read LF line
    # ends; CRLF ones are the same lines (rows carry no byte offsets), a lone CR is left to tree-sitter.
    lf = source.replace(b"\r\n", b"\n") if language == "python" and b"\r" in source else source
    if language == "python" and b"\r" not in lf:
        if not refs:
            rows = pydefs.scan(lf, module_name(path, language))
            if rows is not None:
                return rows, []
        elif (got := pydefs.scan_with_names(lf, module_name(path, language))) is not None:
            rows, name_starts = got  # a definition's name is on its first line
            return rows, python_refs(lf, [(o, r[3]) for o, r in zip(name_starts, rows, strict=True)],
                                     _PY_SKIP_REFS)
    comp = _compiled(language, refs)
    h = comp.handler
    root = comp.parser.parse(source_view(source, language)).root_node
    if language == "python" and not refs:
        return _python_rows(h, root, module_name(path, language), source), []
    captures = QueryCursor(comp.query).captures(root)
    found = definition_captures(captures)
    if not found and not refs:
        return [], []
    module = h.module(root, path, module_name(path, language))
    prefix = module if language in MODULE_PREFIXED else h.namespace_prefix(root, source)
    sep = QUALNAME_SEP[language]
    # Parallel lists per kept definition (indexed as nested_definitions counts): kind, qualname, local path.
    kinds: list[str] = []
    quals: list[str] = []
    locs: list[str] = []
    rows: list[DefRow] = []
    name_starts: set[int] = set()
    for node, name, kind, _start, _end, parent in nested_definitions(found, h, source):
        pkind = kinds[parent] if parent >= 0 else None
        kind = h.adjust_kind(kind, pkind, node)
        outer = h.qualifier(node, kind, source)  # Go receiver type, C++ `Foo::` of Foo::bar
        base = quals[parent] if parent >= 0 else prefix
        lbase = locs[parent] if parent >= 0 else ""
        if outer:
            base = sep.join(p for p in (base, *outer) if p)
            lbase = sep.join(p for p in (lbase, *outer) if p)
        join = h.member_sep if h.member_sep and (outer or (pkind in CLASS_KINDS)) else sep
        qual = f"{base}{join}{name}" if base else name
        loc = f"{lbase}{join}{name}" if lbase else name
        scope = base if (parent >= 0 or outer) and base else ""
        lscope = lbase if (parent >= 0 or outer) and lbase else ""
        skind = (pkind if not outer else OUTER_KIND.get(language, "class")) or "" if scope else ""
        srow, scol = node.start_point
        erow, ecol = node.end_point
        line = srow + 1
        rows.append((name, qual, kind, line, max(line, erow + 1 if ecol > 0 else erow), scope, lscope, skind))
        kinds.append(kind)
        quals.append(qual)
        locs.append(loc)
        if refs:
            nn = h.name_node(node)
            if nn is not None:
                name_starts.add(nn.start_byte)
    if not refs:
        return rows, []
    return rows, _ref_rows(captures.get("ref", ()), source, name_starts, h.skip_refs)


# Python nodes that can hold a definition (statements with bodies, and broken code).
_PY_CONTAINERS = frozenset({
    "module", "block", "decorated_definition", "function_definition", "class_definition", "if_statement",
    "elif_clause", "else_clause", "for_statement", "while_statement", "try_statement", "except_clause",
    "except_group_clause", "finally_clause", "with_statement", "match_statement", "case_clause", "ERROR",
})


def _python_rows(h: Handler, root, module: str, source: bytes) -> list[DefRow]:  # noqa: ANN001 - a Node
    """PythonHandler's definitions, found by visiting statements only, nested by the tree itself.

    The def query visits every node of the tree, and expressions are most of them; this walk skips
    expression subtrees and needs no sort or byte-range stack, which makes finding and naming
    definitions ~1.9x cheaper. Same rows as the query path (tests/test_tags.py compares them)."""
    rows: list[DefRow] = []
    # (node, parent qualname, parent local path, parent kind), in document order.
    stack = [(c, module, "", "") for c in reversed(root.named_children)]
    containers = _PY_CONTAINERS
    top_ids = {c.id for c in root.named_children}  # module-level `NAME = value` are definitions
    while stack:
        node, pq, pl, pk = stack.pop()
        t = node.type
        if t == "function_definition" or t == "class_definition":
            n = node.child_by_field_name("name")
            name = source[n.start_byte:n.end_byte].decode("utf-8", errors="replace") if n is not None else ""
            if name.strip():
                kind = "class" if t == "class_definition" else ("method" if pk in CLASS_KINDS else "function")
                rows.append(_py_row(node, name, kind, pq, pl, pk))
                qual, loc = f"{pq}.{name}" if pq else name, f"{pl}.{name}" if pl else name
                stack.extend((c, qual, loc, kind) for c in reversed(node.named_children) if c.type in containers)
                continue
        elif t == "type_alias_statement" or (t == "expression_statement" and node.id in top_ids):
            targets = [node] if t == "type_alias_statement" else [a for a in node.named_children if _is_assignment_def(a)]
            for target in targets:
                named = h.name(target, "type" if t == "type_alias_statement" else "constant", source)
                if named is not None and named[0].strip():
                    rows.append(_py_row(target, named[0], named[1], pq, pl, pk))
            continue
        if t in containers:
            stack.extend((c, pq, pl, pk) for c in reversed(node.named_children))
    return rows


def _is_assignment_def(a) -> bool:  # noqa: ANN001 - a Node
    """`(assignment left: (identifier) right: (_))`, the module-level constant pattern."""
    if a.type != "assignment" or a.child_by_field_name("right") is None:
        return False
    left = a.child_by_field_name("left")
    return left is not None and left.type == "identifier"


def _py_row(node, name: str, kind: str, pq: str, pl: str, pk: str) -> DefRow:  # noqa: ANN001 - a Node
    srow = node.start_point[0]
    erow, ecol = node.end_point
    line = srow + 1
    qual = f"{pq}.{name}" if pq else name
    return (name, qual, kind, line, max(line, erow + 1 if ecol > 0 else erow), pq if pk else "", pl if pk else "", pk)


def _ref_rows(nodes: Iterable, source: bytes, def_names: set[int], skip: frozenset[str]) -> list[RefRow]:
    """One row per distinct identifier of 2+ characters: its first line and how often it occurs.
    (Captures do not come in document order, so the first occurrence is the smallest offset.)"""
    first: dict[bytes, object] = {}
    starts: dict[bytes, int] = {}
    counts: dict[bytes, int] = {}
    for n in nodes:
        sb = n.start_byte
        eb = n.end_byte
        if eb - sb < 2 or sb in def_names:
            continue
        raw = source[sb:eb]
        c = counts.get(raw)
        if c is None:
            counts[raw] = 1
            first[raw] = n
            starts[raw] = sb
        else:
            counts[raw] = c + 1
            if sb < starts[raw]:
                first[raw] = n
                starts[raw] = sb
    out: list[RefRow] = []
    for raw, n in first.items():
        name = raw.decode("utf-8", errors="replace")
        if name not in skip:
            out.append((name, n.start_point[0] + 1, counts[raw]))  # type: ignore[attr-defined]
    return out


def _extract_path(task: tuple[str, str, bool], root: str, limit: int) -> FileRow:
    """Read and extract one file (in a worker). Unreadable, binary, minified, changed since the walk
    (a FIFO, a symlink out of `root`, grown past `limit`): a skip, never an error or a hang."""
    rel, abspath, refs = task
    data = safe_read.read_repo_file(abspath, root, limit)
    if isinstance(data, str):
        return rel, "", [], [], data
    reason = walk_mod.classify_head(data[: walk_mod.HEAD_BYTES])
    if reason:
        return rel, "", [], [], reason
    language = detect_language(rel, data[:HEADER_SNIFF_BYTES])
    if language is None:
        return rel, "", [], [], walk_mod.UNSUPPORTED
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:  # as the index does: replacement characters, lines stay right
        data = data.decode("utf-8", errors="replace").encode("utf-8")
    try:
        defs, ref_rows = extract_file(rel, data, language, refs=refs)
    except Exception:  # a grammar or handler bug must not stop the whole run
        return rel, language, [], [], "parse_error"
    return rel, language, defs, ref_rows, ""


# -- the main side ------------------------------------------------------------------------------
def _file_rows(tasks: list[tuple[str, str, bool]], jobs: int, root: str, limit: int) -> Iterator[FileRow]:
    extract = partial(_extract_path, root=root, limit=limit)
    if jobs <= 1 or len(tasks) < _POOL_MIN_FILES:
        yield from map(extract, tasks)
        return
    # fork: workers start at once with the grammars already imported; only paths and rows are
    # pickled. A process with other threads (a server) forks unsafely: forkserver there.
    ctx = multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")
    if any(t[0].endswith(".py") for t in tasks):
        pydefs.warm()  # compiled once here, inherited by the forked workers (defs and refs both scan)
    chunksize = max(1, min(64, len(tasks) // (jobs * 6)))
    with ctx.Pool(jobs) as pool:
        yield from pool.imap_unordered(extract, tasks, chunksize=chunksize)


def extract_tags(root: Path, *, jobs: int | None = None, refs: bool = False, reuse: bool = True,
                 max_file_size: int = walk_mod.DEFAULT_MAX_FILE_SIZE) -> TagsResult:
    """Walk `root` with the index's rules and extract every supported file's definitions (and refs).
    With `reuse`, definitions of files unchanged since `root/.repoloop` indexed them come from there."""
    # known_unchanged: the walk does not open files to sniff them; the workers do (in parallel).
    opts = walk_mod.WalkOptions(max_file_size=max_file_size, want=wanted, known_unchanged=_no_sniff)
    walker = walk_mod.Walker(Path(root), opts)
    entries = sorted(walker, key=lambda e: -e.size)  # biggest first: no lone big file at the end
    res = TagsResult()
    for reason in walker.skips.values():
        res.skipped[reason] = res.skipped.get(reason, 0) + 1
    if reuse and not refs:
        entries = _reuse_index(Path(root), entries, res)
    tasks = [(e.path, e.abspath, refs) for e in entries]
    ref_out = res.refs
    for path, _lang, defs, ref_rows, skip in _file_rows(tasks, jobs or _cpus(), str(walker.root), max_file_size):
        if skip:
            res.skipped[skip] = res.skipped.get(skip, 0) + 1
            continue
        res.files += 1
        if defs:
            _add(res, path, defs)
        if ref_rows:
            ref_out.extend(RefTag(n, path, ln, c) for n, ln, c in ref_rows)
    return res


def _add(res: TagsResult, path: str, defs: list[DefRow]) -> None:
    res.tags.extend(Tag(n, q, k, path, ln, end, s or None, ls or None, sk or None)
                    for n, q, k, ln, end, s, ls, sk in defs)


def _reuse_index(root: Path, entries: list[walk_mod.FileEntry], res: TagsResult) -> list[walk_mod.FileEntry]:
    """Take the definitions of files unchanged since the index saw them; return the others."""
    from repoloop.indexer.tags.from_index import IndexedDefs

    index = IndexedDefs.open(root)
    if index is None:
        return entries
    try:
        fresh = {e.path: fid for e in entries if (fid := index.fresh(e.path, e.size, e.mtime)) is not None}
        found = index.defs(list(fresh.values()))
    finally:
        index.close()
    for path, fid in fresh.items():
        if fid in found:
            res.files += 1
            res.reused += 1
            _add(res, path, found[fid][1])
    return [e for e in entries if fresh.get(e.path) not in found]


def _no_sniff(_path: str, _size: int, _mtime: float) -> bool:
    return True


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1
