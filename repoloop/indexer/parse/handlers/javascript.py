"""JavaScript, TypeScript and TSX: one handler, three dialects (the TS grammars add interfaces,
enums, type aliases, namespaces, abstract classes; JS and TSX have JSX, whose elements count as
calls of the component).

Functions assigned to names (`const add = (a, b) => a + b`) are functions named after the
variable; top-level `const` declarations are constants (UPPER_CASE) or variables; top-level
`Foo.prototype.bar = function` is a method of Foo, `exports.f = ...` a function.
"""

from __future__ import annotations

from tree_sitter import Node

from repoloop.indexer.models import Reference
from repoloop.indexer.parse.handlers.base import (
    Handler,
    compact,
    last_ident,
    one_line,
    text_of,
    trim_signature,
    unquote,
)
from repoloop.indexer.parse.handlers.typefacts import value_type

_FUNC_VALUES = "[(arrow_function) (function_expression) (generator_function)]"
_COMMON_DEFS = f"""
(function_declaration) @def.function
(generator_function_declaration) @def.function
(class_declaration) @def.class
(method_definition) @def.method
(pair key: [(property_identifier) (string)] value: {_FUNC_VALUES}) @def.method
(variable_declarator name: (identifier) value: {_FUNC_VALUES}) @def.function
(variable_declarator name: (identifier) value: (class)) @def.class
(program (lexical_declaration (variable_declarator name: (identifier)) @def.constant))
(program (export_statement declaration: (lexical_declaration (variable_declarator name: (identifier)) @def.constant)))
(program (expression_statement (assignment_expression
  left: (member_expression property: (property_identifier)) right: {_FUNC_VALUES}) @def.function))
"""
_JS_DEFS = f"(field_definition property: (_) value: {_FUNC_VALUES}) @def.method"
_TS_DEFS = f"""
(public_field_definition name: (_) value: {_FUNC_VALUES}) @def.method
(abstract_class_declaration) @def.class
(interface_declaration) @def.interface
(enum_declaration) @def.enum
(type_alias_declaration) @def.type
(internal_module) @def.namespace
(module name: (_)) @def.namespace
(function_signature) @def.function
(abstract_method_signature) @def.method
(method_signature) @def.method
"""
_CALLS = "(call_expression function: (_) @call) (new_expression constructor: (_) @call)"
_JSX_CALLS = "(jsx_opening_element name: (_) @call) (jsx_self_closing_element name: (_) @call)"
_IMPORTS = """
(import_statement) @import
(export_statement source: (_)) @import
(call_expression function: (identifier) @_f arguments: (arguments . (string)) (#eq? @_f "require")) @import
"""
_TYPES_COMMON = """
(variable_declarator name: (identifier)) @tf.local
(assignment_expression left: (member_expression object: (this)) right: (_)) @tf.field
(for_in_statement left: (identifier) right: (_)) @tf.local
(return_statement (new_expression) @tf.inferred)
"""
_TYPES_JS = "(field_definition property: (_) value: (_)) @tf.field"
_TYPES_TS = """
(required_parameter pattern: (identifier) type: (_)) @tf.param
(optional_parameter pattern: (identifier) type: (_)) @tf.param
(required_parameter (accessibility_modifier) pattern: (identifier)) @tf.field
(public_field_definition name: (_)) @tf.field
(method_definition return_type: (_) @tf.return)
(function_declaration return_type: (_) @tf.return)
(method_signature return_type: (_) @tf.return)
(abstract_method_signature return_type: (_) @tf.return)
(type_alias_declaration) @tf.alias
"""
_FUNCTION_TYPES = frozenset({"arrow_function", "function_expression", "generator_function", "class"})


class JavaScriptHandler(Handler):
    import_query = _IMPORTS
    chain_callees = True
    skip_refs = frozenset({"undefined"})

    def __init__(self, dialect: str = "javascript") -> None:
        ts = dialect in ("typescript", "tsx")
        jsx = dialect in ("javascript", "tsx")
        self.def_query = _COMMON_DEFS + (_TS_DEFS if ts else _JS_DEFS)
        self.call_query = _CALLS + (_JSX_CALLS if jsx else "")
        self.ref_query = "(identifier) @ref" + (" (type_identifier) @ref" if ts else "")
        self.type_query = _TYPES_COMMON + (_TYPES_TS if ts else _TYPES_JS)

    def type_facts(self, role: str, node: Node, src: bytes) -> list[tuple[str, str]]:
        t = node.type
        if role == "return":
            return [("return", _annotation(node, src))]
        if role == "inferred":  # `return new X()` in a function without a declared result
            typ = value_type(node, src)
            return [("return", typ)] if typ and not typ.startswith("=") else []
        if t == "for_in_statement":  # `for (const x of xs)`: x is an element of xs
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            of = any(c.type == "of" for c in node.children)
            elem = value_type(right, src) if of else ""
            return [(text_of(left, src), elem + "[]" if elem.startswith("=") else "")]
        if t in ("required_parameter", "optional_parameter"):
            pat = node.child_by_field_name("pattern")
            return [(text_of(pat, src), _annotation(node.child_by_field_name("type"), src))]
        if t == "type_alias_declaration":
            name = node.child_by_field_name("name")
            return [(text_of(name, src), _annotation(node.child_by_field_name("value"), src))]
        if t == "assignment_expression":  # `this.repo = new Repo()` (JS classes declare fields so)
            left = node.child_by_field_name("left")
            prop = left.child_by_field_name("property") if left is not None else None
            typ = value_type(node.child_by_field_name("right"), src)
            return [(text_of(prop, src), typ)] if prop is not None and typ else []
        name = node.child_by_field_name("name") or node.child_by_field_name("property")
        if name is None or name.type not in ("identifier", "property_identifier", "private_property_identifier"):
            return []
        typ = node.child_by_field_name("type")
        if typ is not None:
            return [(text_of(name, src), _annotation(typ, src))]
        value = node.child_by_field_name("value")
        if value is not None and value.type in _FUNCTION_TYPES:
            return []  # a function or class: its own symbol
        return [(text_of(name, src), value_type(value, src))]

    def callee(self, node: Node, src: bytes) -> tuple[str, str]:
        name, full = super().callee(node, src)
        if name[:1].islower() and node.parent is not None and node.parent.type.startswith("jsx_"):
            return "", ""  # <div>: an HTML element, not a component
        return name, full

    def name_node(self, node: Node) -> Node | None:
        if node.type == "field_definition":
            return node.child_by_field_name("property")
        if node.type == "pair":  # `{ get: () => ... }`
            return node.child_by_field_name("key")
        if node.type == "assignment_expression":  # `Foo.prototype.bar = function`, `exports.f = () =>`
            left = node.child_by_field_name("left")
            return left.child_by_field_name("property") if left is not None else None
        return node.child_by_field_name("name")

    def qualifier(self, node: Node, kind: str, src: bytes) -> list[str] | None:
        """`Foo.prototype.bar = ...` is a method of Foo; `exports.f = ...` a plain function."""
        if node.type != "assignment_expression":
            return None
        left = node.child_by_field_name("left")
        obj = compact(text_of(left.child_by_field_name("object") if left is not None else None, src))
        obj = obj.removesuffix(".prototype")
        if not obj or obj in ("module.exports", "exports", "this", "window", "globalThis") or "(" in obj:
            return None
        return [obj]

    def adjust_kind(self, kind: str, parent_kind: str | None, node: Node) -> str:
        if node.type == "assignment_expression":
            left = node.child_by_field_name("left")
            obj = left.child_by_field_name("object") if left is not None else None
            return "method" if obj is not None and obj.type == "member_expression" and (
                (p := obj.child_by_field_name("property")) is not None and p.text == b"prototype") else "function"
        return super().adjust_kind(kind, parent_kind, node)

    def name(self, node: Node, kind: str, src: bytes) -> tuple[str, str] | None:
        n = self.name_node(node)
        if n is None:
            return None
        name = text_of(n, src)
        if node.type in ("module", "pair"):
            return unquote(name), kind
        if kind == "constant":
            value = node.child_by_field_name("value")
            decl = node.parent
            if value is not None and value.type in _FUNCTION_TYPES:
                return None  # captured as a function/class
            if decl is None or decl.child(0) is None or decl.child(0).type != "const":
                return None
            return name, "constant" if name.lstrip("_").isupper() else "variable"
        return name, kind

    def body(self, node: Node) -> Node | None:
        if node.type in ("variable_declarator", "field_definition", "public_field_definition", "assignment_expression",
                         "pair"):
            value = node.child_by_field_name("right" if node.type == "assignment_expression" else "value")
            return value.child_by_field_name("body") if value is not None else None
        return node.child_by_field_name("body")

    def signature(self, node: Node, kind: str, src: bytes) -> str:
        if node.type == "variable_declarator":
            decl = node.parent if node.parent is not None and node.parent.type in (
                "lexical_declaration", "variable_declaration") else node
            body = self.body(node)
            if body is None or kind in ("constant", "variable"):
                first = text_of(decl, src).split("\n", 1)[0]
                return one_line(first, 200)
            return trim_signature(src[decl.start_byte:body.start_byte].decode("utf-8", errors="replace"))
        return super().signature(node, kind, src)

    def imports(self, node: Node, src: bytes) -> list[Reference]:
        line = node.start_point[0] + 1
        if node.type == "call_expression":  # require("x")
            args = node.child_by_field_name("arguments")
            module = unquote(text_of(args.named_children[0], src)) if args is not None else ""
            parent = node.parent
            alias = None
            if parent is not None and parent.type == "variable_declarator":
                n = parent.child_by_field_name("name")
                alias = text_of(n, src) if n is not None and n.type == "identifier" else None
            return [Reference(name="*", kind="import", line=line, full=module, module=module, alias=alias)]
        source = node.child_by_field_name("source")
        module = unquote(text_of(source, src))
        out: list[Reference] = []

        def add(name: str, alias: str | None) -> None:
            full = module if name in ("*", "default") else f"{module}.{name}"
            out.append(Reference(name=name, kind="import", line=line, full=full, module=module, alias=alias))

        for child in node.named_children:
            if child.type == "import_clause":
                for c in child.named_children:
                    if c.type == "identifier":
                        add("default", text_of(c, src))
                    elif c.type == "namespace_import":
                        ident = next((x for x in c.named_children if x.type == "identifier"), None)
                        add("*", text_of(ident, src) if ident is not None else None)
                    elif c.type == "named_imports":
                        for spec in c.named_children:
                            if spec.type == "import_specifier":
                                a = spec.child_by_field_name("alias")
                                add(text_of(spec.child_by_field_name("name"), src), text_of(a, src) if a else None)
            elif child.type == "export_clause":
                for spec in child.named_children:
                    if spec.type == "export_specifier":
                        a = spec.child_by_field_name("alias")
                        add(text_of(spec.child_by_field_name("name"), src), text_of(a, src) if a else None)
        if not out:
            add("*", None)  # `import "x"` (side effects) or `export * from "x"`
        return out

    def bases(self, node: Node, kind: str, src: bytes) -> list[str]:
        out: list[str] = []
        for child in node.children:
            if child.type == "class_heritage":
                for c in child.named_children:
                    if c.type in ("extends_clause", "implements_clause"):
                        out.extend(_type_name(x, src) for x in c.named_children if x.type != "type_arguments")
                    else:  # JavaScript: `extends Expr`
                        out.append(_type_name(c, src))
            elif child.type == "extends_type_clause":
                out.extend(_type_name(x, src) for x in child.named_children)
        return [b for b in out if b]


def _annotation(node: Node | None, src: bytes) -> str:
    """`: Foo<T>` -> `Foo<T>`."""
    return compact(text_of(node, src)).removeprefix(":") if node is not None else ""


def _type_name(node: Node, src: bytes) -> str:
    """`Shape<T>` -> `Shape`, `ns.Base` -> `ns.Base`."""
    if node.type == "generic_type":
        node = node.child_by_field_name("name") or node
    text = compact(text_of(node, src))
    return text.split("<", 1)[0] if last_ident(text) else ""
