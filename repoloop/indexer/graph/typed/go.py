"""Go types as written: pointers are transparent, slices, arrays and maps hold elements, the
predeclared types are builtins."""

from __future__ import annotations

from functools import lru_cache

from repoloop.indexer.graph.typed.syntax import BUILTIN, Holder, Named, TypeExpr, path_parts, split_args

GO_BUILTINS = frozenset({
    "bool", "byte", "complex64", "complex128", "error", "float32", "float64", "int", "int8", "int16",
    "int32", "int64", "rune", "string", "uint", "uint8", "uint16", "uint32", "uint64", "uintptr", "any",
    "comparable",
})


@lru_cache(maxsize=65536)
def parse_go(text: str) -> TypeExpr:
    t = text.strip()
    while t.startswith(("*", "&", "(")):
        t = t.lstrip("*&").strip()
        if t.startswith("(") and t.endswith(")"):
            t = t[1:-1]
    if t.startswith("[]"):
        return Holder(t[2:])
    if t.startswith("["):  # an array [N]T
        end = t.find("]")
        return Holder(t[end + 1:]) if end > 0 else None
    if t.startswith("map["):
        depth = 0
        for i, ch in enumerate(t[3:], 3):
            depth += ch == "["
            depth -= ch == "]"
            if depth == 0:
                return Holder(t[i + 1:])
        return None
    if t.startswith(("chan", "<-chan", "func", "struct{", "interface{")):
        return BUILTIN
    base, args = split_args(t, "[", "]")
    parts = path_parts(base)
    if parts is None:
        return None
    if len(parts) == 1 and parts[0] in GO_BUILTINS:
        return BUILTIN
    return Named(parts, args)
