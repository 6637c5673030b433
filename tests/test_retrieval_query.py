"""Query analysis: stack-trace frames of five languages (innermost first), file:line, identifiers."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from repoloop.retrieval import query as q
from repoloop.retrieval.names import PathIndex
from repoloop.retrieval.query import analyze

PY = '''Traceback (most recent call last):
  File "/home/u/proj/app/main.py", line 10, in <module>
    run()
  File "/home/u/proj/app/core/engine.py", line 42, in compute_total
    return helper(x)
ValueError: bad'''
JS = '''TypeError: Cannot read properties of undefined
    at parseConfig (/srv/app/src/config.js:12:5)
    at async Object.load (/srv/app/src/loader.ts:30:11)
    at /srv/app/index.js:3:1'''
JAVA = '''Exception in thread "main" java.lang.NullPointerException
\tat com.example.Foo.bar(Foo.java:42)
\tat com.example.Main.main(Main.java:7)'''
GO = '''panic: runtime error: integer divide by zero

goroutine 1 [running]:
main.divide(...)
\t/home/u/proj/main.go:12 +0x1d
github.com/x/y/pkg.(*Server).Handle(0xc000010000, 0x1)
\t/home/u/proj/pkg/server.go:88 +0x45'''
RUST = '''thread 'main' panicked at src/main.rs:4:5:
attempt to divide by zero
stack backtrace:
   0: rust_begin_unwind
             at /rustc/abc/library/std/src/panicking.rs:645:5
   1: myapp::compute::divide
             at ./src/compute.rs:10:5'''


def _frames(text: str) -> list[tuple[str, int | None, str | None]]:
    return [(f.path, f.line, f.func) for f in analyze(text).frames]


def test_python_frames_innermost_first() -> None:
    assert _frames(PY) == [("/home/u/proj/app/core/engine.py", 42, "compute_total"),
                           ("/home/u/proj/app/main.py", 10, None)]
    assert "compute_total" in analyze(PY).identifiers


def test_js_frames() -> None:
    assert _frames(JS) == [("/srv/app/src/config.js", 12, "parseConfig"), ("/srv/app/src/loader.ts", 30, "load"),
                           ("/srv/app/index.js", 3, None)]


def test_java_frames() -> None:
    assert _frames(JAVA) == [("Foo.java", 42, "bar"), ("Main.java", 7, "main")]
    assert "com.example.Foo.bar" in analyze(JAVA).identifiers


def test_go_frames() -> None:
    assert _frames(GO) == [("/home/u/proj/main.go", 12, "divide"), ("/home/u/proj/pkg/server.go", 88, "Handle")]


def test_rust_frames() -> None:
    f = _frames(RUST)
    assert f[0] == ("src/main.rs", 4, None)  # the panic location first
    assert ("./src/compute.rs", 10, "divide") in f


def test_file_line_paths_and_identifiers() -> None:
    qa = analyze("The `IndexStore.replace_file` call in repoloop/indexer/store.py:120 breaks parseHTTPRequest( and "
                 "see also tokens.py, snake_case_name and plain words")
    assert qa.locations == [("repoloop/indexer/store.py", 120)]
    assert "tokens.py" in qa.paths and "repoloop/indexer/store.py" in qa.paths
    assert {"IndexStore.replace_file", "parseHTTPRequest", "snake_case_name"} <= set(qa.identifiers)
    assert "plain" in qa.words and "words" in qa.words and "and" not in qa.words
    assert not analyze("nothing code-like here at all").has_code_evidence


def test_trace_paths_resolve_by_longest_suffix() -> None:
    idx = PathIndex()
    for p in ("app/core/engine.py", "tools/engine.py", "app/main.py"):
        base = p.rsplit("/", 1)[-1]
        idx.by_base.setdefault(base, []).append(p)
    assert idx.resolve("/home/u/proj/app/core/engine.py") == ["app/core/engine.py"]
    assert idx.resolve("C:\\work\\proj\\tools\\engine.py") == ["tools/engine.py"]
    assert sorted(idx.resolve("engine.py")) == ["app/core/engine.py", "tools/engine.py"]
    assert idx.resolve("/usr/lib/python3/json/decoder.py") == []


# -- issue 14: linear scanners, same answers as the patterns they replaced -----------------------
# The pre-issue-14 patterns (super-linear: nested and overlapping quantifiers), kept as the reference
# on inputs short enough for them.
_OLD_EXT = (r"(?:py|pyi|js|jsx|mjs|cjs|ts|tsx|go|rs|java|kt|c|h|cc|cpp|cxx|hpp|hh|cs|rb|php|swift|scala|"
            r"sh|md|rst|txt|toml|yaml|yml|json|cfg|ini)")
_OLD_PATH = rf"(?:[A-Za-z]:)?[\w.\-/\\@+]*?[\w\-+@]+\.{_OLD_EXT}"
_OLD = {
    "file_line": re.compile(rf"(?P<path>{_OLD_PATH}):(?P<line>\d+)(?::\d+)?"),
    "bare_path": re.compile(rf"(?<![\w/.])(?P<path>{_OLD_PATH})(?![\w/])"),
    "js": re.compile(rf"^\s*at (?:(?:async )?(?P<func>[\w$.<>\[\] ]+?) \()?(?:file://)?(?P<path>{_OLD_PATH})"
                     r":(?P<line>\d+)(?::\d+)?\)?\s*$", re.M),
    "java": re.compile(r"^\s*at (?P<func>[\w$.<>]+)\((?P<path>[\w$]+\.(?:java|kt|scala)):(?P<line>\d+)\)", re.M),
    "go": re.compile(r"^(?P<func>[\w./*()\-]+)\(.*\)\s*\n\s+(?P<path>\S+\.go):(?P<line>\d+)", re.M),
}
_PIECES = ["a", "b", ".", "py", ".js", ".go", "/", ":", "1", "-", " ", "\n", "\t", "(", ")", "@", "\\", "C:",
           "at ", "async ", "file://", "$", "x.py", ":12", "f()", ".java", "_"]


def _old_frames(kind: str, text: str) -> list[tuple[str, int, str | None]]:
    return [(m["path"], int(m["line"]), q._last(m["func"])) for m in _OLD[kind].finditer(text)]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14).map("".join))
def test_scanners_find_what_the_old_patterns_found(text: str) -> None:
    assert list(q._file_lines(text)) == [(m["path"], int(m["line"])) for m in _OLD["file_line"].finditer(text)]
    assert list(q._bare_paths(text)) == [m["path"] for m in _OLD["bare_path"].finditer(text)]
    _rust, go, java, js = q._line_frames(text)
    assert [(f.path, f.line, f.func) for f in js] == _old_frames("js", text)
    assert [(f.path, f.line, f.func) for f in java] == _old_frames("java", text)
    assert [(f.path, f.line, f.func) for f in go] == _old_frames("go", text)


def test_a_rust_frame_is_the_line_before_its_location() -> None:
    """The old lazy multi-line function gave a frame without a location the next frame's `at` line
    (`1: a::b` below got x.rs:3); the function is now the frame line's own."""
    text = "   1: a::b::h0123456789abcdef\n   0: foo\n\tat x.rs:3:1\n"
    assert _frames(text) == [("x.rs", 3, "foo")]


def test_go_and_rust_frames_over_many_lines_are_found_in_one_pass() -> None:
    go = "main.f(...)\n\t/x/main.go:1 +0x1\n" * 2000
    rust = "  0: m::g\n      at ./src/lib.rs:2:5\n" * 2000
    assert len(q._line_frames(go)[1]) == 2000 and len(q._line_frames(rust)[0]) == 2000


def test_a_conventional_commit_type_is_a_label_not_a_call() -> None:
    """`fix(compiler-sfc): ...` names no function `fix` (it pulled every file defining a `fix` to
    the top); its scope's words stay, and a real call later in the text is still one."""
    a = analyze("fix(compiler-sfc): handle v-model on a custom element")
    assert "fix" not in a.identifiers and "compiler" in a.words
    assert "feat" not in analyze("feat(api)!: add parse_date").identifiers
    assert "parse_date" in analyze("feat(api)!: add parse_date").identifiers
    assert "fix" in analyze("calling fix(x) twice breaks").identifiers
