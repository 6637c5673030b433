"""C and C++: functions (the name is dug out of the declarator chain), structs, unions, enums,
typedefs, macros; C++ adds classes, namespaces, in-class method definitions, templates (the
definition inside `template <...>`), aliases, and out-of-class `Foo::bar` definitions, which are
qualified by their written scope (`ns::Foo::bar`) on top of the enclosing namespaces.

Declarations without a body (prototypes, in-class `void draw();`) are not definitions.
"""

from __future__ import annotations

from tree_sitter import Node

from repoloop.indexer.models import Reference
from repoloop.indexer.parse.handlers.base import Handler, compact, one_line, text_of, unquote

_C_DEFS = """
(function_definition) @def.function
(struct_specifier name: (_) body: (_)) @def.struct
(union_specifier name: (_) body: (_)) @def.struct
(enum_specifier name: (_) body: (_)) @def.enum
(type_definition) @def.type
(preproc_def) @def.macro
(preproc_function_def) @def.macro
"""
_CPP_DEFS = """
(class_specifier name: (_) body: (_)) @def.class
(namespace_definition) @def.namespace
(alias_declaration) @def.type
(concept_definition) @def.type
"""
_NAME_TYPES = frozenset({
    "identifier", "field_identifier", "type_identifier", "destructor_name", "operator_name",
    "qualified_identifier", "template_function", "primitive_type",
})


def declarator_name(node: Node) -> Node | None:
    """The name node inside a (possibly nested) declarator: `*(*f)(int)` -> `f`."""
    d = node.child_by_field_name("declarator")
    for _ in range(20):
        if d is None or d.type in _NAME_TYPES:
            return d
        nxt = d.child_by_field_name("declarator")
        if nxt is None:  # e.g. parenthesized_declarator
            nxt = next((c for c in d.named_children if c.type.endswith("declarator") or c.type in _NAME_TYPES), None)
        d = nxt
    return None


class CFamilyHandler(Handler):
    call_query = "(call_expression function: (_) @call)"
    import_query = "(preproc_include) @import"
    preamble_marks = ("template",)

    def __init__(self, dialect: str = "c") -> None:
        self.cpp = dialect == "cpp"
        self.def_query = _C_DEFS + (_CPP_DEFS if self.cpp else "")
        self.ref_query = "(identifier) @ref (type_identifier) @ref" + (" (namespace_identifier) @ref" if self.cpp else "")
        if self.cpp:
            self.call_query += " (new_expression type: (_) @call)"

    def name_node(self, node: Node) -> Node | None:
        t = node.type
        if t == "function_definition":
            n = declarator_name(node)
            if n is not None and n.type == "qualified_identifier":
                while n is not None and n.type == "qualified_identifier":
                    n = n.child_by_field_name("name")
            if n is not None and n.type == "template_function":
                n = n.child_by_field_name("name")
            return n
        if t == "type_definition":
            return declarator_name(node)
        return node.child_by_field_name("name")

    def name(self, node: Node, kind: str, src: bytes) -> tuple[str, str] | None:
        if node.type == "namespace_definition" and node.child_by_field_name("name") is None:
            return None  # anonymous namespace: its members belong to the enclosing scope
        if node.type in ("struct_specifier", "union_specifier", "enum_specifier") and (
            node.parent is not None and node.parent.type == "type_definition"
        ):
            return None  # `typedef struct x {...} x_t;` is named by the typedef
        if node.type == "type_definition":
            t = node.child_by_field_name("type")
            if t is not None and t.child_by_field_name("body") is not None:
                kind = {"struct_specifier": "struct", "union_specifier": "struct", "enum_specifier": "enum",
                        "class_specifier": "class"}.get(t.type, "type")
        n = self.name_node(node)
        if n is None:
            return None
        return text_of(n, src), kind

    def qualifier(self, node: Node, kind: str, src: bytes) -> list[str] | None:
        if node.type != "function_definition":
            return None
        d = declarator_name(node)
        if d is None or d.type != "qualified_identifier":
            return None
        parts: list[str] = []
        while d is not None and d.type == "qualified_identifier":
            scope = d.child_by_field_name("scope")
            if scope is not None:
                parts.append(compact(text_of(scope, src)))
            d = d.child_by_field_name("name")
        return parts or None

    def adjust_kind(self, kind: str, parent_kind: str | None, node: Node) -> str:
        if kind == "function" and node.type == "function_definition":
            if parent_kind in ("class", "struct"):
                return "method"
            d = declarator_name(node)
            if d is not None and d.type == "qualified_identifier":
                return "method"
        return kind

    def signature(self, node: Node, kind: str, src: bytes) -> str:
        if node.type in ("preproc_def", "preproc_function_def"):
            return one_line(text_of(node, src).split("\n", 1)[0], 200)
        return super().signature(node, kind, src)

    def imports(self, node: Node, src: bytes) -> list[Reference]:
        path = unquote(text_of(node.child_by_field_name("path"), src))
        if not path:
            return []
        name = path.rsplit("/", 1)[-1]
        return [Reference(name=name, kind="import", line=node.start_point[0] + 1, full=path, module=path)]

    def bases(self, node: Node, kind: str, src: bytes) -> list[str]:
        out: list[str] = []
        for child in node.children:
            if child.type == "base_class_clause":
                for c in child.named_children:
                    if c.type != "access_specifier":
                        out.append(compact(text_of(c, src)).split("<", 1)[0])
        return [b for b in out if b and b not in ("virtual", "public", "private", "protected")]
