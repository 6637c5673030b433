"""Python: functions, classes, module-level UPPER_CASE constants and lambdas, imports, bases."""

from __future__ import annotations

import inspect
import re

from tree_sitter import Node

from repoloop.indexer.models import Reference
from repoloop.indexer.parse.handlers.base import _WS, Handler, one_line, text_of


class PythonHandler(Handler):
    def_query = """
    (function_definition) @def.function
    (class_definition) @def.class
    (module (expression_statement (assignment left: (identifier) right: (_)) @def.constant))
    (type_alias_statement) @def.type
    """
    call_query = "(call function: (_) @call)"
    ref_query = "(identifier) @ref"
    import_query = "(import_statement) @import (import_from_statement) @import (future_import_statement) @import"
    skip_refs = frozenset({"self", "cls"})

    def name(self, node: Node, kind: str, src: bytes) -> tuple[str, str] | None:
        if node.type == "type_alias_statement":  # `type Vec = list[float]` (3.12)
            n = self.name_node(node)
            return (text_of(n, src), kind) if n is not None else None
        if kind != "constant":
            return super().name(node, kind, src)
        name = text_of(node.child_by_field_name("left"), src)
        right = node.child_by_field_name("right")
        if right is not None and right.type == "lambda":
            return name, "function"
        if name.isupper() or (name.lstrip("_").isupper()):
            return name, "constant"
        return None

    def name_node(self, node: Node) -> Node | None:
        if node.type == "type_alias_statement":
            left = node.child_by_field_name("left")
            return left.named_children[0] if left is not None and left.named_child_count else None
        return node.child_by_field_name("left" if node.type == "assignment" else "name")

    def signature(self, node: Node, kind: str, src: bytes) -> str:
        if node.type in ("assignment", "type_alias_statement"):
            return one_line(text_of(node, src).split("\n", 1)[0], 200)
        return super().signature(node, kind, src).rstrip(":").rstrip()

    comment_marks = ("#",)

    def doc(self, node: Node, kind: str, src: bytes) -> str:
        """The docstring, else the comment lines right above (decorators skipped)."""
        return self._docstring(node, src) or super().doc(node, kind, src)

    @staticmethod
    def _docstring(node: Node, src: bytes) -> str:
        body = node.child_by_field_name("body")
        if body is None or body.named_child_count == 0:
            return ""
        first = body.named_children[0]
        if first.type != "expression_statement" or first.named_child_count == 0:
            return ""
        s = first.named_children[0]
        if s.type != "string":
            return ""
        raw = text_of(s, src)
        m = re.match(r"(?is)^[rbuf]*('''|\"\"\"|'|\")(.*)\1$", raw)
        return inspect.cleandoc(m.group(2)) if m else ""

    def imports(self, node: Node, src: bytes) -> list[Reference]:
        line = node.start_point[0] + 1
        out: list[Reference] = []
        if node.type == "import_statement":
            for n in node.children_by_field_name("name"):
                if n.type == "aliased_import":
                    mod = text_of(n.child_by_field_name("name"), src)
                    alias: str | None = text_of(n.child_by_field_name("alias"), src)
                else:
                    mod, alias = text_of(n, src), None
                out.append(Reference(name=mod.rsplit(".", 1)[-1], kind="import", line=line, full=mod, module=mod, alias=alias))
            return out
        if node.type == "future_import_statement":
            module = "__future__"
        else:
            module = _WS.sub("", text_of(node.child_by_field_name("module_name"), src))
        names = node.children_by_field_name("name")
        if not names and any(c.type == "wildcard_import" for c in node.children):
            return [Reference(name="*", kind="import", line=line, full=f"{module}.*", module=module)]
        for n in names:
            if n.type == "aliased_import":
                name = text_of(n.child_by_field_name("name"), src)
                alias = text_of(n.child_by_field_name("alias"), src)
            else:
                name, alias = text_of(n, src), None
            full = f"{module}{name}" if module.endswith(".") else f"{module}.{name}"
            out.append(Reference(name=name, kind="import", line=line, full=full, module=module, alias=alias))
        return out

    def bases(self, node: Node, kind: str, src: bytes) -> list[str]:
        if node.type != "class_definition":
            return []
        sup = node.child_by_field_name("superclasses")
        if sup is None:
            return []
        return [_WS.sub("", text_of(c, src)) for c in sup.named_children if c.type in ("identifier", "attribute", "subscript")]
