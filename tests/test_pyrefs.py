"""`repoloop tags --refs` for Python without tree-sitter (`repoloop/indexer/tags/pyrefs.py`, fed by the
`pydefs` scanner) against the tree-sitter query path it replaces. Real tree-sitter, the real stdlib."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from repoloop.indexer.tags import extract as tags_mod
from repoloop.indexer.tags import pydefs
from repoloop.indexer.tags.extract import extract_file


def both(src: bytes, path: str = "pkg/m.py") -> tuple[tuple, tuple]:
    """(scanner path, tree-sitter path) of extract_file(refs=True), the latter forced."""
    fast = extract_file(path, src, "python", refs=True)
    real = pydefs.scan_with_names
    try:
        pydefs.scan_with_names = lambda s, m: None  # type: ignore[assignment]
        slow = extract_file(path, src, "python", refs=True)
    finally:
        pydefs.scan_with_names = real  # type: ignore[assignment]
    return fast, slow


def refs(src: str) -> dict[str, tuple[int, int]]:
    rows = extract_file("pkg/m.py", src.encode(), "python", refs=True)[1]
    return {n: (line, c) for n, line, c in rows}


def test_stdlib_agreement_with_tree_sitter() -> None:
    """Same definitions everywhere; same reference rows in nearly every file. What may differ is
    what the grammar does not call an identifier: soft keywords, `__future__`, Python 2 leftovers,
    words in a format spec. Never a line number alone."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts and p.is_file())
    same = 0
    for f in files:
        rel = f.relative_to(stdlib).as_posix()
        data = f.read_bytes().decode("utf-8", "replace").encode()
        (fd, fr), (sd, sr) = both(data, rel)
        assert fd == sd, rel
        if sorted(fr) == sorted(sr):
            same += 1
            continue
        a, b = {r[0]: r for r in fr}, {r[0]: r for r in sr}
        for name in set(a) & set(b):
            if a[name][2] == b[name][2]:
                assert a[name][1] == b[name][1], (rel, name)  # same count, so the same first line
    assert same >= 0.95 * len(files), (same, len(files))


def test_rows_are_what_they_should_be() -> None:
    src = (
        "import os\n"
        "# os_in_comment never counts\n"
        "def helper(path):\n"
        "    '''helper_doc is text'''\n"
        "    data = rb'raw_bytes' + b\"more\" + u'uni'\n"
        "    return f\"{path!r} {os.sep:>{width}} {{not_code}} {d['key_text']}\" + data\n"
        "class Box:\n"
        "    def open(self, path):\n"
        "        return helper(path) if self else None\n"
        "VALUE = helper(VALUE_SRC)\n"
    )
    got = refs(src)
    assert got["os"] == (1, 2)  # the import and the f-string field; the comment is text
    assert got["path"] == (3, 4)  # parameters are identifiers; in the f-string field too
    assert got["helper"] == (9, 2)  # its own definition's name is no use of it
    assert got["width"] == (6, 1)  # a field nested in a format spec is code
    assert "VALUE" not in got and got["VALUE_SRC"] == (10, 1)
    for text in ("os_in_comment", "helper_doc", "raw_bytes", "rb", "more", "uni", "not_code", "key_text"):
        assert text not in got, text
    assert "self" not in got and "return" not in got and "None" not in got  # skipped, keywords
    assert "open" not in got and "Box" not in got


@pytest.mark.parametrize(
    "src",
    [
        'x = f\'({",".join([f"{obj_name}.{f.name}" for f in fields])},)\'\n',  # nested f-strings
        "y = f\"{','.join(c.tag.split('}')[-1] for c in children)}\"\n",  # a brace in a field's string
        "s = '''one\ntwo''' + \"a\\\nb\"\nlate_name = 1\nuse(late_name)\n",  # lines after multi-line strings
    ],
)
def test_tricky_strings_equal_tree_sitter(src: str) -> None:
    (fd, fr), (sd, sr) = both(src.encode())
    assert fd == sd
    assert sorted(fr) == sorted(sr)


def test_refs_take_the_scanner_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file the scanner accepts never reaches tree-sitter; one it rejects does, and still gets refs."""
    calls: list[tuple[str, bool]] = []
    real = tags_mod._compiled

    def spy(language: str, refs: bool):  # noqa: ANN202
        calls.append((language, refs))
        return real(language, refs)

    monkeypatch.setattr(tags_mod, "_compiled", spy)
    defs, rows = extract_file("m.py", b"def f(a):\n    return g(a)\n", "python", refs=True)
    assert calls == [] and [d[0] for d in defs] == ["f"] and {r[0] for r in rows} == set()  # 1-char names
    defs, rows = extract_file("m.py", b"def f(arg):\n\treturn go(arg)\n", "python", refs=True)  # tabs
    assert calls == [("python", True)]
    assert {r[0]: r[2] for r in rows} == {"arg": 2, "go": 1}


def test_crlf_files_take_the_scanner_path_with_tree_sitters_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """CRLF line ends are the same lines to tree-sitter: the scanners read them as LF. A lone CR
    (old Mac line ends, or a stray one) is left to tree-sitter."""
    src = ("class Box:\n    '''A box.'''\n    def open(self, lid):\n        return lid.lift()\n\n"
           "LIMIT = 3\nbox = Box()\nbox.open(LIMIT)\n").replace("\n", "\r\n").encode()
    (fd, fr), (sd, sr) = both(src)
    assert fd == sd and sorted(fr) == sorted(sr)
    assert extract_file("pkg/m.py", src, "python")[0] == sd
    calls: list[bool] = []
    real = tags_mod._compiled
    monkeypatch.setattr(tags_mod, "_compiled", lambda lang, refs: calls.append(refs) or real(lang, refs))
    extract_file("pkg/m.py", src, "python", refs=True)
    extract_file("pkg/m.py", src, "python")
    assert calls == []  # both paths answered by the scanners
    lone = b"def f():\r    return 1\rdef g():\r    pass\r"
    defs, _ = extract_file("pkg/m.py", lone, "python")
    assert calls == [False] and [d[0] for d in defs] == ["f", "g"]
