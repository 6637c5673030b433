"""Per-language knowledge for the parse engine: which nodes are definitions, how they are named,
what an import or a base class looks like. One small `Handler` subclass per language; the base
class holds the behaviour most C-family grammars share (a `name` field, a `body` field, leading
comments as documentation).
"""

from __future__ import annotations

import inspect
import re

from tree_sitter import Node

from repoloop.indexer.models import Reference

_WS = re.compile(r"\s+")
_IDENT = re.compile(r"[A-Za-z_$][\w$]*")
CLASS_KINDS = frozenset({"class", "struct", "interface", "trait", "enum", "impl", "module"})
FUNCTION_KINDS = frozenset({"function", "method"})
SPLIT_MIN_LINES = 40  # bodies shorter than this are never split, so skip computing their split points


def text_of(node: Node | None, src: bytes) -> str:
    if node is None:
        return ""
    return src[node.start_byte:node.end_byte].decode("utf-8", errors="replace")


def one_line(text: str, limit: int = 300) -> str:
    s = _WS.sub(" ", text).strip()
    return s if len(s) <= limit else s[: limit - 1] + "…"


def last_ident(text: str) -> str:
    found = _IDENT.findall(re.split(r"[<\[(]", text, maxsplit=1)[0])
    return found[-1] if found else ""


class Handler:
    """Defaults shared by most grammars; subclasses override what differs."""

    def_query: str = ""
    call_query: str = ""
    ref_query: str = ""
    import_query: str = ""
    body_field: str = "body"
    comment_types: frozenset[str] = frozenset({"comment"})
    doc_skip_types: frozenset[str] = frozenset()  # nodes allowed between a doc comment and its def
    skip_refs: frozenset[str] = frozenset()

    def module(self, root: Node, path: str, default: str) -> str:
        """The file's module; some languages declare it in the code (Java package, Go package)."""
        return default

    def namespace_prefix(self, root: Node) -> str:
        """A file-wide namespace for languages whose qualnames come from the code (C#, PHP)."""
        return ""

    def name(self, node: Node, kind: str, src: bytes) -> tuple[str, str] | None:
        """(name, kind) of a captured definition, or None to drop it."""
        n = node.child_by_field_name("name")
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
            return one_line(src[node.start_byte:body.start_byte].decode("utf-8", errors="replace"))
        first = src[node.start_byte:node.end_byte].split(b"\n", 1)[0]
        return one_line(first.decode("utf-8", errors="replace").rstrip("{ "))

    def doc(self, node: Node, kind: str, src: bytes) -> str:
        """Contiguous comments right above the definition."""
        lines: list[str] = []
        cur = node
        top = node.start_point[0]
        while True:
            prev = cur.prev_named_sibling
            while prev is not None and prev.type in self.doc_skip_types:
                prev = prev.prev_named_sibling
            if prev is None or prev.type not in self.comment_types or prev.end_point[0] < top - 1:
                break
            lines.append(text_of(prev, src))
            top = prev.start_point[0]
            cur = prev
        return clean_comment("\n".join(reversed(lines))) if lines else ""

    def split_points(self, node: Node, kind: str) -> list[int] | None:
        """First lines of the top-level statements of a long function body (chunk split points)."""
        if kind not in FUNCTION_KINDS or node.end_point[0] - node.start_point[0] < SPLIT_MIN_LINES:
            return None
        body = self.body(node)
        if body is None:
            return None
        return [c.start_point[0] + 1 for c in body.named_children]

    def imports(self, node: Node, src: bytes) -> list[Reference]:
        return []

    def bases(self, node: Node, kind: str, src: bytes) -> list[str]:
        return []

    def callee(self, node: Node, src: bytes) -> tuple[str, str]:
        """(last name, full dotted text) of a called expression."""
        text = text_of(node, src)
        full = _WS.sub("", text)
        if len(full) > 200:
            full = full[:200]
        if node.type in ("identifier", "field_identifier", "property_identifier", "constant", "name"):
            return text, full
        for field in ("attribute", "property", "field", "name"):
            f = node.child_by_field_name(field)
            if f is not None:
                return text_of(f, src), full
        return last_ident(text), full


_COMMENT_MARKS = re.compile(r"^\s*(///?|/\*\*?|\*/|\*|#|--)\s?")


def clean_comment(text: str) -> str:
    out = []
    for line in text.splitlines():
        line = _COMMENT_MARKS.sub("", line).rstrip()
        if line.endswith("*/"):
            line = line[:-2].rstrip()
        out.append(line)
    return "\n".join(out).strip()


class PythonHandler(Handler):
    def_query = """
    (function_definition) @def.function
    (class_definition) @def.class
    (module (expression_statement (assignment left: (identifier) right: (_)) @def.constant))
    """
    call_query = "(call function: (_) @call)"
    ref_query = "(identifier) @ref"
    import_query = "(import_statement) @import (import_from_statement) @import (future_import_statement) @import"
    skip_refs = frozenset({"self", "cls"})

    def name(self, node: Node, kind: str, src: bytes) -> tuple[str, str] | None:
        if kind != "constant":
            return super().name(node, kind, src)
        name = text_of(node.child_by_field_name("left"), src)
        right = node.child_by_field_name("right")
        if right is not None and right.type == "lambda":
            return name, "function"
        if name.isupper() or (name.lstrip("_").isupper()):
            return name, "constant"
        return None

    def name_node(self, node: Node) -> Node | None:
        return node.child_by_field_name("left" if node.type == "assignment" else "name")

    def signature(self, node: Node, kind: str, src: bytes) -> str:
        if node.type == "assignment":
            return one_line(text_of(node, src).split("\n", 1)[0], 200)
        return super().signature(node, kind, src).rstrip(":").rstrip()

    def doc(self, node: Node, kind: str, src: bytes) -> str:
        body = node.child_by_field_name("body")
        if body is None or body.named_child_count == 0:
            return ""
        first = body.named_children[0]
        if first.type != "expression_statement" or first.named_child_count == 0:
            return ""
        s = first.named_children[0]
        if s.type != "string":
            return ""
        raw = text_of(s, src)
        m = re.match(r"(?is)^[rbuf]*('''|\"\"\"|'|\")(.*)\1$", raw)
        return inspect.cleandoc(m.group(2)) if m else ""

    def imports(self, node: Node, src: bytes) -> list[Reference]:
        line = node.start_point[0] + 1
        out: list[Reference] = []
        if node.type == "import_statement":
            for n in node.children_by_field_name("name"):
                if n.type == "aliased_import":
                    mod = text_of(n.child_by_field_name("name"), src)
                    alias: str | None = text_of(n.child_by_field_name("alias"), src)
                else:
                    mod, alias = text_of(n, src), None
                out.append(Reference(name=mod.rsplit(".", 1)[-1], kind="import", line=line, full=mod, module=mod, alias=alias))
            return out
        if node.type == "future_import_statement":
            module = "__future__"
        else:
            module = _WS.sub("", text_of(node.child_by_field_name("module_name"), src))
        names = node.children_by_field_name("name")
        if not names and any(c.type == "wildcard_import" for c in node.children):
            return [Reference(name="*", kind="import", line=line, full=f"{module}.*", module=module)]
        for n in names:
            if n.type == "aliased_import":
                name = text_of(n.child_by_field_name("name"), src)
                alias = text_of(n.child_by_field_name("alias"), src)
            else:
                name, alias = text_of(n, src), None
            full = f"{module}{name}" if module.endswith(".") else f"{module}.{name}"
            out.append(Reference(name=name, kind="import", line=line, full=full, module=module, alias=alias))
        return out

    def bases(self, node: Node, kind: str, src: bytes) -> list[str]:
        if node.type != "class_definition":
            return []
        sup = node.child_by_field_name("superclasses")
        if sup is None:
            return []
        return [_WS.sub("", text_of(c, src)) for c in sup.named_children if c.type in ("identifier", "attribute", "subscript")]


_HANDLERS: dict[str, type[Handler]] = {
    "python": PythonHandler,
}


def handler_for(language: str) -> Handler:
    """The handler of a language (ValueError when unsupported)."""
    try:
        return _HANDLERS[language]()
    except KeyError:
        raise ValueError(f"no parser for language {language!r}") from None
