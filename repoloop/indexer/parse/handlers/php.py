"""PHP: namespaces (statement and block form), classes, interfaces, traits, enums, methods,
functions, class constants; `use` imports; extends/implements and `use Trait` as bases.
Qualnames: `App\\Models\\User` for a class, `App\\Models\\User::save` for its methods."""

from __future__ import annotations

from tree_sitter import Node

from repoloop.indexer.models import Reference
from repoloop.indexer.parse.handlers.base import Handler, compact, text_of


class PhpHandler(Handler):
    def_query = """
    (namespace_definition body: (_)) @def.namespace
    (class_declaration) @def.class
    (interface_declaration) @def.interface
    (trait_declaration) @def.trait
    (enum_declaration) @def.enum
    (method_declaration) @def.method
    (function_definition) @def.function
    (const_declaration (const_element) @def.constant)
    """
    call_query = """
    (function_call_expression) @call
    (member_call_expression) @call
    (nullsafe_member_call_expression) @call
    (scoped_call_expression) @call
    (object_creation_expression) @call
    """
    ref_query = "(name) @ref"
    import_query = "(namespace_use_declaration) @import"
    comment_marks = ("//", "/*", "*", "#")
    preamble_marks = ("#[",)
    member_sep = "::"
    whole_call_types = frozenset({
        "function_call_expression", "member_call_expression", "nullsafe_member_call_expression",
        "scoped_call_expression", "object_creation_expression",
    })
    skip_refs = frozenset({"this"})

    def namespace_prefix(self, root: Node, src: bytes) -> str:
        for child in root.named_children:
            if child.type == "namespace_definition" and child.child_by_field_name("body") is None:
                return compact(text_of(child.child_by_field_name("name"), src))
        return ""

    def name_node(self, node: Node) -> Node | None:
        if node.type == "const_element":
            return next((c for c in node.named_children if c.type == "name"), None)
        return node.child_by_field_name("name")

    def callee(self, node: Node, src: bytes) -> tuple[str, str]:
        if node.type == "object_creation_expression":
            t = next((c for c in node.named_children if c.type in ("name", "qualified_name")), None)
            full = compact(text_of(t, src)) if t is not None else ""
            return full.rsplit("\\", 1)[-1], full
        name, full = super().callee(node, src)
        return name, full

    def imports(self, node: Node, src: bytes) -> list[Reference]:
        line = node.start_point[0] + 1
        out: list[Reference] = []
        group_prefix = ""
        for c in node.named_children:
            if c.type == "namespace_name":  # `use A\\{B, C}`
                group_prefix = compact(text_of(c, src))
        for clause in _descendants_of_type(node, "namespace_use_clause"):
            alias_node = clause.child_by_field_name("alias")
            target = next((c for c in clause.named_children if c.type in ("qualified_name", "name")
                           and c != alias_node), None)
            if target is None:
                continue
            full = compact(text_of(target, src)).lstrip("\\")
            if group_prefix:
                full = f"{group_prefix}\\{full}"
            module, _, name = full.rpartition("\\")
            out.append(Reference(name=name, kind="import", line=line, full=full, module=module or None,
                                 alias=text_of(alias_node, src) if alias_node is not None else None))
        return out

    def bases(self, node: Node, kind: str, src: bytes) -> list[str]:
        out: list[str] = []
        for child in node.children:
            if child.type in ("base_clause", "class_interface_clause"):
                out.extend(compact(text_of(c, src)).lstrip("\\") for c in child.named_children)
        body = node.child_by_field_name("body")
        for stmt in body.named_children if body is not None else ():
            if stmt.type == "use_declaration":
                out.extend(compact(text_of(c, src)).lstrip("\\") for c in stmt.named_children
                           if c.type in ("name", "qualified_name"))
        return out


def _descendants_of_type(node: Node, type_: str) -> list[Node]:
    out: list[Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type == type_:
            out.append(n)
            continue
        stack.extend(reversed(n.named_children))
    return out
