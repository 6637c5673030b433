"""The hand-written Python definitions scanner (`repoloop/indexer/tags/pydefs.py`) against tree-sitter:
for every file it accepts, exactly `tags._python_rows`' rows; otherwise None, and `repoloop tags`
falls back to tree-sitter. Real tree-sitter, the real stdlib."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from repoloop.indexer.parse.languages import module_name
from repoloop.indexer.tags import extract as tags_mod
from repoloop.indexer.tags import pydefs
from repoloop.indexer.tags.extract import extract_file


def ts_rows(src: bytes, path: str = "pkg/m.py") -> list[tuple]:
    comp = tags_mod._compiled("python", False)
    root = comp.parser.parse(src).root_node
    return tags_mod._python_rows(comp.handler, root, module_name(path, "python"), src)


def scan(src: str | bytes, path: str = "pkg/m.py") -> list[tuple] | None:
    data = src.encode() if isinstance(src, str) else src
    return pydefs.scan(data, module_name(path, "python"))


def test_stdlib_parity_and_fallback_share() -> None:
    """Every .py file of this Python's stdlib: the scanner's rows equal tree-sitter's, or it falls
    back; and it falls back rarely, so the fast path is what `repoloop tags` really runs."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts and p.is_file())
    assert len(files) > 1000
    mismatched, fallbacks, defs = [], 0, 0
    for f in files:
        rel = f.relative_to(stdlib).as_posix()
        data = f.read_bytes().decode("utf-8", "replace").encode()
        got = scan(data, rel)
        if got is None:
            fallbacks += 1
            continue
        if got != ts_rows(data, rel):
            mismatched.append(rel)
        defs += len(got)
    assert mismatched == []
    assert fallbacks < 0.03 * len(files), fallbacks
    assert defs > 50_000


# (source, the scanner must accept it) — every case must also equal tree-sitter when accepted.
CASES = {
    "decorators": ("@a.b(1,\n   2)\n@c\ndef f(x):\n    return x\n\n@dataclass\nclass C:\n    x: int = 1\n", True),
    "nested_in_if_try": (
        "import os\nif os.name == 'nt':\n    class A:\n        def f(self):\n            pass\nelse:\n"
        "    try:\n        class B:\n            class Inner:\n                def g(self): pass\n"
        "    except ImportError:\n        def h():\n            pass\n    finally:\n        pass\n", True),
    "one_line_defs": ("def f(): pass\nclass A: x = 1\nclass B:\n    def m(self): return 1\n    async def n(self): ...\n", True),
    "trailing_comments": (
        "class A:\n    def f(self):\n        pass\n        # in f\n    # in A\n  # closes A\n# module\n\n"
        "def g():\n    x = 1\n# dedented, but the body goes on\n    return x\n    # in g\n\n\n# module\n", True),
    "def_in_strings": (
        'X = """\ndef fake():\n    pass\nclass Fake:\n"""\ndef real():\n    s = \'def x(): pass\'\n'
        "    t = '''\nclass Nope:\n    '''\n    return s\n", True),
    "fstrings": (
        'def f(a, w):\n    return f"{a!r:>{w}} {{x}}" + rf\'{a}\\d\' + F"""{a}\n"""\ndef g(): pass\n', True),
    "continuations": ("X = 1 + \\\n    2\ndef f(a,\n      b) -> \\\n        int:\n    return (a +\n            b)\n", True),
    "multiline_signature": ("class A(\n    Base,\n    metaclass=M,\n):\n    def f(\n        self,\n        x=(1, [2, {3: 4}]),\n    ) -> dict[str, int]:\n        pass\n", True),
    "async_def": ("async def main():\n    async with x:\n        pass\n    async for y in z:\n        pass\n", True),
    "type_alias": ("type Vec = list[float]\ntype Pair[T] = tuple[T, T]\nclass C:\n    type X = int\n", True),
    "module_assignments": (
        "NAME = 1\na.b = 2\nx: int = 1\nY: int\nZ: dict[str, int] = {}\nlower = 3\n_PRIVATE = 4\n__all__ = []\n"
        "f = lambda x: x\ng = lambda a, b=(1, 2): a\nh = lambda: 0, 1\nK = L = 5\nM += 1\nA, B = 1, 2\n"
        "import os; N = 6; n = 7\nif True: O = 8; P = 9\ndef f():\n    INNER = 1\n", True),
    "match_statement": ("def f(p):\n    match p:\n        case [x, y]:\n            pass\n        case _:\n            def g(): pass\n", True),
    "unterminated_string": ("def f():\n    s = 'abc\n    return s\ndef g():\n    pass\n", False),
    "unterminated_triple": ("def f():\n    s = '''abc\n    return s\ndef g():\n    pass\n", False),
    "unclosed_bracket": ("def f():\n    x = foo(1,\ndef g():\n    return h(2)\n", False),
    "mismatched_bracket": ("def f():\n    x = (1]\n", False),
    "unexpected_indent": ("def f():\n    x = 1\n        y = 2\n", False),
    "inconsistent_dedent": ("def f():\n    if x:\n        y = 1\n  z = 2\n", False),
    "missing_block": ("def f():\ndef g():\n    pass\n", False),
    "tab_indent": ("def f():\n\tpass\n", False),
    "crlf": ("def f():\r\n    pass\r\n", False),
    "non_ascii_name": ("def f\u00e9():\n    pass\n", False),
    "nested_fstring_quotes": ('x = f"{d["k"]}"\ndef g(): pass\n', False),
    "dedented_continuation": ("def f():\n    (bar.\nbaz)\n    x = 1\n", False),
    "decorator_without_def": ("@dec\nx = 1\n", False),
    "type_in_one_line_body": ("if x: type T = int\n", False),
    "dedented_closing_bracket": ("def f():\n    d = {\n        'a': 1,\n}\n    return d\nX = [\n1,\n]\n", True),
    "fstring_field_other_quote": ("def f(d):\n    return f\"{d['k']}\" + f'{d[\"j\"]:>3}'\ndef g(): pass\n", True),
    "type_call_not_alias": ("def f(x):\n    type(x).n -= 1\n    return type(x) == int\n", True),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_equals_tree_sitter_or_falls_back(name: str) -> None:
    src, accepted = CASES[name]
    got = scan(src)
    assert (got is not None) == accepted, got
    if got is not None:
        assert got == ts_rows(src.encode())
    # Whatever the scanner says, `repoloop tags` ends with tree-sitter's rows.
    assert extract_file("pkg/m.py", src.encode(), "python")[0] == ts_rows(src.encode())


def test_rows_are_what_they_should_be() -> None:
    """Not only equal to tree-sitter: the rows mean what tags need (kinds, scopes, end lines)."""
    src, _ = CASES["trailing_comments"]
    assert [(r[1], r[2], r[3], r[4], r[5], r[7]) for r in scan(src)] == [
        ("pkg.m.A", "class", 1, 5, "", ""),
        ("pkg.m.A.f", "method", 2, 4, "pkg.m.A", "class"),
        ("pkg.m.g", "function", 9, 13, "", ""),
    ]
    src, _ = CASES["module_assignments"]
    assert [(r[0], r[2]) for r in scan(src)] == [
        ("NAME", "constant"), ("Z", "constant"), ("_PRIVATE", "constant"), ("f", "function"),
        ("g", "function"), ("K", "constant"), ("N", "constant"), ("f", "function"),
    ]
    src, _ = CASES["def_in_strings"]
    assert [r[0] for r in scan(src)] == ["X", "real"]
    assert [(r[0], r[2], r[6]) for r in scan(CASES["type_alias"][0])] == [
        ("Vec", "type", ""), ("Pair[T]", "type", ""), ("C", "class", ""), ("X", "type", "C")]


def test_syntax_errors_keep_tree_sitters_rows(tmp_path: Path) -> None:
    """Broken files go through tree-sitter whole: the tags of a tree equal tree-sitter's."""
    broken = {
        "a.py": "def f(:\n    pass\nclass A:\n    def g(self): pass\n",
        "b.py": "x = '''never closed\ndef h():\n    pass\n",
        "c.py": "def k():\n    return [1, 2\nCONST = 3\n",
    }
    for name, src in broken.items():
        (tmp_path / name).write_text(src)
    res = tags_mod.extract_tags(tmp_path, jobs=1, reuse=False)
    for name, src in broken.items():
        assert scan(src, name) is None
        want = ts_rows(src.encode(), name)
        got = [(t.name, t.qualname, t.kind, t.line, t.end_line) for t in res.tags if t.path == name]
        assert got == [r[:5] for r in want], name


def test_extract_file_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean file never reaches tree-sitter; a broken one does."""
    src, _ = CASES["nested_in_if_try"]
    want = ts_rows(src.encode())

    def no_tree_sitter(*_a: object) -> None:
        raise AssertionError("tree-sitter used")

    monkeypatch.setattr(tags_mod, "_compiled", no_tree_sitter)
    assert extract_file("pkg/m.py", src.encode(), "python")[0] == want
    with pytest.raises(AssertionError, match="tree-sitter used"):
        extract_file("pkg/m.py", CASES["unterminated_string"][0].encode(), "python")
