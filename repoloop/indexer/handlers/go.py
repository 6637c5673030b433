"""Go: functions, methods (named after their receiver type: `pkg.Server.Start`), struct,
interface and other type declarations, interface methods, top-level const/var, imports, and
embedded types as bases."""

from __future__ import annotations

from tree_sitter import Node

from repoloop.indexer.handlers.base import Handler, last_ident, text_of, unquote
from repoloop.indexer.models import Reference

_KIND_OF_TYPE = {"struct_type": "struct", "interface_type": "interface"}


class GoHandler(Handler):
    def_query = """
    (function_declaration) @def.function
    (method_declaration) @def.method
    (type_spec) @def.type
    (type_alias) @def.type
    (method_elem) @def.method
    (source_file (const_declaration (const_spec) @def.constant))
    (source_file (var_declaration (var_spec) @def.variable))
    """
    call_query = "(call_expression function: (_) @call)"
    ref_query = "(identifier) @ref (type_identifier) @ref"
    import_query = "(import_spec) @import"
    skip_refs = frozenset({"_", "err"})

    def module(self, root: Node, path: str, default: str) -> str:
        if default:
            return default
        for child in root.named_children:  # a file at the repository root: its package name
            if child.type == "package_clause":
                if child.named_child_count and child.named_children[0].text is not None:
                    return child.named_children[0].text.decode("utf-8", "replace")
        return default

    def name(self, node: Node, kind: str, src: bytes) -> tuple[str, str] | None:
        n = node.child_by_field_name("name")
        if n is None:
            return None
        if node.type == "type_spec":
            t = node.child_by_field_name("type")
            kind = _KIND_OF_TYPE.get(t.type, "type") if t is not None else "type"
        return text_of(n, src), kind

    def qualifier(self, node: Node, kind: str, src: bytes) -> list[str] | None:
        if node.type != "method_declaration":
            return None
        recv = node.child_by_field_name("receiver")
        params = [c for c in recv.named_children if c.type == "parameter_declaration"] if recv else []
        if not params:
            return None
        t = params[0].child_by_field_name("type")
        name = last_ident(text_of(t, src).lstrip("*")) if t is not None else ""
        return [name] if name else None

    def signature(self, node: Node, kind: str, src: bytes) -> str:
        if node.type == "type_spec":  # `type Server struct`, without the field list
            t = node.child_by_field_name("type")
            if t is not None and t.type in _KIND_OF_TYPE:
                return f"type {text_of(node.child_by_field_name('name'), src)} {t.type.removesuffix('_type')}"
            return "type " + super().signature(node, kind, src)
        return super().signature(node, kind, src)

    def doc(self, node: Node, kind: str, src: bytes) -> str:
        anchor = node
        if node.type in ("type_spec", "type_alias", "const_spec", "var_spec") and node.parent is not None:
            if node.parent.named_child_count == 1:  # `type X struct` (not inside a `type (...)` group)
                anchor = node.parent
        return super().doc(anchor, kind, src)

    def imports(self, node: Node, src: bytes) -> list[Reference]:
        module = unquote(text_of(node.child_by_field_name("path"), src))
        n = node.child_by_field_name("name")
        alias = text_of(n, src) if n is not None else None
        return [Reference(name=module.rsplit("/", 1)[-1], kind="import", line=node.start_point[0] + 1,
                          full=module, module=module, alias=alias)]

    def bases(self, node: Node, kind: str, src: bytes) -> list[str]:
        """Embedded fields of a struct and embedded interfaces."""
        if node.type != "type_spec":
            return []
        t = node.child_by_field_name("type")
        if t is None:
            return []
        out: list[str] = []
        if t.type == "struct_type":
            for fl in t.named_children:
                for f in fl.named_children:
                    if f.type == "field_declaration" and f.child_by_field_name("name") is None:
                        ft = f.child_by_field_name("type")
                        if ft is not None:
                            out.append(text_of(ft, src).lstrip("*"))
        elif t.type == "interface_type":
            for c in t.named_children:
                if c.type in ("type_elem", "constraint_elem"):
                    out.append(text_of(c, src))
        return out
