"""Search hits: neighbouring chunks of one long definition come back as one hit whose text is the
file's lines, and the places they took go to other definitions. Unit cases on `take_hits`, then a
real index of a function long enough to be split into several chunks."""

from __future__ import annotations

from pathlib import Path

from repoloop.indexer.pipeline import index_repo
from repoloop.retrieval.fusion import Fused
from repoloop.retrieval.hits import MAX_LINES, take_hits
from repoloop.retrieval.retriever import open_retriever
from repoloop.retrieval.rows import ChunkRow


def _row(path: str, start: int, end: int, symbol: str | None, *, prefix: str | None = None) -> ChunkRow:
    lines = [f"{path}:{i}" for i in range(start, end + 1)]
    return ChunkRow(path, start, end, symbol, "function", "\n".join(([prefix] if prefix else []) + lines))


def _ranked(*rows: ChunkRow) -> list[tuple[Fused, ChunkRow]]:
    return [(Fused(i, 1.0 - i / 100, {"bm25": {"rank": i + 1, "score": 1.0}}), r) for i, r in enumerate(rows)]


def test_touching_chunks_of_one_symbol_fold_into_the_first_and_free_places() -> None:
    ranked = _ranked(_row("a.py", 10, 20, "a.f"), _row("a.py", 21, 30, "a.f", prefix="def f():"),
                     _row("b.py", 1, 5, "b.g"), _row("a.py", 31, 35, "a.f", prefix="def f():"),
                     _row("c.py", 1, 2, "c.h"))
    hits = take_hits(ranked, 3, head=3, cap=0, explain=True)
    assert [(h.path, h.start_line, h.end_line) for h in hits] == [("a.py", 10, 35), ("b.py", 1, 5), ("c.py", 1, 2)]
    assert hits[0].text.split("\n") == [f"a.py:{i}" for i in range(10, 36)]  # no repeated signature line
    assert hits[0].score == 1.0 and hits[0].signals["bm25"]["rank"] == 1  # the best chunk's
    unmerged = take_hits(ranked, 3, head=3, cap=0, merge=False)
    assert [(h.path, h.start_line) for h in unmerged] == [("a.py", 10), ("a.py", 21), ("b.py", 1)]


def test_a_continuation_ranked_first_keeps_its_signature_line_on_top() -> None:
    ranked = _ranked(_row("a.py", 21, 30, "a.f", prefix="def f():"), _row("a.py", 31, 40, "a.f", prefix="def f():"))
    (hit,) = take_hits(ranked, 5, head=5, cap=0)
    assert (hit.start_line, hit.end_line) == (21, 40)
    assert hit.text.split("\n") == ["def f():"] + [f"a.py:{i}" for i in range(21, 41)]
    # ... and once the part with the real signature joins, the repeated line goes.
    ranked = _ranked(_row("a.py", 21, 30, "a.f", prefix="def f():"), _row("a.py", 10, 20, "a.f"))
    (hit,) = take_hits(ranked, 5, head=5, cap=0)
    assert hit.text.split("\n") == [f"a.py:{i}" for i in range(10, 31)]


def test_a_gap_closed_later_joins_three_parts_into_one() -> None:
    ranked = _ranked(_row("a.py", 1, 10, "a.f"), _row("a.py", 21, 30, "a.f", prefix="def f():"),
                     _row("b.py", 1, 3, "b.g"), _row("a.py", 11, 20, "a.f", prefix="def f():"))
    hits = take_hits(ranked, 5, head=5, cap=0)
    assert [(h.path, h.start_line, h.end_line) for h in hits] == [("a.py", 1, 30), ("b.py", 1, 3)]
    assert hits[0].text.split("\n") == [f"a.py:{i}" for i in range(1, 31)]


def test_other_symbols_module_code_and_far_apart_parts_stay_apart() -> None:
    ranked = _ranked(_row("a.py", 1, 10, "a.f"), _row("a.py", 11, 20, "a.g"),  # touching, other symbol
                     _row("a.py", 30, 40, None), _row("a.py", 41, 50, None),  # module-level code
                     _row("a.py", 60, 70, "a.f"),  # same name, not touching (a redefinition)
                     _row("b.py", 11, 20, "a.f"))  # same name, other file
    hits = take_hits(ranked, 10, head=10, cap=0)
    assert len(hits) == 6


def test_a_hit_stops_growing_at_max_lines() -> None:
    step = MAX_LINES // 2
    ranked = _ranked(*(_row("a.py", 1 + i * step, (i + 1) * step, "a.f", prefix="def f():" if i else None)
                       for i in range(4)))
    hits = take_hits(ranked, 10, head=10, cap=0)
    assert [(h.start_line, h.end_line) for h in hits] == [(1, 2 * step), (2 * step + 1, 4 * step)]
    assert all(h.end_line - h.start_line < MAX_LINES for h in hits)


def test_text_that_is_not_the_files_lines_is_never_joined() -> None:
    odd = ChunkRow("a.py", 11, 20, "a.f", "function", "a summary\nof two lines")  # not a slice of the file
    ranked = _ranked(_row("a.py", 1, 10, "a.f"), odd)
    hits = take_hits(ranked, 5, head=5, cap=0)
    assert [(h.start_line, h.end_line) for h in hits] == [(1, 10), (11, 20)]
    assert hits[0].text.split("\n") == [f"a.py:{i}" for i in range(1, 11)]


def test_the_per_file_cap_still_orders_after_the_head() -> None:
    ranked = _ranked(_row("a.py", 1, 10, "a.f"), _row("a.py", 11, 20, "a.f", prefix="def f():"),
                     _row("a.py", 40, 50, "a.g"), _row("b.py", 1, 3, "b.g"), _row("c.py", 1, 3, "c.h"))
    hits = take_hits(ranked, 4, head=1, cap=1)
    # a.f (merged) is a.py's one hit before every file had its turn; a.g follows them.
    assert [(h.path, h.symbol) for h in hits] == [("a.py", "a.f"), ("b.py", "b.g"), ("c.py", "c.h"), ("a.py", "a.g")]


LONG = "def settle_ledger_entries(ledger, journal):\n    \"\"\"Settle every ledger entry against the journal.\"\"\"\n" + "".join(
    f"    if journal.get('acct_{i}') is not None:\n        ledger['acct_{i}'] = journal['acct_{i}'] * {i}\n"
    for i in range(60)) + "    return ledger\n\n\ndef unrelated_helper():\n    return 1\n"


def test_a_long_function_split_into_chunks_is_one_hit_with_the_files_lines(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "ledger.py").write_text(LONG)
    (repo / "pkg" / "other.py").write_text("def journal_totals(journal):\n    return sum(journal.values())\n")
    index_repo(repo, embed=False, progress=False, jobs=1)
    with open_retriever(repo) as r:
        parts = [h for h in r.search("settle ledger entries journal acct", 10, merge=False)
                 if h.symbol == "pkg.ledger.settle_ledger_entries"]
        assert len(parts) >= 2  # the function really was split, and several parts rank
        hits = r.search("settle ledger entries journal acct", 10)
        mine = [h for h in hits if h.symbol == "pkg.ledger.settle_ledger_entries"]
        assert len(mine) == 1
        hit = mine[0]
        lines = LONG.split("\n")
        assert hit.start_line == min(p.start_line for p in parts)
        assert hit.end_line >= max(p.end_line for p in parts)
        assert hit.text == "\n".join(lines[hit.start_line - 1 : hit.end_line])
        assert "pkg/other.py" in [h.path for h in hits]  # a freed place went to another file
