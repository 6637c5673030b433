"""Which language a file is in, the tree-sitter grammar for it, and its module (qualname prefix).

Qualified names are built as `module + SEP + nested names`, with the separator idiomatic to the
language (see `QUALNAME_SEP`):

- python: dotted import path, `pkg/sub/mod.py` -> `pkg.sub.mod`, `pkg/__init__.py` -> `pkg`; a
  leading `src/` or `lib/` directory is dropped. Symbols: `pkg.sub.mod.Class.method`.
- go: the package directory (`cmd/server/main.go` -> `cmd/server`; root files -> the package clause
  name). Symbols: `cmd/server.Server.Start` (methods hang off their receiver type).
- java: the `package` declaration (path-based when absent). Symbols: `com.acme.Outer.Inner.run`.
- javascript/typescript/tsx: the path without extension (`src/ui/Button` ; `index` files keep
  their name). Symbols: `src/ui/Button.Button.render`.
- rust: the crate path from `src/`: `src/a/b.rs` -> `crate::a::b`, `src/lib.rs` -> `crate`,
  `src/a/mod.rs` -> `crate::a`; other files path-based (`tests::it`). Symbols:
  `crate::a::Type::method` (methods of `impl Type` hang off the type).
- c, cpp, c_sharp, ruby, php: the module is the path without extension, but symbol qualnames
  are made only of the namespaces/modules/classes written in the code (`ns::Foo::bar`,
  `Acme.Web.Controller.Get`, `Billing::Invoice::total`, `App\\Models\\User::save`); a file-scoped
  C# namespace or a PHP `namespace X;` statement becomes the prefix.
"""

from __future__ import annotations

import os
import re
from functools import cache

from tree_sitter import Language

LANGUAGES = (
    "python", "javascript", "typescript", "tsx", "go", "rust", "java", "c", "cpp", "c_sharp", "ruby", "php",
)

EXTENSIONS: dict[str, str] = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp", ".hh": "cpp", ".hpp": "cpp", ".hxx": "cpp",
    ".h++": "cpp", ".ipp": "cpp", ".tpp": "cpp",
    ".cs": "c_sharp",
    ".rb": "ruby", ".rake": "ruby", ".gemspec": "ruby",
    ".php": "php", ".phtml": "php",
}
_FILENAMES = {"Rakefile": "ruby", "Gemfile": "ruby", "Vagrantfile": "ruby"}
# A `.h` file is C++ when its first HEADER_SNIFF_BYTES hold C++ only syntax: a namespace, a template,
# a class head (also `class EXPORT_MACRO Name final :`), a struct with a base, access specifiers,
# `using`, `extern "C++"`, a standard header without `.h`, or `std::`. 256 bytes (a licence
# comment) made most of yaml-cpp's and leveldb's headers C; parsed as C, their namespaces became
# functions and their classes vanished.
HEADER_SNIFF_BYTES = 8192
_CPP_HEADER = re.compile(
    rb"^[ \t]*(namespace\b|template\s*<|class\s+(\w+\s+)?\w+\s*(final\s*)?[:{]|struct\s+(\w+\s+)?\w+\s*(final\s*)?:[^:]"
    rb"|extern\s+\"C\+\+\"|(public|private|protected)\s*:|using\s+[\w:]+\s*[;=]|#\s*include\s*<[a-z_]+>)"
    rb"|\bstd::\w", re.M)
_SHEBANGS = {"python": "python", "node": "javascript", "ruby": "ruby", "php": "php"}

# Separator between the components of a qualified name, per language.
QUALNAME_SEP: dict[str, str] = {
    "python": ".", "javascript": ".", "typescript": ".", "tsx": ".", "go": ".", "java": ".",
    "c_sharp": ".", "rust": "::", "cpp": "::", "c": "::", "ruby": "::", "php": "\\",
}
# Languages whose qualnames start with the module; the others use namespaces from the code only.
MODULE_PREFIXED = frozenset({"python", "javascript", "typescript", "tsx", "go", "java", "rust"})


def detect_language(path: str, head: bytes | None = None) -> str | None:
    """The language of `path` by extension (or by a `#!` line in `head`), None when unsupported."""
    base = os.path.basename(path)
    ext = os.path.splitext(base)[1].lower()
    lang = EXTENSIONS.get(ext) or _FILENAMES.get(base)
    if lang == "c" and ext == ".h" and head and _CPP_HEADER.search(head):
        return "cpp"  # a C++ header with the C extension
    if lang is None and head and head.startswith(b"#!"):
        first = head.split(b"\n", 1)[0].decode("latin-1")
        for word, name in _SHEBANGS.items():
            if word in first:
                return name
    return lang


def module_name(path: str, language: str) -> str:
    """The module qualname prefix of a file (see the module docstring for each language)."""
    p = path.replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    stem, _ext = os.path.splitext(p)
    parts = [x for x in stem.split("/") if x]
    if language == "python":
        if len(parts) > 1 and parts[0] in ("src", "lib"):
            parts = parts[1:]
        if parts and parts[-1] == "__init__":
            parts = parts[:-1]
        return ".".join(parts)
    if language == "go":
        return "/".join(parts[:-1])
    if language == "rust":
        if "src" in parts[:-1]:
            parts = parts[parts.index("src") + 1:]
            if parts and parts[-1] in ("lib", "main", "mod"):
                parts = parts[:-1]
            return "::".join(["crate", *parts])
        if parts and parts[-1] == "mod":
            parts = parts[:-1]
        return "::".join(parts)
    if language == "java":
        return ".".join(parts[:-1])  # replaced by the package declaration when the file has one
    return "/".join(parts)


def _load(language: str) -> object:
    if language == "python":
        import tree_sitter_python as m
    elif language == "javascript":
        import tree_sitter_javascript as m
    elif language in ("typescript", "tsx"):
        import tree_sitter_typescript as ts

        return ts.language_typescript() if language == "typescript" else ts.language_tsx()
    elif language == "go":
        import tree_sitter_go as m
    elif language == "rust":
        import tree_sitter_rust as m
    elif language == "java":
        import tree_sitter_java as m
    elif language == "c":
        import tree_sitter_c as m
    elif language == "cpp":
        import tree_sitter_cpp as m
    elif language == "c_sharp":
        import tree_sitter_c_sharp as m
    elif language == "ruby":
        import tree_sitter_ruby as m
    elif language == "php":
        import tree_sitter_php as m

        return m.language_php()
    else:
        raise ValueError(f"unsupported language: {language}")
    return m.language()


@cache
def ts_language(language: str) -> Language:
    """The tree-sitter Language for a language name (memoized per process)."""
    return Language(_load(language))
