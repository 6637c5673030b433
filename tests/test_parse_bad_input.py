"""Bad input at parse level, in every language: partial parses, bad bytes, empty and comment-only
files never raise, and the chunks still cover every line."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repoloop.indexer.parse.languages import LANGUAGES
from repoloop.indexer.parse.parser import parse_source

BROKEN = {
    "python": b"def ok():\n    return 1\n\ndef bad(:\n    pass\n",
    "javascript": b"function ok() { return 1; }\nfunction bad( { return; \n",
    "typescript": b"function ok(): number { return 1; }\nclass Bad { m( { }\n",
    "tsx": b"export const Ok = () => <div/>;\nconst Bad = () => <div><span></div>;\n",
    "go": b"package m\n\nfunc Ok() int { return 1 }\n\nfunc Bad( { \n",
    "rust": b"fn ok() -> i32 { 1 }\nfn bad( { \n",
    "java": b"class Ok { int ok() { return 1; } }\nclass Bad { void m( { }\n",
    "c": b"int ok(void) { return 1; }\nint bad( { \n",
    "cpp": b"int ok() { return 1; }\nclass Bad { void m( { };\n",
    "c_sharp": b"class Ok { int M() { return 1; } }\nclass Bad { void M( { }\n",
    "ruby": b"def ok\n  1\nend\ndef bad(\n",
    "php": b"<?php\nfunction ok() { return 1; }\nfunction bad( { \n",
}
COMMENT = {
    "python": b"# one\n# two\n", "ruby": b"# one\n# two\n", "php": b"<?php\n// one\n// two\n",
}


def _partition(p) -> None:
    covered = [line for c in p.chunks for line in range(c.start_line, c.end_line + 1)]
    assert covered == list(range(1, p.lines + 1))


@pytest.mark.parametrize("language", LANGUAGES)
def test_syntax_error_gives_partial_result(language: str) -> None:
    p = parse_source("x/broken.src", BROKEN[language], language)
    assert p.syntax_errors > 0
    assert any(s.name in ("ok", "Ok") for s in p.symbols), [s.qualname for s in p.symbols]
    _partition(p)


@pytest.mark.parametrize("language", LANGUAGES)
def test_empty_comment_only_and_undecodable(language: str) -> None:
    empty = parse_source("e", b"", language)
    assert (empty.symbols, empty.chunks, empty.lines, empty.syntax_errors) == ([], [], 0, 0)
    comments = parse_source("c", COMMENT.get(language, b"// one\n/* two */\n"), language)
    assert comments.symbols == [] and comments.syntax_errors == 0
    _partition(comments)
    junk = parse_source("j", b"\xff\xfe\x00garbage \x80\x81 {{{ ((( \n\xc3\x28 ok\n", language)
    _partition(junk)
    assert "\ufffd" in "".join(c.text for c in junk.chunks)  # undecodable bytes replaced, nothing dropped


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(language=st.sampled_from(LANGUAGES), data=st.binary(max_size=400))
def test_random_bytes_never_raise(language: str, data: bytes) -> None:
    p = parse_source("fuzz", data, language, max_tokens=30)
    _partition(p)
    for s in p.symbols:
        assert 1 <= s.start_line <= s.end_line <= max(p.lines, 1)


def _samples() -> dict[str, bytes]:
    from tests import (
        test_parse_cfamily,
        test_parse_go,
        test_parse_java,
        test_parse_js,
        test_parse_others,
        test_parse_python,
        test_parse_rust,
    )

    return {
        "python": test_parse_python.SRC, "typescript": test_parse_js.TS, "tsx": test_parse_js.TSX,
        "javascript": test_parse_js.JS, "go": test_parse_go.GO, "rust": test_parse_rust.RS,
        "java": test_parse_java.JAVA, "c": test_parse_cfamily.C, "cpp": test_parse_cfamily.CPP,
        "c_sharp": test_parse_others.CS, "ruby": test_parse_others.RB, "php": test_parse_others.PHP,
    }


_EDIT = st.tuples(st.floats(0, 1), st.floats(0, 1), st.integers(1, 40), st.binary(max_size=12))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(language=st.sampled_from(LANGUAGES), edits=st.lists(_EDIT, min_size=1, max_size=4))
def test_mangled_real_code_never_raises(language: str, edits: list[tuple[float, float, int, bytes]]) -> None:
    """Real snippets with spans deleted or replaced by junk: every handler copes with the odd trees."""
    src = bytearray(_samples()[language])
    for where, _, length, junk in edits:
        i = int(where * (len(src) - 1))
        src[i:i + length] = junk
    p = parse_source("x/mangled", bytes(src), language, max_tokens=40)
    _partition(p)
    assert all(s.name and 1 <= s.start_line <= s.end_line for s in p.symbols)
