"""Ruby: modules, classes, methods (`def x` and `def self.x`), constants; `require`s as
imports; the superclass and `include`/`extend`/`prepend`ed modules as bases.
Qualnames join with `::` (`Billing::Invoice::total`); a `def` outside any class is a function."""

from __future__ import annotations

from tree_sitter import Node

from repoloop.indexer.models import Reference
from repoloop.indexer.parse.handlers.base import Handler, compact, one_line, text_of, unquote

_MIXINS = frozenset({"include", "extend", "prepend"})


class RubyHandler(Handler):
    def_query = """
    (module) @def.module
    (class) @def.class
    (singleton_class) @def.class
    (method) @def.method
    (singleton_method) @def.method
    (assignment left: (constant)) @def.constant
    """
    call_query = "(call) @call"
    ref_query = "(identifier) @ref (constant) @ref"
    import_query = """
    (call method: (identifier) @_m arguments: (argument_list . (string))
      (#match? @_m "^(require|require_relative|load|autoload)$")) @import
    """
    comment_marks = ("#",)
    preamble_marks = ()
    whole_call_types = frozenset({"call"})
    skip_refs = frozenset({"self"})

    def name_node(self, node: Node) -> Node | None:
        if node.type == "assignment":
            return node.child_by_field_name("left")
        return node.child_by_field_name("name")

    def name(self, node: Node, kind: str, src: bytes) -> tuple[str, str] | None:
        if node.type == "singleton_class":
            return "<<self", kind
        if node.type == "assignment":
            p = node.parent
            if p is not None and p.type not in ("program", "body_statement"):
                return None
        return super().name(node, kind, src)

    def signature(self, node: Node, kind: str, src: bytes) -> str:
        """The `def`/`class`/`module` line (a body may start on the same line as a comment)."""
        first = src[node.start_byte:node.end_byte].split(b"\n", 1)[0].decode("utf-8", errors="replace")
        return one_line(first.split(" #", 1)[0].removesuffix("; end").removesuffix(";end"), 200)

    def adjust_kind(self, kind: str, parent_kind: str | None, node: Node) -> str:
        if kind == "method" and parent_kind not in ("class", "module"):
            return "function"
        return kind

    def callee(self, node: Node, src: bytes) -> tuple[str, str]:
        m = node.child_by_field_name("method")
        if m is None:
            return "", ""
        name = text_of(m, src)
        r = node.child_by_field_name("receiver")
        full = f"{compact(text_of(r, src))}.{name}" if r is not None else name
        return name, full[-200:]

    def imports(self, node: Node, src: bytes) -> list[Reference]:
        args = node.child_by_field_name("arguments")
        if args is None or not args.named_children:
            return []
        path = unquote(text_of(args.named_children[0], src))
        how = text_of(node.child_by_field_name("method"), src)
        module = path if how != "require_relative" or path.startswith(".") else f"./{path}"
        return [Reference(name=path.rsplit("/", 1)[-1], kind="import", line=node.start_point[0] + 1, full=module,
                          module=module)]

    def bases(self, node: Node, kind: str, src: bytes) -> list[str]:
        out: list[str] = []
        sup = node.child_by_field_name("superclass")
        if sup is not None:
            out.extend(compact(text_of(c, src)) for c in sup.named_children)
        body = node.child_by_field_name("body")
        for stmt in body.named_children if body is not None else ():
            if stmt.type == "call" and stmt.child_by_field_name("receiver") is None:
                if text_of(stmt.child_by_field_name("method"), src) in _MIXINS:
                    args = stmt.child_by_field_name("arguments")
                    out.extend(compact(text_of(a, src)) for a in (args.named_children if args else ())
                               if a.type in ("constant", "scope_resolution"))
        return out
