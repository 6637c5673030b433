"""TypeScript types as written: `T | null` is T, arrays and `Promise`s hold an element, the
language's and the DOM's globals are builtins."""

from __future__ import annotations

from functools import lru_cache

from repoloop.indexer.graph.typed.syntax import BUILTIN, Holder, Named, TypeExpr, path_parts, split_args

TS_BUILTINS = frozenset({
    "string", "number", "boolean", "any", "unknown", "void", "never", "object", "null", "undefined", "bigint",
    "symbol", "Object", "String", "Number", "Boolean", "Function", "RegExp", "Date", "Error", "Map", "Set",
    "WeakMap", "WeakSet", "Record", "Partial", "Readonly", "Required", "Pick", "Omit", "JSON", "Math",
    "console", "Symbol", "BigInt", "Uint8Array", "ArrayBuffer", "Buffer", "URL", "Response", "Request",
    "Headers", "AbortController", "AbortSignal", "TextEncoder", "TextDecoder", "Event", "EventTarget",
    "HTMLElement", "Element", "Node", "Document", "Window", "Intl", "Reflect", "Proxy", "process",
})
TS_HOLDERS = frozenset({"Array", "ReadonlyArray", "Promise", "PromiseLike", "Iterable", "AsyncIterable",
                        "Observable", "Awaited", "NonNullable"})


@lru_cache(maxsize=65536)
def parse_ts(text: str) -> TypeExpr:
    t = text.strip().removeprefix("readonly").strip()
    if "|" in t and not t.startswith(("(", "{")):
        kept = [p for p in (x.strip() for x in t.split("|")) if p and p not in ("null", "undefined", "void")]
        if len(kept) != 1:
            return None
        t = kept[0]
    if t.endswith("[]"):
        return Holder(t[:-2])
    if t.startswith(("{", "(", "[", "'", '"', "`", "typeof", "keyof")):
        return BUILTIN if t.startswith(("{", "(", "[", "'", '"', "`")) else None
    base, args = split_args(t)
    parts = path_parts(base)
    if parts is None:
        return None
    if len(parts) == 1 and parts[0] in TS_HOLDERS:
        return Holder(args[0] if args else "")
    if len(parts) == 1 and parts[0] in TS_BUILTINS:
        return BUILTIN
    return Named(parts, args)
