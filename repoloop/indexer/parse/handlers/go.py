"""Go: functions, methods (named after their receiver type: `pkg.Server.Start`), struct,
interface and other type declarations, interface methods, top-level const/var, imports, and
embedded types as bases."""

from __future__ import annotations

from tree_sitter import Node

from repoloop.indexer.models import Reference
from repoloop.indexer.parse.handlers.base import Handler, compact, last_ident, text_of, unquote
from repoloop.indexer.parse.handlers.typefacts import value_type

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
    type_query = """
    (parameter_declaration) @tf.param
    (variadic_parameter_declaration) @tf.param
    (function_declaration result: (_) @tf.return)
    (method_declaration result: (_) @tf.return)
    (method_elem result: (_) @tf.return)
    (type_spec type: [(slice_type) (map_type) (array_type) (pointer_type)]) @tf.underlying
    (type_alias) @tf.alias
    (short_var_declaration) @tf.local
    (var_spec) @tf.local
    (range_clause) @tf.local
    (type_switch_statement alias: (_) @tf.local)
    (field_declaration) @tf.field
    """
    chain_callees = True
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

    def type_facts(self, role: str, node: Node, src: bytes) -> list[tuple[str, str]]:
        t = node.type
        if role == "return":  # `(*T, error)`: return, return1, ... in order
            if t != "parameter_list":
                return [("return", compact(text_of(node, src)))]
            out: list[tuple[str, str]] = []
            for c in node.named_children:
                if c.type == "parameter_declaration":
                    typ = compact(text_of(c.child_by_field_name("type"), src))
                    for _ in range(max(1, len(c.children_by_field_name("name")))):
                        out.append((f"return{len(out) or ''}", typ))
            return out
        if role in ("underlying", "alias"):  # `type Pool []*Upstream`, `type A = B`
            name = node.child_by_field_name("name")
            typ = node.child_by_field_name("type")
            return [(text_of(name, src), compact(text_of(typ, src)))] if name is not None and typ is not None else []
        if t in ("parameter_declaration", "variadic_parameter_declaration"):
            typ = node.child_by_field_name("type")
            tt = compact(text_of(typ, src)) if typ is not None else ""
            if t == "variadic_parameter_declaration":
                tt = ""  # a slice of them
            return [(text_of(n, src), tt) for n in node.children_by_field_name("name")]
        if t == "field_declaration":
            typ = node.child_by_field_name("type")
            tt = compact(text_of(typ, src)) if typ is not None else ""
            names = node.children_by_field_name("name")
            if not names and typ is not None:  # an embedded field is named after its type
                return [(last_ident(tt.lstrip("*")), tt)]
            return [(text_of(n, src), tt) for n in names]
        if t == "var_spec":
            typ = node.child_by_field_name("type")
            names = node.children_by_field_name("name")
            if typ is not None:
                tt = compact(text_of(typ, src))
                return [(text_of(n, src), tt) for n in names]
            values = node.child_by_field_name("value")
            return _pairs(names, values.named_children if values is not None else [], src)
        if t == "short_var_declaration":
            left = node.child_by_field_name("left")
            right = node.child_by_field_name("right")
            names = [n for n in (left.named_children if left is not None else []) if n.type == "identifier"]
            return _pairs(names, right.named_children if right is not None else [], src)
        if t == "range_clause":  # `for i, v := range xs`: v is an element of xs
            left = node.child_by_field_name("left")
            names = list(left.named_children) if left is not None else []
            elem = value_type(node.child_by_field_name("right"), src)
            out = [(text_of(n, src), "") for n in names if n.type == "identifier"]
            if len(names) == 2 and names[1].type == "identifier" and elem.startswith("="):
                out[-1] = (text_of(names[1], src), elem + "[]")
            return out
        if t == "expression_list":  # `switch v := x.(type)`
            return [(text_of(n, src), "") for n in node.named_children if n.type == "identifier"]
        return []

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


def _pairs(names: list[Node], values: list[Node], src: bytes) -> list[tuple[str, str]]:
    """`a, b := x, y` binds a to x's type; `a, err := f()` binds a to f's first result."""
    out: list[tuple[str, str]] = []
    for i, n in enumerate(names):
        if len(values) == len(names):
            out.append((text_of(n, src), value_type(values[i], src)))
        elif len(values) == 1:  # `a, b, err := f()`: the i-th result
            v = value_type(values[0], src)
            if v.startswith("=") and v.endswith(")"):
                out.append((text_of(n, src), f"{v}#{i}" if i else v))
            else:
                out.append((text_of(n, src), v if i == 0 else ""))
        else:
            out.append((text_of(n, src), ""))
    return [(n, v) for n, v in out if n and n != "_"]
