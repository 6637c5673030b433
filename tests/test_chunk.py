"""AST-aware chunking: coverage, bounds, splitting of big definitions, merging of small code."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from repoloop.indexer.parse.chunk import chunk_file, estimate_tokens
from repoloop.indexer.parse.parser import parse_source


def _assert_partition(chunks, n_lines: int) -> None:
    covered = [line for c in chunks for line in range(c.start_line, c.end_line + 1)]
    assert covered == list(range(1, n_lines + 1))  # every line once, in order


def _big_function(n: int) -> str:
    body = "".join(f"    value_{i} = compute_something(value_{i - 1}, option={i})  # step {i}\n" for i in range(1, n))
    return f"def process(data, *, strict=False):\n    value_0 = data\n{body}    return value_{n - 1}\n"


SMALL_TOP = '''import os
import sys

X = 1
Y = 2


def a():
    return X


def b():
    return Y

print(a(), b())
'''


@pytest.mark.parametrize("pkg_file", ["json/decoder.py", "logging/__init__.py", "asyncio/base_events.py", "argparse.py"])
@pytest.mark.parametrize("budget", [120, 400])
def test_stdlib_files_are_partitioned_and_bounded(pkg_file: str, budget: int) -> None:
    path = Path(sysconfig.get_paths()["stdlib"]) / pkg_file
    src = path.read_bytes()
    p = parse_source(pkg_file, src, "python", max_tokens=budget)
    _assert_partition(p.chunks, p.lines)
    for c in p.chunks:
        lines = c.text.split("\n")
        # only a chunk of one (over-long) source line may exceed the budget
        assert estimate_tokens(c.text) <= budget or c.start_line == c.end_line, (c.start_line, c.end_line)
        assert c.header == (f"{pkg_file} :: {c.symbol}" if c.symbol else pkg_file)
        assert len(lines) >= c.end_line - c.start_line + 1
    # definitions stay whole where they fit: one chunk holds each method that fits the budget
    text_lines = src.decode().split("\n")
    fitting = [s for s in p.symbols if s.kind in ("method", "function") and estimate_tokens(
        "\n".join(text_lines[s.start_line - 1:s.end_line])) < budget // 2]
    assert fitting
    for s in fitting:
        assert any(c.start_line <= s.start_line and s.end_line <= c.end_line for c in p.chunks), s.qualname


def test_big_function_split_at_statements_with_signature_repeated() -> None:
    src = _big_function(120)
    p = parse_source("big.py", src.encode(), "python", max_tokens=200)
    _assert_partition(p.chunks, p.lines)
    parts = [c for c in p.chunks if c.symbol == "big.process"]
    assert len(parts) >= 5
    assert all(c.kind == "function" for c in parts)
    assert parts[0].start_line == 1 and parts[0].text.startswith("def process(data, *, strict=False):")
    for c in parts[1:]:
        first, *rest = c.text.split("\n")
        assert first == "def process(data, *, strict=False)"  # the signature on top of every part
        assert rest[0].startswith("    value_")  # cut between statements, never inside one
        assert "\n".join(rest) == "\n".join(src.split("\n")[c.start_line - 1:c.end_line])
        assert estimate_tokens(c.text) <= 200


def test_split_without_parser_points_uses_indentation() -> None:
    src = _big_function(120)
    p = parse_source("big.py", src.encode(), "python")
    chunks = chunk_file(p, src, max_tokens=200)  # no split points: indentation decides
    _assert_partition(chunks, p.lines)
    assert all(estimate_tokens(c.text) <= 200 for c in chunks)
    assert all(c.text.startswith("def process") for c in chunks)


def test_big_class_split_into_methods_and_header() -> None:
    methods = "".join(
        f"    def method_{i}(self, x):\n        '''Doc {i}.'''\n        return self.helper(x) + {i} * x * x - {i}\n\n"
        for i in range(30)
    )
    src = f"class Big(Base):\n    '''A big class.'''\n    LIMIT = 3\n    name = 'big'\n\n{methods}"
    p = parse_source("m.py", src.encode(), "python", max_tokens=150)
    _assert_partition(p.chunks, p.lines)
    header = p.chunks[0]
    assert (header.symbol, header.kind, header.start_line) == ("m.Big", "class", 1)
    assert "LIMIT = 3" in header.text and "def method_" not in header.text
    method_chunks = [c for c in p.chunks if c.kind == "method"]
    assert {c.symbol for c in method_chunks} == {f"m.Big.method_{i}" for i in range(30)}
    assert all(c.text.lstrip().startswith("def method_") for c in method_chunks)


def test_small_top_level_code_is_merged() -> None:
    p = parse_source("s.py", SMALL_TOP.encode(), "python")
    _assert_partition(p.chunks, p.lines)
    kinds = [(c.kind, c.symbol, c.start_line, c.end_line) for c in p.chunks]
    # imports and constants form one chunk; each function is its own chunk; the trailing call
    # (one short line) joins the chunk before it instead of standing alone
    assert kinds[0] == ("code", None, 1, 7)
    assert [k[1] for k in kinds[1:]] == ["s.a", "s.b"]
    assert kinds[-1][3] == 15 and "print(a(), b())" in p.chunks[-1].text


def test_decorators_and_comments_belong_to_their_definition() -> None:
    src = "import x\n\n# Leading comment.\n@decorator\ndef f():\n    pass\n"
    p = parse_source("d.py", src.encode(), "python", max_tokens=12)
    chunk = next(c for c in p.chunks if c.symbol == "d.f")
    assert chunk.start_line == 3 and chunk.text.startswith("# Leading comment.\n@decorator\ndef f():")


def test_other_languages_are_partitioned() -> None:
    go = b"package m\n\nimport \"fmt\"\n\n// A.\nfunc A() {\n\tfmt.Println(1)\n}\n\nfunc B() {}\n"
    p = parse_source("m/m.go", go, "go", max_tokens=15)
    _assert_partition(p.chunks, p.lines)
    assert next(c for c in p.chunks if c.symbol == "m.A").start_line == 5


def test_empty_and_blank_files() -> None:
    assert parse_source("e.py", b"", "python").chunks == []
    p = parse_source("b.py", b"\n\n\n", "python")
    _assert_partition(p.chunks, 3)


def test_absurdly_deep_nesting_does_not_recurse_forever() -> None:
    depth = 1200
    src = "".join(" " * i + f"def f{i}():\n" for i in range(depth)) + " " * depth + "pass\n"
    p = parse_source("deep.py", src.encode(), "python", max_tokens=50)
    assert len(p.symbols) > 200  # (tree-sitter itself gives up somewhere past 500 levels)
    _assert_partition(p.chunks, p.lines)


def test_two_definitions_with_one_qualname_split_at_their_own_statements() -> None:
    body = "".join(f"        self.v{i} = transform(value, step={i}, label='step number {i}')\n" for i in range(60))
    src = (f"class C:\n    @property\n    def v(self):\n{body}        return self.v0\n\n"
           f"    @v.setter\n    def v(self, value):\n{body}        self.done = True\n")
    p = parse_source("c.py", src.encode(), "python", max_tokens=150)
    _assert_partition(p.chunks, p.lines)
    parts = [c for c in p.chunks if c.symbol == "c.C.v"]
    assert len(parts) > 4
    for c in parts:
        assert estimate_tokens(c.text) <= 150
        first_code = c.text.split("\n")[1 if c.text.startswith("def v(self") and "\n" in c.text else 0]
        assert not first_code.startswith("            ")  # never starts inside a statement


def test_variable_holding_definitions_is_a_container() -> None:
    src = (b"import x from \"y\";\nexport const api = {\n  get: async (id) => fetch(`/x/${id}`),\n"
           b"  post: function (body) { return send(body); },\n  put(body) { return send(body); },\n};\n")
    whole = parse_source("src/api.js", src, "javascript")
    assert [(c.start_line, c.end_line, c.symbol) for c in whole.chunks] == [(1, 1, None), (2, 6, "src/api.api")]
    split = parse_source("src/api.js", src, "javascript", max_tokens=20)
    _assert_partition(split.chunks, split.lines)
    assert [(c.start_line, c.symbol, c.kind) for c in split.chunks] == [
        (1, None, "code"), (2, "src/api.api", "variable"),  # the header stays with its container
        (3, "src/api.api.get", "method"), (4, "src/api.api.post", "method"), (5, "src/api.api.put", "method"),
    ]
