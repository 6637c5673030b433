"""Per-language type syntax: builtins, containers, wrappers (see `typed.syntax`).

Each `parse_*` turns a declared type's text (as `handlers.typefacts` stored it) into a `TypeExpr`.
Builtin names are the ones a program uses without importing them; everything imported from
outside the repository is recognised by the import resolution instead.
"""

from __future__ import annotations

import re

from repoloop.indexer.typed.syntax import BUILTIN, Holder, Named, TypeExpr, path_parts, split_args

GO_BUILTINS = frozenset({
    "bool", "byte", "complex64", "complex128", "error", "float32", "float64", "int", "int8", "int16",
    "int32", "int64", "rune", "string", "uint", "uint8", "uint16", "uint32", "uint64", "uintptr", "any",
    "comparable",
})


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


RUST_PRIMITIVES = frozenset({
    "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128",
    "isize", "f32", "f64", "String", "Vec", "HashMap", "HashSet", "BTreeMap", "BTreeSet", "VecDeque",
    "PathBuf", "Path", "OsString", "OsStr", "Duration", "Instant", "Ordering",
})
RUST_TRANSPARENT = frozenset({"Box", "Rc", "Arc", "Cow", "ManuallyDrop", "Pin"})
RUST_HOLDERS = frozenset({"Option", "Result", "Vec", "VecDeque", "Mutex", "RwLock", "RefCell", "Cell",
                          "Ref", "RefMut", "MutexGuard", "LockResult", "OnceCell", "OnceLock", "Lazy",
                          "LazyLock", "Weak"})


def parse_rust(text: str) -> TypeExpr:
    t = text.strip().lstrip("&*").strip()
    t = re.sub(r"^(mut|const|dyn|impl)\b", "", t).strip()
    if t.startswith("["):  # [T] / [T; N]
        return Holder(t[1:].split(";", 1)[0].rstrip("]"))
    if t.startswith(("(", "fn(", "fn ", "Fn(", "FnMut(", "FnOnce(", "!")):
        return BUILTIN
    base, args = split_args(t)
    base = base.removesuffix("::")
    parts = path_parts(base)
    if parts is None:
        return None
    last = parts[-1]
    if last in RUST_TRANSPARENT and args:
        return parse_rust(args[0])
    if last in RUST_HOLDERS and (len(parts) == 1 or parts[0] in ("std", "core", "alloc", "io", "fmt", "sync",
                                                                  "cell", "rc", "anyhow", "result", "option")):
        return Holder(args[0] if args else "")
    if len(parts) == 1 and last in RUST_PRIMITIVES:
        return BUILTIN
    return Named(parts, args)


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


JAVA_LANG = frozenset({
    "boolean", "byte", "char", "short", "int", "long", "float", "double", "void", "var",
    "String", "Object", "Class", "Integer", "Long", "Double", "Float", "Boolean", "Character", "Byte", "Short",
    "Number", "Math", "StrictMath", "System", "Thread", "Runtime", "StringBuilder", "StringBuffer",
    "CharSequence", "Iterable", "Comparable", "Enum", "Record", "Void", "Throwable", "Exception", "Error",
    "RuntimeException", "IllegalArgumentException", "IllegalStateException", "UnsupportedOperationException",
    "NullPointerException", "IndexOutOfBoundsException", "ArrayIndexOutOfBoundsException",
    "ClassCastException", "ArithmeticException", "NumberFormatException", "InterruptedException",
    "CloneNotSupportedException", "ReflectiveOperationException", "ClassNotFoundException",
    "SecurityException", "AssertionError", "ThreadLocal", "ClassLoader", "Process", "ProcessBuilder",
    "StackTraceElement", "AutoCloseable", "Runnable", "Cloneable", "Appendable", "Readable",
    "StringIndexOutOfBoundsException", "NegativeArraySizeException", "InheritableThreadLocal",
    "OutOfMemoryError", "StackOverflowError", "LinkageError", "ExceptionInInitializerError",
})


def parse_java(text: str) -> TypeExpr:
    t = re.sub(r"@[\w.]+(\([^)]*\))?\s*", "", text).strip()
    if t.endswith("[]") or t.endswith("..."):
        return Holder(t.rstrip(".").removesuffix("[]"))
    base, args = split_args(t)
    parts = path_parts(base)
    if parts is None:
        return None
    if len(parts) == 1 and parts[0] in JAVA_LANG:
        return BUILTIN
    if parts[0] == "java" or parts[0] == "javax":
        return BUILTIN
    return Named(parts, args)


PARSERS = {"go": parse_go, "rust": parse_rust, "js": parse_ts, "java": parse_java}
# Member calls that hand back what a holder holds (`opt.unwrap()`), or the holder itself.
UNWRAP = {"rust": frozenset({"unwrap", "expect", "unwrap_or_default", "unwrap_or", "unwrap_or_else",
                             "unwrap_unchecked", "get_or_insert_with", "get_or_init", "borrow", "borrow_mut",
                             "get_mut", "into_inner", "upgrade"}),
          "js": frozenset(), "go": frozenset(), "java": frozenset({"get", "orElse", "orElseThrow", "join"})}
PASS = {"rust": frozenset({"as_ref", "as_mut", "lock", "read", "write", "clone", "as_deref", "as_deref_mut",
                           "ok", "take", "cloned", "copied"}),
        "js": frozenset(), "go": frozenset(), "java": frozenset()}
