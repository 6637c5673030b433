"""Query analysis: what in a query (an issue, an agent step, a stack trace) points at code.

Recognises identifiers (snake_case, camelCase, dotted, called `f(`, `backticked`), file paths,
`file:line` mentions and stack-trace frames of Python, JavaScript, Go, Rust and Java traces.
Frames are returned innermost first, since that is where an error surfaced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from repoloop.indexer.tokens import STOP_WORDS

_EXT = (
    r"(?:py|pyi|js|jsx|mjs|cjs|ts|tsx|go|rs|java|kt|c|h|cc|cpp|cxx|hpp|hh|cs|rb|php|swift|scala|"
    r"sh|md|rst|txt|toml|yaml|yml|json|cfg|ini)"
)
_PATH = rf"(?:[A-Za-z]:)?[\w.\-/\\@+]*?[\w\-+@]+\.{_EXT}"

# Python: File "/x/pkg/mod.py", line 12, in func
_PY_FRAME = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>[\w<>.]+))?')
# JavaScript: at func (/x/a.js:10:5)   |   at /x/a.js:10:5
_JS_FRAME = re.compile(
    rf"^\s*at (?:(?:async )?(?P<func>[\w$.<>\[\] ]+?) \()?(?:file://)?(?P<path>{_PATH}):(?P<line>\d+)(?::\d+)?\)?\s*$",
    re.M,
)
# Java: at com.foo.Bar.method(Bar.java:42)
_JAVA_FRAME = re.compile(r"^\s*at (?P<func>[\w$.<>]+)\((?P<path>[\w$]+\.(?:java|kt|scala)):(?P<line>\d+)\)", re.M)
# Go: a function line, then a tab-indented "/x/main.go:12 +0x1d"
_GO_FRAME = re.compile(r"^(?P<func>[\w./*()\-]+)\(.*\)\s*\n\s+(?P<path>\S+\.go):(?P<line>\d+)", re.M)
# Rust (RUST_BACKTRACE): "  3: crate::mod::func" then "      at ./src/lib.rs:10:5"
_RUST_FRAME = re.compile(
    r"^\s*\d+: (?P<func>[\w:<>{}\s]+?)(?:::h[0-9a-f]{16})?\s*\n\s+at (?P<path>\S+\.rs):(?P<line>\d+)(?::\d+)?",
    re.M,
)
# Rust panic: "panicked at src/main.rs:4:5"
_RUST_PANIC = re.compile(r"panicked at (?:'[^']*', )?(?P<path>\S+\.rs):(?P<line>\d+)(?::\d+)?")
# Any path:line(:col)
_FILE_LINE = re.compile(rf"(?P<path>{_PATH}):(?P<line>\d+)(?::\d+)?")
# path, line N (e.g. pylint, mypy prose)
_BARE_PATH = re.compile(rf"(?<![\w/.])(?P<path>{_PATH})(?![\w/])")
_IDENT = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)*")
_BACKTICK = re.compile(r"`([^`\n]{1,120})`")


@dataclass(slots=True, frozen=True)
class Frame:
    path: str  # as written in the trace (absolute or relative)
    line: int | None
    func: str | None  # last component of the function, where known
    lang: str


@dataclass(slots=True)
class QueryAnalysis:
    text: str
    identifiers: list[str] = field(default_factory=list)  # code-looking: snake_case, camelCase, dotted, f(
    words: list[str] = field(default_factory=list)  # other words (weak name evidence)
    paths: list[str] = field(default_factory=list)  # file paths mentioned (without :line)
    locations: list[tuple[str, int]] = field(default_factory=list)  # (path, line) from file:line
    frames: list[Frame] = field(default_factory=list)  # stack-trace frames, innermost first

    @property
    def has_code_evidence(self) -> bool:
        return bool(self.identifiers or self.paths or self.locations or self.frames)


def _last(func: str | None) -> str | None:
    if not func:
        return None
    func = re.sub(r"\(.*\)$", "", func.strip())
    parts = [p for p in re.split(r"\.|::|/", func) if p and p not in ("<module>", "<anonymous>", "new")]
    parts = [p for p in parts if re.fullmatch(r"[\w$]+", p) and not p.isdigit()]
    return parts[-1] if parts else None


def _frames(text: str) -> list[Frame]:
    """All frames in the text, innermost first per trace."""
    out: list[Frame] = []
    py = [Frame(m["path"], int(m["line"]), _last(m["func"]), "python") for m in _PY_FRAME.finditer(text)]
    out.extend(reversed(py))  # Python prints the innermost call last
    for rx, lang in ((_RUST_FRAME, "rust"), (_GO_FRAME, "go"), (_JAVA_FRAME, "java"), (_JS_FRAME, "js")):
        for m in rx.finditer(text):
            out.append(Frame(m["path"], int(m["line"]), _last(m["func"]), lang))
    for m in _RUST_PANIC.finditer(text):
        out.insert(0, Frame(m["path"], int(m["line"]), None, "rust"))
    seen: set[tuple[str, int | None]] = set()
    uniq = []
    for f in out:
        if (f.path, f.line) not in seen:
            seen.add((f.path, f.line))
            uniq.append(f)
    return uniq


def _is_code_ident(ident: str, text: str, end: int) -> bool:
    if "." in ident or "::" in ident:
        return not re.fullmatch(r"[\w]+\.(?:" + _EXT[3:-1] + ")", ident)  # not a bare file name
    if "_" in ident.strip("_") or ident.startswith("__"):
        return True
    if re.search(r"[a-z][A-Z]|[A-Z][a-z]+[A-Z]", ident):  # camelCase / PascalCase with 2+ humps
        return True
    return end < len(text) and text[end] == "("


def analyze(text: str) -> QueryAnalysis:
    """Split a free-text query into the kinds of code evidence it carries."""
    qa = QueryAnalysis(text=text)
    qa.frames = _frames(text)
    framed = {(f.path, f.line) for f in qa.frames}
    for m in _FILE_LINE.finditer(text):
        loc = (m["path"], int(m["line"]))
        if loc not in framed and loc not in qa.locations:
            qa.locations.append(loc)
    for m in _BARE_PATH.finditer(text):
        p = m["path"].removeprefix("./")
        if p not in qa.paths and not p.startswith("."):
            qa.paths.append(p)
    # Identifiers: backticked spans first, then code-looking tokens anywhere.
    idents: list[str] = []
    for m in _BACKTICK.finditer(text):
        for im in _IDENT.finditer(m.group(1)):
            idents.append(im.group(0))
    words: list[str] = []
    for m in _IDENT.finditer(text):
        ident = m.group(0)
        if _BARE_PATH.fullmatch(ident):
            continue
        if _is_code_ident(ident, text, m.end()):
            idents.append(ident)
        elif len(ident) >= 4 and ident.lower() not in STOP_WORDS:
            words.append(ident)
    for f in qa.frames:
        if f.func:
            idents.append(f.func)
    qa.identifiers = list(dict.fromkeys(i.strip(".:$") for i in idents if len(i.strip(".:$")) >= 2))
    ident_set = set(qa.identifiers)
    qa.words = [w for w in dict.fromkeys(words) if w not in ident_set]
    return qa
