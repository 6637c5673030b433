"""Rust types as written: `Box`/`Rc`/`Arc` are transparent, `Option`/`Result`/`Vec`/locks hold an
element (`?`, `.unwrap()`, `[i]`), primitives and the prelude's collections are builtins."""

from __future__ import annotations

import re
from functools import lru_cache

from repoloop.indexer.graph.typed.syntax import BUILTIN, Holder, Named, TypeExpr, path_parts, split_args

RUST_PRIMITIVES = frozenset({
    "bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128",
    "isize", "f32", "f64", "String", "Vec", "HashMap", "HashSet", "BTreeMap", "BTreeSet", "VecDeque",
    "PathBuf", "Path", "OsString", "OsStr", "Duration", "Instant", "Ordering",
})
RUST_TRANSPARENT = frozenset({"Box", "Rc", "Arc", "Cow", "ManuallyDrop", "Pin"})
RUST_HOLDERS = frozenset({"Option", "Result", "Vec", "VecDeque", "Mutex", "RwLock", "RefCell", "Cell",
                          "Ref", "RefMut", "MutexGuard", "LockResult", "OnceCell", "OnceLock", "Lazy",
                          "LazyLock", "Weak"})


@lru_cache(maxsize=65536)
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
