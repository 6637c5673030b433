"""C#: namespaces (block and file-scoped), classes, structs, interfaces, enums, records,
methods, constructors, properties, delegates; `using` directives; base lists.
Qualnames come from the namespaces in the code: `Acme.Web.HomeController.Get`."""

from __future__ import annotations

import re

from tree_sitter import Node

from repoloop.indexer.models import Reference
from repoloop.indexer.parse.handlers.base import Handler, compact, text_of

_XML_TAG = re.compile(r"</?(summary|remarks|returns)>")


class CSharpHandler(Handler):
    def_query = """
    (namespace_declaration) @def.namespace
    (class_declaration) @def.class
    (struct_declaration) @def.struct
    (interface_declaration) @def.interface
    (enum_declaration) @def.enum
    (record_declaration) @def.class
    (method_declaration) @def.method
    (constructor_declaration) @def.method
    (destructor_declaration) @def.method
    (property_declaration) @def.field
    (delegate_declaration) @def.type
    """
    call_query = "(invocation_expression function: (_) @call) (object_creation_expression type: (_) @call)"
    ref_query = "(identifier) @ref"
    import_query = "(using_directive) @import"
    preamble_marks = ("[",)

    def doc(self, node: Node, kind: str, src: bytes) -> str:
        return _XML_TAG.sub("", super().doc(node, kind, src)).strip()

    def namespace_prefix(self, root: Node, src: bytes) -> str:
        for child in root.named_children:
            if child.type == "file_scoped_namespace_declaration":
                return compact(text_of(child.child_by_field_name("name"), src))
        return ""

    def imports(self, node: Node, src: bytes) -> list[Reference]:
        alias_node = node.child_by_field_name("name")
        target = next((c for c in node.named_children if c.type in ("qualified_name", "identifier") and c != alias_node),
                      None)
        if target is None:
            return []
        full = compact(text_of(target, src))
        return [Reference(name=full.rsplit(".", 1)[-1], kind="import", line=node.start_point[0] + 1, full=full,
                          module=full, alias=text_of(alias_node, src) if alias_node is not None else None)]

    def bases(self, node: Node, kind: str, src: bytes) -> list[str]:
        for child in node.children:
            if child.type == "base_list":
                return [compact(text_of(c, src)).split("<", 1)[0] for c in child.named_children
                        if c.type != "argument_list"]
        return []
