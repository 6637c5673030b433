"""The base `Handler`: what most grammars share (a `name` field, a `body` field, comments right
above a definition as its documentation), and small text helpers for the language handlers."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tree_sitter import Node

from repoloop.indexer.models import Reference

_WS = re.compile(r"\s+")
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
CLASS_KINDS = frozenset({"class", "struct", "interface", "trait", "enum", "impl"})
FUNCTION_KINDS = frozenset({"function", "method"})
SPLIT_MIN_LINES = 40  # bodies shorter than this are never split, so skip computing their split points
_STATEMENT_LISTS = frozenset({"statement_list", "body_statement", "block_body"})


def definition_captures(captures: dict[str, list[Node]]) -> list[tuple[int, int, str, Node]]:
    """A definitions query's `def.<kind>` captures as (start byte, -end byte, kind, node), in
    document order with an outer definition before the ones it contains: the order in which a
    byte-range stack nests them (the index and `repoloop tags` both walk them this way)."""
    found = [(n.start_byte, -n.end_byte, cap[4:], n) for cap, nodes in captures.items() if cap.startswith("def.")
             for n in nodes]
    found.sort(key=lambda t: (t[0], t[1]))
    return found


def nested_definitions(found: list[tuple[int, int, str, Node]], handler: Handler, source: bytes
                       ) -> Iterator[tuple[Node, str, str, int, int, int]]:
    """The named definitions among `found` (`definition_captures`' order) as (node, name, kind,
    start byte, end byte, parent), parent being the index among those yielded of the one it is nested
    in (-1: top level). Left out: anonymous ones, names the parser made up (MISSING) in broken code,
    a node captured twice under two kinds. One walk, so that the index and `repoloop tags` nest alike."""
    ends: list[int] = []
    ids: list[int] = []
    stack: list[int] = []
    for start, neg_end, kind, node in found:
        while stack and ends[stack[-1]] <= start:
            stack.pop()
        parent = stack[-1] if stack else -1
        named = handler.name(node, kind, source)
        if named is None or not named[0].strip():
            continue
        if parent >= 0 and ids[parent] == node.id:
            continue
        ends.append(-neg_end)
        ids.append(node.id)
        stack.append(len(ends) - 1)
        yield node, named[0], named[1], start, -neg_end, parent


def text_of(node: Node | None, src: bytes) -> str:
    if node is None:
        return ""
    return src[node.start_byte:node.end_byte].decode("utf-8", errors="replace")


def one_line(text: str, limit: int = 300) -> str:
    s = _WS.sub(" ", text).strip()
    return s if len(s) <= limit else s[: limit - 1] + "…"


def compact(text: str, limit: int = 200) -> str:
    """An expression without whitespace, as a reference's `full`."""
    s = _WS.sub("", text)
    return s if len(s) <= limit else s[:limit]


def last_ident(text: str) -> str:
    """The last identifier of a dotted/qualified expression: `a.b.C[T]` -> `C`."""
    found = _IDENT.findall(re.split(r"[<\[(]", text, maxsplit=1)[0])
    return found[-1] if found else ""


def trim_signature(text: str) -> str:
    """A header as one line, without the opening of its body (`{`, `=>`, `:`, `;`)."""
    s = one_line(text)
    while s.endswith(("{", "=>", ":", ";", "=")) and not s.endswith(("::", "<=", ">=")):
        s = s[:-2] if s.endswith("=>") else s[:-1]
        s = s.rstrip()
    return s


def unquote(text: str) -> str:
    return text.strip().strip("\"'`<>")


class Handler:
    """Defaults shared by most grammars; subclasses override what differs."""

    def_query: str = ""
    call_query: str = ""  # captures @call: the callee expression, or the whole call (see callee)
    ref_query: str = ""  # captures @ref: identifiers
    import_query: str = ""  # captures @import: import statements
    type_query: str = ""  # captures @tf.<role>: declared types of names (see handlers.typefacts)
    body_field: str = "body"
    comment_marks: tuple[str, ...] = ("//", "/*", "*")
    preamble_marks: tuple[str, ...] = ("@",)  # lines between a doc comment and its definition
    member_sep: str | None = None  # separator before a class member, when not the language's default
    skip_refs: frozenset[str] = frozenset()
    whole_call_types: frozenset[str] = frozenset()  # call nodes captured whole (callee built from fields)
    chain_callees: bool = False  # `full` as a receiver chain (`new T().m`, `((T) x).m`): typed resolution

    def module(self, root: Node, path: str, default: str) -> str:
        """The file's module; some languages declare it in the code (Java package, Go package)."""
        return default

    def namespace_prefix(self, root: Node, src: bytes) -> str:
        """A file-wide namespace for languages whose qualnames come from the code (C#, PHP)."""
        return ""

    def name(self, node: Node, kind: str, src: bytes) -> tuple[str, str] | None:
        """(name, kind) of a captured definition, or None to drop it."""
        n = self.name_node(node)
        return (text_of(n, src), kind) if n is not None else None

    def name_node(self, node: Node) -> Node | None:
        """The identifier that names a definition (not a reference to anything)."""
        return node.child_by_field_name("name")

    def adjust_kind(self, kind: str, parent_kind: str | None, node: Node) -> str:
        return "method" if kind == "function" and parent_kind in CLASS_KINDS else kind

    def qualifier(self, node: Node, kind: str, src: bytes) -> list[str] | None:
        """Extra qualname parts not given by nesting (Go receivers, C++ `Foo::bar`)."""
        return None

    def body(self, node: Node) -> Node | None:
        return node.child_by_field_name(self.body_field)

    def signature(self, node: Node, kind: str, src: bytes) -> str:
        body = self.body(node)
        if body is not None and body.start_byte > node.start_byte:
            return trim_signature(src[node.start_byte:body.start_byte].decode("utf-8", errors="replace"))
        first = src[node.start_byte:node.end_byte].split(b"\n", 1)[0]
        return trim_signature(first.decode("utf-8", errors="replace"))

    def doc(self, node: Node, kind: str, src: bytes) -> str:
        """The comment lines right above the definition (skipping decorators/attributes)."""
        return comment_above(src, node.start_byte, self.comment_marks, self.preamble_marks)

    def split_points(self, node: Node, kind: str) -> list[int] | None:
        """First lines of the top-level statements of a long function body (chunk split points)."""
        if kind not in FUNCTION_KINDS or node.end_point[0] - node.start_point[0] < SPLIT_MIN_LINES:
            return None
        body = self.body(node)
        if body is None:
            return None
        children = body.named_children
        if len(children) == 1 and children[0].type in _STATEMENT_LISTS:
            children = children[0].named_children
        return [c.start_point[0] + 1 for c in children]

    def imports(self, node: Node, src: bytes) -> list[Reference]:
        return []

    def bases(self, node: Node, kind: str, src: bytes) -> list[str]:
        return []

    def type_facts(self, role: str, node: Node, src: bytes) -> list[tuple[str, str]]:
        """(name, type) pairs a `tf.<role>` capture declares (see `handlers.typefacts`)."""
        return []

    def callee(self, node: Node, src: bytes) -> tuple[str, str]:
        """(last name, full dotted text) of a called expression, or of a whole call node
        (then `full` is the text before the arguments: `$this->touch`, `Str::slug`)."""
        if node.type in self.whole_call_types:
            args = node.child_by_field_name("arguments")
            end = args.start_byte if args is not None else node.end_byte
            full = compact(src[node.start_byte:end].decode("utf-8", errors="replace"))
            if self.chain_callees and node.type == "method_invocation":
                from repoloop.indexer.parse.handlers.typefacts import chain

                c = chain(node, src)
                full = c[:-2] if c and c.endswith("()") else full
            n = node.child_by_field_name("name") or node.child_by_field_name("method") or node.child_by_field_name(
                "function") or node.child_by_field_name("type")
            return (last_ident(text_of(n, src)) if n is not None else last_ident(full)), full
        raw = src[node.start_byte:node.end_byte]
        text = raw.decode("utf-8", errors="replace")
        full = compact(text) if (b" " in raw or b"\n" in raw or len(raw) > 200) else text
        if self.chain_callees and node.type not in _NAME_NODE_TYPES and (b"(" in raw or b" " in raw):
            from repoloop.indexer.parse.handlers.typefacts import chain

            full = chain(node, src) or full
        if node.type in _NAME_NODE_TYPES:
            return text, full
        for field in _CALLEE_NAME_FIELDS:
            f = node.child_by_field_name(field)
            if f is not None:
                name = src[f.start_byte:f.end_byte].decode("utf-8", errors="replace")
                return (name if f.type in _NAME_NODE_TYPES else last_ident(name)), full
        return last_ident(text), full


_NAME_NODE_TYPES = frozenset({
    "identifier", "field_identifier", "property_identifier", "constant", "name", "type_identifier",
})
_CALLEE_NAME_FIELDS = ("attribute", "property", "field", "name")
_MODIFIERS = re.compile(rb"^[\w\s]*$")  # `export `, `pub `, `public static ` before a definition
_COMMENT_MARKS = re.compile(r"^\s*(///?|//!|/\*\*?|\*/|\*|#+|--)\s?")


def clean_comment(text: str) -> str:
    out = []
    for line in text.splitlines():
        line = _COMMENT_MARKS.sub("", line).rstrip()
        if line.endswith("*/"):
            line = line[:-2].rstrip()
        out.append(line)
    return "\n".join(out).strip()


def comment_above(src: bytes, start: int, marks: tuple[str, ...], skip: tuple[str, ...]) -> str:
    """Contiguous comment lines right above byte `start` (decorator/attribute lines skipped)."""
    line_start = src.rfind(b"\n", 0, start) + 1
    if not _MODIFIERS.match(src[line_start:start]):
        return ""  # code precedes the definition on its line
    out: list[str] = []
    pos = line_start
    in_block = False
    for _ in range(200):
        if pos <= 0:
            break
        prev_start = src.rfind(b"\n", 0, pos - 1) + 1
        line = src[prev_start:pos - 1].decode("utf-8", errors="replace").strip()
        pos = prev_start
        if in_block:
            out.append(line)
            if "/*" in line:
                in_block = False
            continue
        if not line:
            break
        if line.endswith("*/") and "/*" not in line:
            out.append(line)
            in_block = True
            continue
        if line.startswith(marks):
            out.append(line)
            continue
        if not out and line.startswith(skip):
            continue
        break
    return clean_comment("\n".join(reversed(out))) if out else ""
