"""Query analysis: stack-trace frames of five languages (innermost first), file:line, identifiers."""

from __future__ import annotations

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
