"""Plain records that cross the boundary between parsing (in worker processes) and the store.

They are dataclasses of builtins only, so they pickle cheaply between processes.
Lines are 1-based and inclusive everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Kinds of definitions, shared by every language.
SYMBOL_KINDS = (
    "function", "method", "class", "struct", "interface", "trait", "enum", "impl",
    "constant", "variable", "type", "module", "namespace", "macro", "field",
)
# Kinds of references.
REF_KINDS = ("call", "import", "inherit", "ref", "type")  # "type": see handlers.typefacts


@dataclass(slots=True)
class Symbol:
    name: str  # short name as written: "method"
    qualname: str  # "pkg.mod.Class.method" (Python); idiomatic path elsewhere
    kind: str  # one of SYMBOL_KINDS
    start_line: int
    end_line: int
    signature: str = ""  # the header line(s) up to the body, one line, e.g. "def f(a, b=1) -> int"
    doc: str = ""  # docstring or leading comment, stripped
    parent: str | None = None  # qualname of the enclosing definition, if any


@dataclass(slots=True)
class Reference:
    name: str  # the referenced identifier, last component: "join" for os.path.join(...)
    kind: str  # one of REF_KINDS
    line: int
    scope: str | None = None  # qualname of the innermost enclosing definition (None: module level)
    full: str = ""  # the dotted expression as written: "os.path.join", "self.save", "Base"
    module: str | None = None  # imports: the module as written ("..utils", "./foo", "fmt")
    alias: str | None = None  # imports: the local name bound ("np" for `import numpy as np`)


@dataclass(slots=True)
class Chunk:
    start_line: int
    end_line: int
    text: str  # the source lines start_line..end_line (for split chunks: the signature line + the slice)
    symbol: str | None = None  # qualname of the enclosing definition
    kind: str = "code"  # the symbol's kind, or "code" for merged top-level code
    header: str = ""  # "path :: qualname" line, prefixed to the text for embedding


@dataclass(slots=True)
class ParsedFile:
    path: str  # relative to the repo root, forward slashes
    language: str
    module: str  # the module qualname prefix ("pkg.mod" for Python pkg/mod.py)
    symbols: list[Symbol] = field(default_factory=list)
    refs: list[Reference] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)
    syntax_errors: int = 0  # number of ERROR/MISSING nodes; > 0 means a partial parse
    lines: int = 0
