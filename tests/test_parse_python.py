"""Python: definitions, qualnames, kinds, lines, docs, references, and bad input."""

from __future__ import annotations

import pickle

from repoloop.indexer.parse.languages import detect_language, module_name
from repoloop.indexer.parse.parser import parse_source

SRC = b'''"""Module doc."""
import os.path, numpy as np
from ..utils import helper as h, other
from . import sibling
from pkg.sub import *
MAX_SIZE = 10
square = lambda x: x * x


@decorator
@other.deco(arg=1)
async def fetch(url: str, *, retries: int = 3) -> bytes:
    """Fetch a URL.

    With retries.
    """
    def inner():
        return os.path.join(url, "x")
    return await h(inner())


class Base(abc.ABC, metaclass=Meta):
    """A base."""
    LIMIT = 3

    class Nested:
        def deep(self):
            pass

    @property
    def name(self):
        self.save()
        return self._name

    async def run(self, task):
        await task.start()
'''


def _by_qual(parsed):
    return {s.qualname: s for s in parsed.symbols}


def test_language_and_module() -> None:
    assert detect_language("a/b.py") == "python"
    assert detect_language("a/b.pyi") == "python"
    assert detect_language("README.md") is None
    assert detect_language("tool", b"#!/usr/bin/env python3\nprint(1)\n") == "python"
    assert module_name("pkg/sub/mod.py", "python") == "pkg.sub.mod"
    assert module_name("pkg/__init__.py", "python") == "pkg"
    assert module_name("src/pkg/mod.py", "python") == "pkg.mod"
    assert module_name("lib/pkg/mod.py", "python") == "pkg.mod"
    assert module_name("./json/decoder.py", "python") == "json.decoder"


def test_definitions() -> None:
    p = parse_source("pkg/mod.py", SRC, "python")
    assert p.module == "pkg.mod" and p.language == "python" and p.syntax_errors == 0
    syms = _by_qual(p)
    assert set(syms) == {
        "pkg.mod.MAX_SIZE", "pkg.mod.square", "pkg.mod.fetch", "pkg.mod.fetch.inner", "pkg.mod.Base",
        "pkg.mod.Base.Nested", "pkg.mod.Base.Nested.deep", "pkg.mod.Base.name", "pkg.mod.Base.run",
    }
    fetch = syms["pkg.mod.fetch"]
    # decorated: the start line is the `def` line, as ast reports it
    assert (fetch.kind, fetch.start_line, fetch.end_line) == ("function", 12, 19)
    assert fetch.signature == "async def fetch(url: str, *, retries: int = 3) -> bytes"
    assert fetch.doc == "Fetch a URL.\n\nWith retries."
    assert fetch.parent is None
    inner = syms["pkg.mod.fetch.inner"]
    assert (inner.kind, inner.parent, inner.start_line) == ("function", "pkg.mod.fetch", 17)
    assert syms["pkg.mod.Base"].kind == "class" and syms["pkg.mod.Base"].doc == "A base."
    assert syms["pkg.mod.Base"].signature == "class Base(abc.ABC, metaclass=Meta)"
    assert syms["pkg.mod.Base.Nested"].kind == "class"
    assert syms["pkg.mod.Base.Nested"].parent == "pkg.mod.Base"
    assert syms["pkg.mod.Base.Nested.deep"].kind == "method"
    run = syms["pkg.mod.Base.run"]
    assert (run.kind, run.start_line, run.end_line) == ("method", 35, 36)
    assert syms["pkg.mod.Base.name"].start_line == 31
    assert syms["pkg.mod.MAX_SIZE"].kind == "constant"
    assert syms["pkg.mod.square"].kind == "function"
    assert "pkg.mod.Base.LIMIT" not in syms  # class attributes are not module constants


def test_references() -> None:
    p = parse_source("pkg/mod.py", SRC, "python")
    imports = [(r.module, r.name, r.alias, r.full) for r in p.refs if r.kind == "import"]
    assert ("os.path", "path", None, "os.path") in imports
    assert ("numpy", "numpy", "np", "numpy") in imports
    assert ("..utils", "helper", "h", "..utils.helper") in imports
    assert ("..utils", "other", None, "..utils.other") in imports
    assert (".", "sibling", None, ".sibling") in imports
    assert ("pkg.sub", "*", None, "pkg.sub.*") in imports
    calls = {(r.full, r.scope, r.line) for r in p.refs if r.kind == "call"}
    assert ("os.path.join", "pkg.mod.fetch.inner", 18) in calls
    assert ("h", "pkg.mod.fetch", 19) in calls
    assert ("self.save", "pkg.mod.Base.name", 32) in calls
    assert ("task.start", "pkg.mod.Base.run", 36) in calls
    assert ("other.deco", None, 11) in calls  # decorators run at the enclosing level
    join = next(r for r in p.refs if r.kind == "call" and r.full == "os.path.join")
    assert join.name == "join"
    inherits = {(r.name, r.full, r.scope) for r in p.refs if r.kind == "inherit"}
    assert inherits == {("ABC", "abc.ABC", "pkg.mod.Base")}
    plain = [(r.name, r.scope) for r in p.refs if r.kind == "ref"]
    assert ("decorator", None) in plain
    assert ("Meta", "pkg.mod.Base") in plain
    assert len(plain) == len(set(plain))  # deduplicated per scope and name
    assert ("self", "pkg.mod.Base.name") not in plain
    assert ("url", "pkg.mod.fetch.inner") in plain  # a closure variable
    assert not any(len(name) == 1 for name, _ in plain)  # `x` of the lambda: noise, left out
    # the result crosses process boundaries
    assert pickle.loads(pickle.dumps(p)) == p


def test_syntax_error_partial_parse() -> None:
    src = b"def good(a):\n    return a\n\ndef broken(:\n    pass\n\nclass Later:\n    def m(self):\n        return 1\n"
    p = parse_source("m.py", src, "python")
    assert p.syntax_errors > 0
    quals = {s.qualname for s in p.symbols}
    assert "m.good" in quals and "m.Later" in quals and "m.Later.m" in quals
    assert p.chunks and p.chunks[0].start_line == 1 and p.chunks[-1].end_line == p.lines


def test_bad_bytes_empty_and_comments_only() -> None:
    p = parse_source("x.py", b"def f():\n    return '\xff\xfe'\n", "python")
    assert [s.qualname for s in p.symbols] == ["x.f"]
    assert "\ufffd" in p.chunks[0].text
    empty = parse_source("e.py", b"", "python")
    assert (empty.symbols, empty.refs, empty.chunks, empty.lines, empty.syntax_errors) == ([], [], [], 0, 0)
    comments = parse_source("c.py", b"# just a comment\n# another\n", "python")
    assert comments.symbols == [] and comments.lines == 2
    assert [(c.start_line, c.end_line, c.kind) for c in comments.chunks] == [(1, 2, "code")]
    nul = parse_source("n.py", b"\x00\x01\x02 binary \x00", "python")
    assert nul.lines == 1


def test_leading_comment_is_the_doc_without_a_docstring() -> None:
    src = b"X = 1  # trailing\n# Adds things.\n# Really.\n@dec\ndef add(a, b):\n    return a + b\n"
    p = parse_source("a.py", src, "python")
    add = next(s for s in p.symbols if s.name == "add")
    assert (add.start_line, add.doc) == (5, "Adds things.\nReally.")
    assert next(s for s in p.symbols if s.name == "X").doc == ""


def test_huge_docstring_is_capped_on_the_symbol() -> None:
    doc = "word " * 2000
    p = parse_source("d.py", f'def f():\n    """{doc}"""\n'.encode(), "python")
    assert 1000 < len(p.symbols[0].doc) <= 2000
    assert doc.strip() in "\n".join(c.text for c in p.chunks)


def test_pep695_type_aliases_and_generics() -> None:
    src = b"type Vec = list[float]\nclass Box[T]:\n    pass\ndef first[T](xs: list[T]) -> T: ...\n"
    p = parse_source("t.py", src, "python")
    assert [(s.qualname, s.kind, s.start_line, s.signature) for s in p.symbols] == [
        ("t.Vec", "type", 1, "type Vec = list[float]"),
        ("t.Box", "class", 2, "class Box[T]"),
        ("t.first", "function", 4, "def first[T](xs: list[T]) -> T"),
    ]
