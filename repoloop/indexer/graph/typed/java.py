"""Java types as written: annotations dropped, arrays hold an element, `java.lang` and any
`java.*`/`javax.*` type are builtins."""

from __future__ import annotations

import re
from functools import lru_cache

from repoloop.indexer.graph.typed.syntax import BUILTIN, Holder, Named, TypeExpr, path_parts, split_args

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


@lru_cache(maxsize=65536)
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
