"""Files without a grammar are indexed as "text": which ones, and how they are cut into chunks."""

from __future__ import annotations

from repoloop.indexer.parse.textchunk import WINDOW_LINES, chunk_text, is_text_name, parse_text


def test_which_files_are_text() -> None:
    for name in ("README.md", "docs/setup.rst", "pyproject.toml", "ci.yml", "config.json", "Makefile",
                 "Dockerfile", "scripts/run.sh", "schema.sql", "LICENSE", "bin/tool"):
        assert is_text_name(name), name
    for name in ("logo.png", "archive.tar.gz", "lib.so", "font.woff2", "data.sqlite", ".hidden_no_ext"):
        assert not is_text_name(name), name


def test_windows_cover_every_line_once_and_prefer_blank_lines() -> None:
    paras = [[f"para {p} line {i}" for i in range(7)] for p in range(20)]
    text = "\n\n".join("\n".join(p) for p in paras)
    chunks = chunk_text("notes.md", text)
    lines = text.splitlines()
    covered = [n for c in chunks for n in range(c.start_line, c.end_line + 1)]
    assert covered == list(range(1, len(lines) + 1))  # contiguous, no overlap, nothing lost
    assert all(c.end_line - c.start_line + 1 <= WINDOW_LINES for c in chunks)
    # Every window but the last ends just before a blank line: paragraphs are not cut.
    assert all(lines[c.end_line].strip() == "" for c in chunks[:-1])
    assert all(c.kind == "text" and c.symbol is None and c.header == "notes.md" for c in chunks)
    assert chunks[0].text == "\n".join(lines[: chunks[0].end_line])


def test_parse_text_keeps_bad_bytes_and_counts_lines() -> None:
    pf = parse_text("a.txt", b"one\ntwo \xff\nthree")
    assert pf.language == "text" and pf.lines == 3 and pf.symbols == []
    assert "\ufffd" in pf.chunks[0].text
    assert parse_text("empty.txt", b"").chunks == []
