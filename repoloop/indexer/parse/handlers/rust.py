"""Rust: functions, structs, enums, unions, traits (with their method signatures), impl blocks,
modules, consts/statics, type aliases, macros; `use` trees; `impl Trait for Type` as a base.

An impl block is a symbol of kind `impl` named after its type (`crate::shapes::Point`), so the
methods inside are `crate::shapes::Point::new` whether they come from `impl Point` or from
`impl Area for Point`; the block's signature keeps the full header (`impl Area for Point`).
"""

from __future__ import annotations

import re

from tree_sitter import Node

from repoloop.indexer.models import Reference
from repoloop.indexer.parse.handlers.base import Handler, compact, last_ident, text_of
from repoloop.indexer.parse.handlers.typefacts import value_type


class RustHandler(Handler):
    def_query = """
    (function_item) @def.function
    (function_signature_item) @def.function
    (struct_item) @def.struct
    (union_item) @def.struct
    (enum_item) @def.enum
    (trait_item) @def.trait
    (impl_item) @def.impl
    (mod_item) @def.module
    (const_item) @def.constant
    (static_item) @def.constant
    (type_item) @def.type
    (macro_definition) @def.macro
    """
    call_query = "(call_expression function: (_) @call) (macro_invocation macro: (_) @call)"
    ref_query = "(identifier) @ref (type_identifier) @ref"
    import_query = "(use_declaration) @import"
    type_query = """
    (parameter pattern: (_) type: (_)) @tf.param
    (let_declaration) @tf.local
    (function_item return_type: (_) @tf.return)
    (function_signature_item return_type: (_) @tf.return)
    (field_declaration name: (_) type: (_)) @tf.field
    (type_parameter) @tf.generic
    (where_predicate) @tf.generic
    (type_item) @tf.alias
    """
    comment_marks = ("//", "/*", "*")
    preamble_marks = ("#[",)
    chain_callees = True
    skip_refs = frozenset({"self", "Self"})

    def name_node(self, node: Node) -> Node | None:
        if node.type == "impl_item":
            return None
        return node.child_by_field_name("name")

    def name(self, node: Node, kind: str, src: bytes) -> tuple[str, str] | None:
        if node.type == "impl_item":
            t = node.child_by_field_name("type")
            if t is None:
                return None
            return _type_name(t, src), kind
        return super().name(node, kind, src)

    def bases(self, node: Node, kind: str, src: bytes) -> list[str]:
        if node.type == "impl_item":
            trait = node.child_by_field_name("trait")
            return [_type_path(trait, src)] if trait is not None else []
        if node.type == "trait_item":  # supertraits: `trait A: B + C`
            bounds = node.child_by_field_name("bounds")
            return [_type_path(b, src) for b in bounds.named_children] if bounds is not None else []
        return []

    def type_facts(self, role: str, node: Node, src: bytes) -> list[tuple[str, str]]:
        if role == "return":
            return [("return", _plain_type(node, src))]
        if role in ("param", "field"):
            pat = node.child_by_field_name("pattern" if role == "param" else "name")
            if pat is not None and pat.type == "mut_pattern" and pat.named_child_count:
                pat = pat.named_children[-1]
            if pat is None or pat.type not in ("identifier", "field_identifier"):
                return []
            return [(text_of(pat, src), _plain_type(node.child_by_field_name("type"), src))]
        if role == "local":
            pat = node.child_by_field_name("pattern")
            if pat is None or pat.type != "identifier":
                return []
            typ = node.child_by_field_name("type")
            if typ is not None:
                return [(text_of(pat, src), _plain_type(typ, src))]
            return [(text_of(pat, src), value_type(node.child_by_field_name("value"), src))]
        if role == "generic":  # `T: Matcher`, `where T: Matcher`: calls on a T are the bound's methods
            name = node.child_by_field_name("name") or node.child_by_field_name("left")
            bounds = node.child_by_field_name("bounds")
            if name is None or bounds is None or name.type != "type_identifier":
                return []
            first = next((b for b in bounds.named_children if b.type != "lifetime"), None)
            return [(text_of(name, src), _type_path(first, src))] if first is not None else []
        if role == "alias":
            name = node.child_by_field_name("name")
            typ = node.child_by_field_name("type")
            return [(text_of(name, src), _plain_type(typ, src))] if name is not None and typ is not None else []
        return []

    def callee(self, node: Node, src: bytes) -> tuple[str, str]:
        name, full = super().callee(node, src)
        if node.parent is not None and node.parent.type == "macro_invocation":
            return name, full + "!"
        return name, full

    def imports(self, node: Node, src: bytes) -> list[Reference]:
        line = node.start_point[0] + 1
        out: list[Reference] = []

        def walk(n: Node, prefix: str) -> None:
            t = n.type
            if t in ("scoped_identifier", "identifier", "crate", "self", "super", "metavariable"):
                full = compact(text_of(n, src))
                if prefix:
                    full = f"{prefix}::{full}"
                if t == "self" and prefix:  # `use a::b::{self}`
                    full = prefix
                module, _, name = full.rpartition("::")
                out.append(Reference(name=name, kind="import", line=line, full=full, module=module or None))
            elif t == "use_as_clause":
                before = len(out)
                p = n.child_by_field_name("path")
                if p is not None:
                    walk(p, prefix)
                if len(out) > before:
                    out[-1].alias = text_of(n.child_by_field_name("alias"), src) or None
            elif t == "scoped_use_list":
                p = n.child_by_field_name("path")
                sub = compact(text_of(p, src)) if p is not None else ""
                lst = n.child_by_field_name("list")
                new_prefix = "::".join(x for x in (prefix, sub) if x)
                if lst is not None:
                    walk(lst, new_prefix)
            elif t == "use_list":
                for c in n.named_children:
                    walk(c, prefix)
            elif t == "use_wildcard":
                text = compact(text_of(n, src)).removesuffix("::*").removesuffix("*")
                module = "::".join(x for x in (prefix, text) if x)
                out.append(Reference(name="*", kind="import", line=line, full=f"{module}::*", module=module))

        arg = node.child_by_field_name("argument")
        if arg is not None:
            walk(arg, "")
        return out


_LIFETIME = re.compile(r"'\w+\s*|&|\b(mut|dyn|impl)\s+")


def _plain_type(node: Node | None, src: bytes) -> str:
    """`&'a mut dyn Foo<T>` -> `Foo<T>`: what method calls on such a value look up."""
    return compact(_LIFETIME.sub("", text_of(node, src))) if node is not None else ""


def _type_name(node: Node, src: bytes) -> str:
    """`Wrapper<T>` -> `Wrapper`, `fmt::Display` -> `Display`, `&mut T` -> `T`, `*const T` -> `T`."""
    while node.type in ("reference_type", "pointer_type") and node.child_by_field_name("type") is not None:
        node = node.child_by_field_name("type")
    if node.type == "generic_type":
        node = node.child_by_field_name("type") or node
    return last_ident(compact(text_of(node, src)).split("<", 1)[0].replace("::", "."))


def _type_path(node: Node, src: bytes) -> str:
    """`fmt::Display<T>` -> `fmt::Display`."""
    if node.type == "generic_type":
        node = node.child_by_field_name("type") or node
    return compact(text_of(node, src)).split("<", 1)[0]
