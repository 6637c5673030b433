"""Java: classes, interfaces, enums, records, annotation types, methods and constructors,
`static final` fields as constants; qualnames start with the `package` declaration
(`com.acme.shop.Order.Line.add`)."""

from __future__ import annotations

from tree_sitter import Node

from repoloop.indexer.models import Reference
from repoloop.indexer.parse.handlers.base import Handler, compact, text_of
from repoloop.indexer.parse.handlers.typefacts import value_type


class JavaHandler(Handler):
    def_query = """
    (class_declaration) @def.class
    (interface_declaration) @def.interface
    (enum_declaration) @def.enum
    (record_declaration) @def.class
    (annotation_type_declaration) @def.interface
    (method_declaration) @def.method
    (constructor_declaration) @def.method
    (compact_constructor_declaration) @def.method
    (field_declaration) @def.constant
    """
    call_query = "(method_invocation) @call (object_creation_expression) @call"
    ref_query = "(identifier) @ref (type_identifier) @ref"
    import_query = "(import_declaration) @import"
    type_query = """
    (formal_parameter) @tf.param
    (spread_parameter) @tf.param
    (catch_formal_parameter) @tf.param
    (enhanced_for_statement) @tf.local
    (local_variable_declaration) @tf.local
    (field_declaration) @tf.field
    (method_declaration type: (_) @tf.return)
    """
    chain_callees = True
    whole_call_types = frozenset({"method_invocation", "object_creation_expression"})

    def module(self, root: Node, path: str, default: str) -> str:
        for child in root.named_children:
            if child.type == "package_declaration":
                for c in child.named_children:
                    if c.type in ("scoped_identifier", "identifier") and c.text is not None:
                        return c.text.decode("utf-8", "replace")
        return default

    def name_node(self, node: Node) -> Node | None:
        if node.type == "field_declaration":
            d = node.child_by_field_name("declarator")
            return d.child_by_field_name("name") if d is not None else None
        return node.child_by_field_name("name")

    def name(self, node: Node, kind: str, src: bytes) -> tuple[str, str] | None:
        if node.type == "field_declaration":
            mods = next((c for c in node.children if c.type == "modifiers"), None)
            words = set(text_of(mods, src).split()) if mods is not None else set()
            if not {"static", "final"} <= words:
                return None
        return super().name(node, kind, src)

    def type_facts(self, role: str, node: Node, src: bytes) -> list[tuple[str, str]]:
        if role == "return":
            return [("return", _type(node, src))]
        t = node.type
        typ = node.child_by_field_name("type")
        tt = _type(typ, src) if typ is not None else ""
        if t in ("formal_parameter", "catch_formal_parameter", "enhanced_for_statement"):
            name = node.child_by_field_name("name")
            if t == "catch_formal_parameter":
                tt = tt.split("|", 1)[0]
            return [(text_of(name, src), tt)] if name is not None else []
        if t == "spread_parameter":
            return []
        out: list[tuple[str, str]] = []
        for d in node.children_by_field_name("declarator"):
            name = d.child_by_field_name("name")
            if name is None:
                continue
            dims = d.child_by_field_name("dimensions")
            if tt == "var":
                out.append((text_of(name, src), value_type(d.child_by_field_name("value"), src)))
            else:
                out.append((text_of(name, src), "" if dims is not None else tt))
        return out

    def callee(self, node: Node, src: bytes) -> tuple[str, str]:
        if node.type == "object_creation_expression":
            t = node.child_by_field_name("type")
            name = compact(text_of(t, src)).split("<", 1)[0]
            return name.rsplit(".", 1)[-1], name
        return super().callee(node, src)

    def imports(self, node: Node, src: bytes) -> list[Reference]:
        text = compact(text_of(node, src)).removeprefix("import").removesuffix(";")
        text = text.removeprefix("static")
        module, _, name = text.rpartition(".")
        return [Reference(name=name, kind="import", line=node.start_point[0] + 1, full=text, module=module or None)]

    def bases(self, node: Node, kind: str, src: bytes) -> list[str]:
        out: list[str] = []
        for child in node.children:
            if child.type == "superclass":
                out.extend(_type(c, src) for c in child.named_children)
            elif child.type in ("super_interfaces", "extends_interfaces"):
                for tl in child.named_children:
                    out.extend(_type(c, src) for c in tl.named_children)
        return [b for b in out if b]


def _type(node: Node, src: bytes) -> str:
    return compact(text_of(node, src)).split("<", 1)[0]
