"""Query analysis: what in a query (an issue, an agent step, a stack trace) points at code.

Recognises identifiers (snake_case, camelCase, dotted, called `f(`, `backticked`), file paths,
`file:line` mentions and stack-trace frames of Python, JavaScript, Go, Rust and Java traces.
Frames are returned innermost first, since that is where an error surfaced.

A query is untrusted input, so the analysis is linear in its length (issue 14: the old file:line
pattern was cubic, 1,000 characters took seconds and 1 MB never ended). Every pattern here either
starts with a literal, is anchored at one place, or never gives back what it consumed (possessive
quantifiers); paths are found by visiting each maximal run of path characters once, and the
multi-line frames (JS, Java, Go, Rust) are parsed one line at a time. The text is also bounded
first (`limits.bounded_prefix`).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from repoloop.indexer.lexical_tokens import STOP_WORDS
from repoloop.retrieval.limits import MAX_IDENT_CHARS, bounded_prefix

_EXTS = frozenset(
    "py pyi js jsx mjs cjs ts tsx go rs java kt c h cc cpp cxx hpp hh cs rb php swift scala "
    "sh md rst txt toml yaml yml json cfg ini".split()
)
_EXT = "(?:" + "|".join(sorted(_EXTS)) + ")"
_PATH_CH = r"\w.\-/\\@+"  # characters of a path (':' only after a drive letter)
# A maximal run of path characters holding a dot: it can only start where a run starts (the
# look-behind fails at once elsewhere) and never gives back what it consumed.
_DOTTED_RUN = re.compile(rf"(?<![{_PATH_CH}])[\w\-/\\@+]*+\.[{_PATH_CH}]*+")
_PATH_RUN = re.compile(rf"[{_PATH_CH}]++")
_DOT_WORD = re.compile(r"\.(\w*+)")  # a dot and the word after it: a candidate extension
_STEM_END = re.compile(r"[\w\-+@]")  # what precedes an extension's dot
_NOT_BEFORE_PATH = re.compile(r"[\w/.]")  # a bare path does not start right after these
_RESTART = re.compile(r"[\-\\@+]")  # inside a run, a bare path may start right after these
_LINE_TAIL = re.compile(r":(\d++)(?::\d++)?")  # :line(:col) after a path

# Python: File "/x/pkg/mod.py", line 12, in func  (a literal first; [^"]+ stops at the next quote)
_PY_FRAME = re.compile(r'File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>[\w<>.]+))?')
# Rust panic: "panicked at src/main.rs:4:5"  (a literal first)
_RUST_PANIC = re.compile(r"panicked at (?:'[^']*', )?(?P<path>\S+\.rs):(?P<line>\d+)(?::\d+)?")
# The line-anchored pieces of the other frames (each matched at one place of one line):
# Java: at com.foo.Bar.method(Bar.java:42)
_JAVA_AT = re.compile(r"at (?P<func>[\w$.<>]++)\((?P<path>[\w$]++\.(?:java|kt|scala)):(?P<line>\d++)\)")
# JavaScript: at func (/x/a.js:10:5)   |   at /x/a.js:10:5
_JS_FUNC = re.compile(r"[\w$.<>\[\] ]++")
_JS_TAIL = re.compile(r":(?P<line>\d++)(?::\d++)?\)?")
# Go: a function line, then a tab-indented "/x/main.go:12 +0x1d"
_GO_FUNC = re.compile(r"[\w./*()\-]++")
_GO_AT = re.compile(r"\.go:(?=\d)")
# Rust (RUST_BACKTRACE): "  3: crate::mod::func" then "      at ./src/lib.rs:10:5"
_RUST_NUM = re.compile(r"\d++: ")
_RUST_FUNC = re.compile(r"[\w:<>{}\s]++")
_RUST_HASH = re.compile(r"::h[0-9a-f]{16}")
_RS_AT = re.compile(r"\.rs:(?=\d)")
_LINE = re.compile(r"^[^\S\n]*+\S[^\n]*+", re.M)  # a line that is not blank (no frame starts on one)
_WS = re.compile(r"\s++")
_DIGITS = re.compile(r"\d++")
_TOKEN = re.compile(r"\S++")

_IDENT = re.compile(r"[A-Za-z_$][\w$]*+(?:(?:\.|::)[A-Za-z_$][\w$]*+)*+")
_BACKTICK = re.compile(r"`([^`\n]{1,120})`")
# A Conventional Commits subject, `fix(compiler-sfc): ...` or `feat(api)!: ...`: its type is a label,
# not a call of `fix`; the scope in parentheses stays (its words name a package or a folder).
_CONVENTIONAL = re.compile(r"\A[ \t]*([a-z]+)\([^()\n]{0,60}\)!?:[ \t]")
_FILE_NAME = re.compile(rf"\w++\.{_EXT}")
_HUMPS = re.compile(r"[a-z][A-Z]|[A-Z][a-z]++[A-Z]")  # camelCase / PascalCase with 2+ humps


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


# -- paths ----------------------------------------------------------------------------------------
def _drive(text: str, rs: int, floor: int) -> bool:
    """A drive letter and colon (`C:`) right before the path run starting at `rs`, not before `floor`."""
    return rs - 2 >= floor and text[rs - 1] == ":" and text[rs - 2].isascii() and text[rs - 2].isalpha()


def _file_lines(text: str) -> Iterator[tuple[str, int]]:
    """`path:line(:col)` mentions in order; the path ends in a known extension right before ':'."""
    pos = 0  # the end of the last mention (mentions do not overlap)
    for m in _DOTTED_RUN.finditer(text):
        rs, end = m.span()
        if end <= pos:
            continue
        tail = _LINE_TAIL.match(text, end)
        if tail is None:
            continue
        start = max(rs, pos)
        dot = text.rfind(".", start, end)
        if dot - 1 < start or text[dot + 1 : end] not in _EXTS or not _STEM_END.match(text, dot - 1):
            continue
        if start == rs and _drive(text, rs, pos):
            start = rs - 2
        yield text[start:end], int(tail[1])
        pos = tail.end()


def _bare_paths(text: str) -> Iterator[str]:
    """Paths ending in a known extension and not followed by a word character or '/', in order.
    One starts where a run of path characters starts (after a drive letter, if any) or right after
    '-', '\\', '@' or '+' inside a run; it ends at the first extension that allows it."""
    n = len(text)
    for m in _DOTTED_RUN.finditer(text):
        rs, end = m.span()
        dots: list[int] = []  # extension dots that may end a path, in order
        ends: list[int] = []  # ... and where each such path ends
        for w in _DOT_WORD.finditer(text, rs, end):
            e = w.end()
            if w[1] in _EXTS and (e == n or text[e] != "/") and w.start() > rs and _STEM_END.match(text, w.start() - 1):
                dots.append(w.start())
                ends.append(e)
        if not dots:
            continue
        s: int | None = rs
        body = rs  # where the stem may begin (after the drive)
        if _drive(text, rs, 0) and (rs == 2 or not _NOT_BEFORE_PATH.match(text, rs - 3)):
            s = rs - 2
        while s is not None:
            i = bisect.bisect_right(dots, body)  # the first extension dot after the stem's first character
            if i == len(dots):
                break
            yield text[s : ends[i]]
            r = _RESTART.search(text, ends[i], end - 1)
            s = body = r.end() if r else None


def _is_path(ident: str) -> bool:
    """Whether an identifier-shaped token is a file name (`config.py`, `pkg.mod.ts`)."""
    if "$" in ident or ":" in ident:
        return False
    dot = ident.rfind(".")
    return dot > 0 and ident[dot + 1 :] in _EXTS


# -- frames ---------------------------------------------------------------------------------------
def _last(func: str | None) -> str | None:
    if not func:
        return None
    func = func.strip()
    if func.endswith(")"):  # drop a call's arguments: the first "(" of the last line on
        i = func.find("(", func.rfind("\n") + 1, len(func) - 1)
        if i >= 0:
            func = func[:i]
    parts = [p for p in re.split(r"\.|::|/", func) if p and p not in ("<module>", "<anonymous>", "new")]
    parts = [p for p in parts if re.fullmatch(r"[\w$]+", p) and not p.isdigit()]
    return parts[-1] if parts else None


def _js_location(body: str) -> tuple[str, int] | None:
    """`(file://)path:line(:col)())` making up all of `body`."""
    body = body.removeprefix("file://")
    colon = body.find(":")
    run = 0
    if colon == 1 and body[0].isascii() and body[0].isalpha():  # a drive letter
        run, colon = 2, body.find(":", 2)
    if colon < 0:
        return None
    dot = body.rfind(".", run, colon)
    tail = _JS_TAIL.fullmatch(body, colon)
    if (tail is None or dot - 1 < run or body[dot + 1 : colon] not in _EXTS or not _STEM_END.match(body, dot - 1)
            or _PATH_RUN.fullmatch(body, run, colon) is None):
        return None
    return body[:colon], int(tail["line"])


def _js_frame(line: str) -> Frame | None:
    """`at func (path:line:col)` or `at path:line:col`, all of a stripped line."""
    if not line.startswith("at "):
        return None
    body, func = line[3:], None
    paren = body.find("(")
    if paren >= 0:
        if paren < 2 or body[paren - 1] != " ":
            return None
        func = body[: paren - 1]
        if func.startswith("async ") and len(func) > 6:
            func = func[6:]
        if _JS_FUNC.fullmatch(func) is None:
            return None
        body = body[paren + 1 :]
    got = _js_location(body)
    return Frame(got[0], got[1], _last(func), "js") if got else None


def _next_line_at(text: str, after: int, at: str, tail: re.Pattern[str]) -> tuple[str, int, int] | None:
    """A location on a following line: whitespace from `after` that holds a line break with more
    whitespace after it, then `at`, then a token whose last `tail` (".go:", ".rs:") is followed by
    a line number. (path, line, end of the line number)."""
    ws = _WS.match(text, after)
    if ws is None or text.find("\n", after, ws.end() - 1) < 0 or not text.startswith(at, ws.end()):
        return None
    tok = _TOKEN.match(text, ws.end() + len(at))
    if tok is None:
        return None
    last = None
    for last in tail.finditer(text, tok.start() + 1, tok.end()):  # noqa: B007 - the last one is wanted
        pass
    if last is None:
        return None
    digits = _DIGITS.match(text, last.end())
    assert digits is not None  # the look-ahead saw a digit
    return text[tok.start() : last.start() + len(last[0]) - 1], int(digits[0]), digits.end()


def _line_frames(text: str) -> tuple[list[Frame], list[Frame], list[Frame], list[Frame]]:
    """Rust, Go, Java and JS frames, each in text order; one pass over the lines."""
    rust: list[Frame] = []
    go: list[Frame] = []
    java: list[Frame] = []
    js: list[Frame] = []
    rust_pos = go_pos = 0  # a frame spans two lines: the next one starts after it
    for lm in _LINE.finditer(text):
        ls, le = lm.span()
        line = lm[0]
        stripped = line.lstrip()
        if stripped.startswith("at "):
            jm = _JAVA_AT.match(stripped)
            if jm:
                java.append(Frame(jm["path"], int(jm["line"]), _last(jm["func"]), "java"))
            jf = _js_frame(stripped.rstrip())
            if jf:
                js.append(jf)
        if le == len(text):
            break  # the two-line frames need a next line
        if ls >= rust_pos and (num := _RUST_NUM.match(stripped)):
            rest = stripped[num.end() :]
            func = rest.rstrip()
            if func and _RUST_FUNC.fullmatch(rest):
                after = le - (len(rest) - len(func))
                if len(func) > 19 and _RUST_HASH.fullmatch(func, len(func) - 19):
                    func = func[:-19]
                at = _next_line_at(text, after, "at ", _RS_AT)
                if at:
                    rust.append(Frame(at[0], at[1], _last(func), "rust"))
                    rust_pos = at[2]
        if ls >= go_pos and (fm := _GO_FUNC.match(line)):
            close = len(line.rstrip()) - 1
            paren = line.rfind("(", 1, min(fm.end(), close)) if close > 0 and line[close] == ")" else -1
            if paren >= 1:
                at = _next_line_at(text, ls + close + 1, "", _GO_AT)
                if at:
                    go.append(Frame(at[0], at[1], _last(line[:paren]), "go"))
                    go_pos = at[2]
    return rust, go, java, js


def _frames(text: str) -> list[Frame]:
    """All frames in the text, innermost first per trace."""
    out: list[Frame] = []
    py = [Frame(m["path"], int(m["line"]), _last(m["func"]), "python") for m in _PY_FRAME.finditer(text)]
    out.extend(reversed(py))  # Python prints the innermost call last
    for frames in _line_frames(text):
        out.extend(frames)
    for m in _RUST_PANIC.finditer(text):
        out.insert(0, Frame(m["path"], int(m["line"]), None, "rust"))
    seen: set[tuple[str, int | None]] = set()
    uniq = []
    for f in out:
        if (f.path, f.line) not in seen:
            seen.add((f.path, f.line))
            uniq.append(f)
    return uniq


# -- identifiers ----------------------------------------------------------------------------------
def _is_code_ident(ident: str, text: str, end: int) -> bool:
    if "." in ident or "::" in ident:
        return not _FILE_NAME.fullmatch(ident)  # not a bare file name
    if "_" in ident.strip("_") or ident.startswith("__"):
        return True
    if _HUMPS.search(ident):
        return True
    return end < len(text) and text[end] == "("


def analyze(text: str) -> QueryAnalysis:
    """Split a free-text query into the kinds of code evidence it carries (of its first
    MAX_QUERY_CHARS characters)."""
    text = bounded_prefix(text)
    qa = QueryAnalysis(text=text)
    qa.frames = _frames(text)
    framed = {(f.path, f.line) for f in qa.frames}
    seen_locs: set[tuple[str, int]] = set()
    for loc in _file_lines(text):
        if loc not in framed and loc not in seen_locs:
            seen_locs.add(loc)
            qa.locations.append(loc)
    paths: dict[str, None] = {}
    for p in _bare_paths(text):
        p = p.removeprefix("./")
        if not p.startswith("."):
            paths.setdefault(p)
    qa.paths = list(paths)
    # Identifiers: backticked spans first, then code-looking tokens anywhere.
    idents: list[str] = []
    for m in _BACKTICK.finditer(text):
        for im in _IDENT.finditer(m.group(1)):
            idents.append(im.group(0))
    words: list[str] = []
    labels = {m.start(1) for m in _CONVENTIONAL.finditer(text)}
    for m in _IDENT.finditer(text):
        ident = m.group(0)
        if m.start() in labels:
            continue
        if len(ident) > MAX_IDENT_CHARS or _is_path(ident):
            continue
        if _is_code_ident(ident, text, m.end()):
            idents.append(ident)
        elif len(ident) >= 4 and ident.lower() not in STOP_WORDS:
            words.append(ident)
    for f in qa.frames:
        if f.func:
            idents.append(f.func)
    qa.identifiers = list(dict.fromkeys(
        s for i in idents if 2 <= len(s := i.strip(".:$")) <= MAX_IDENT_CHARS))
    ident_set = set(qa.identifiers)
    qa.words = [w for w in dict.fromkeys(words) if w not in ident_set]
    return qa
