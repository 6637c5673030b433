"""What the code declares about a name's type, as text: the raw material of typed call resolution.

A handler turns its `tf.<role>` captures into (name, type) pairs; the parse engine stores each as a
reference of kind "type" (`module` holds the role, `full` the type). Roles: `param`, `local`,
`field` (a member of the enclosing class/struct), `return` (the enclosing function's result),
`generic` (a type parameter and its first bound), `alias` (`type A = B`).

A type is written either as a type expression (`*pkg.Server`, `&'a Config`, `Foo<T>`) or, when
only an initializer says it, as `=` and the initializer's chain (`=pkg.New()`, `=self.cfg.get()?`,
`=await this.load()`) for the resolver to evaluate. An empty type marks a local whose type is not
known: it still shadows imports and modules of the same name.
"""

from __future__ import annotations

from tree_sitter import Node

from repoloop.indexer.parse.handlers.base import compact, text_of

MAX_CHAIN = 200

# member access: node type -> (object field, member field, separator)
_MEMBER = {
    "selector_expression": ("operand", "field", "."),
    "member_expression": ("object", "property", "."),
    "field_expression": ("value", "field", "."),
    "field_access": ("object", "field", "."),
    "scoped_identifier": ("path", "name", "::"),
    "qualified_type": ("package", "name", "."),
}
_NAMES = frozenset({
    "identifier", "field_identifier", "property_identifier", "type_identifier", "package_identifier",
    "this", "self", "super", "crate", "shorthand_property_identifier",
})
_WRAPPERS = frozenset({"parenthesized_expression", "reference_expression", "non_null_expression",
                       "satisfies_expression"})
_TYPE_NODES = frozenset({"type_identifier", "generic_type", "predefined_type", "nested_type_identifier",
                         "union_type", "array_type", "object_type", "type_annotation"})
_LITERALS = frozenset({"string_literal", "string", "template_string", "interpreted_string_literal",
                       "raw_string_literal", "number", "integer_literal", "int_literal", "float_literal",
                       "decimal_integer_literal", "character_literal", "array", "object", "true", "false"})
LITERAL = "$lit"  # the head of a chain that starts at a literal: never a repository value


def chain(node: Node | None, src: bytes, depth: int = 0) -> str | None:
    """`a.b(x).c?` as `a.b().c?`: a receiver chain with arguments dropped, or None when the
    expression is not one (a literal, an operator, a closure)."""
    if node is None or depth > 24:
        return None
    t = node.type
    if t in _NAMES:
        return text_of(node, src)
    if t in _MEMBER:
        obj_f, mem_f, sep = _MEMBER[t]
        obj = chain(node.child_by_field_name(obj_f), src, depth + 1)
        mem = node.child_by_field_name(mem_f)
        if obj is None or mem is None:
            return None
        return f"{obj}{sep}{text_of(mem, src)}"
    if t == "call_expression":
        fn = node.child_by_field_name("function")
        if fn is not None and fn.type == "generic_function":
            fn = fn.child_by_field_name("function")
        inner = chain(fn, src, depth + 1)
        return f"{inner}()" if inner is not None else None
    if t == "method_invocation":  # Java
        obj = node.child_by_field_name("object")
        name = text_of(node.child_by_field_name("name"), src)
        if obj is None:
            return f"{name}()"
        inner = chain(obj, src, depth + 1)
        return f"{inner}.{name}()" if inner is not None else None
    if t == "object_creation_expression" and node.child_by_field_name("body") is None:  # Java new T()
        typ = compact(text_of(node.child_by_field_name("type"), src)).split("<", 1)[0]
        return f"{typ}()" if typ else None
    if t == "new_expression":  # JS/TS new T()
        inner = chain(node.child_by_field_name("constructor"), src, depth + 1)
        return f"{inner}()" if inner is not None else None
    if t in ("cast_expression", "as_expression", "type_assertion"):  # (T) x, x as T, <T>x: a cast
        typ = node.child_by_field_name("type")
        val = node.child_by_field_name("value")
        if t != "cast_expression":
            kids = node.named_children
            val = next((k for k in kids if k.type not in _TYPE_NODES), None)
            typ = next((k for k in kids if k.type in _TYPE_NODES), None)
        inner = chain(val, src, depth + 1)
        if typ is None or inner is None:
            return None
        return f"{inner}.({compact(text_of(typ, src))})"
    if t in _LITERALS:  # "abc".length(): a builtin value
        return LITERAL
    if t == "try_expression":
        inner = chain(node.named_children[0] if node.named_child_count else None, src, depth + 1)
        return f"{inner}?" if inner is not None else None
    if t == "await_expression":
        inner = chain(node.named_children[0] if node.named_child_count else None, src, depth + 1)
        return f"await {inner}" if inner is not None and not inner.startswith("await ") else None
    if t in _WRAPPERS or (t == "unary_expression" and node.child_by_field_name("operator") is not None
                          and text_of(node.child_by_field_name("operator"), src) == "*"):
        inner = node.child_by_field_name("value") or node.child_by_field_name("operand") or (
            node.named_children[0] if node.named_child_count else None)
        return chain(inner, src, depth + 1)
    if t == "index_expression":
        inner = chain(node.child_by_field_name("operand") or (
            node.named_children[0] if node.named_child_count else None), src, depth + 1)
        return f"{inner}[]" if inner is not None else None
    return None


def value_type(node: Node | None, src: bytes) -> str:
    """The type an initializer gives a new name: a type when the expression says it (`T{}`,
    `&T{}`, `new T()`, `S { .. }`, `x.(T)`, `new(T)`), else `=chain`, else "" (unknown)."""
    if node is None:
        return ""
    t = node.type
    if t == "composite_literal":  # Go T{...}
        return compact(text_of(node.child_by_field_name("type"), src))
    if t == "unary_expression":
        op = node.child_by_field_name("operator")
        operand = node.child_by_field_name("operand")
        if op is not None and text_of(op, src) == "&" and operand is not None:
            return value_type(operand, src)
    if t == "type_assertion_expression":  # Go x.(T)
        return compact(text_of(node.child_by_field_name("type"), src))
    if t == "struct_expression":  # Rust S { .. }
        return compact(text_of(node.child_by_field_name("name"), src))
    if t == "new_expression":  # JS/TS new T()
        return compact(text_of(node.child_by_field_name("constructor"), src)).split("<", 1)[0]
    if t == "object_creation_expression":  # Java new T()
        return compact(text_of(node.child_by_field_name("type"), src))
    if t == "call_expression":
        fn = node.child_by_field_name("function")
        args = node.child_by_field_name("arguments")
        if fn is not None and fn.type == "identifier" and text_of(fn, src) in ("new", "make") and args is not None:
            first = args.named_children[0] if args.named_child_count else None
            if first is not None and text_of(fn, src) == "new":
                return compact(text_of(first, src))
            return ""
    c = chain(node, src)
    if c is None or len(c) > MAX_CHAIN:
        return ""
    return "=" + c
