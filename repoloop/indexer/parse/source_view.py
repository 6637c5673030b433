"""What tree-sitter parses: a file's bytes with the few C++ idioms its grammar cannot read blanked
out, byte for byte, so every node's offsets and lines are the file's own and names are read from
the file itself.

Why: a library's class heads carry an export macro (`class YAML_CPP_API Node {`, `class
LEVELDB_EXPORT Slice final : public Base {`, Qt's `Q_CORE_EXPORT`). tree-sitter-cpp knows no
macros, reads such a head as a function declaration and loses the class, its methods and often
the rest of the enclosing namespace. Blanking the macro (spaces, as the preprocessor would expand
an empty export macro) gives the class back.
"""

from __future__ import annotations

import re

# `class|struct MACRO Name` then `{`, `:`, `final` or the end of the line; the macro ALL CAPS.
_EXPORT_MACRO = re.compile(
    rb"^([ \t]*(?:template[ \t]*<[^>\n]*>[ \t]*)?(?:class|struct)[ \t]+)([A-Z][A-Z0-9_]*[A-Z0-9])"
    rb"(?=[ \t]+[A-Za-z_]\w*[ \t]*(?:final\b[ \t]*)?(?:[:{]|$))", re.M)


def source_view(source: bytes, language: str) -> bytes:
    """`source` as tree-sitter should see it (the same length, the same line breaks)."""
    if language != "cpp" or b"class" not in source and b"struct" not in source:
        return source
    return _EXPORT_MACRO.sub(lambda m: m.group(1) + b" " * len(m.group(2)), source)
