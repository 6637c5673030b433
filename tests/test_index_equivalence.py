"""The index a full build writes (symbols, refs, chunks, FTS rows, edges, graph interfaces) is
pinned: on a real slice of the standard library it must equal the expectation recorded with the
writer as it was before the speed work of issue 20 (commit 19d4442), and every way of reaching the
same tree (a bulk full build in worker processes, a one-process build, file-by-file updates from
another tree, a switch between two real commits) must give the same index.

Re-record the expectation (only when the index is meant to change):
    .venv/bin/python -m tests.test_index_equivalence --write
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from repoloop.indexer import pipeline
from repoloop.indexer.graph import build as graph_build
from repoloop.indexer.index_digest import differences, table_digests
from repoloop.indexer.pipeline import index_repo
from tests.index_trees import PYTHON, STDLIB, checkout, copy_stdlib_slice, has_commit

EXPECT = Path(__file__).parent / "oracles" / "index_stdlib_slice.json"


def _digests(root: Path, idx: Path, **kw) -> dict:
    rep = index_repo(root, idx, embed=False, progress=False, **kw)
    assert not rep.errors
    return table_digests(idx / "index.db")


@pytest.fixture(scope="module")
def stdlib_slice(tmp_path_factory) -> Path:
    if not (STDLIB / "json").is_dir():
        pytest.skip("no standard library sources on this machine")
    return copy_stdlib_slice(tmp_path_factory.mktemp("slice") / "tree")


def test_full_build_equals_the_recorded_index(stdlib_slice: Path, tmp_path: Path, monkeypatch) -> None:
    expect = json.loads(EXPECT.read_text())
    if expect["python"] != PYTHON:
        pytest.skip(f"expectation recorded on the {expect['python']} standard library, this is {PYTHON}")
    # The bulk path (indexes dropped while loading, worker processes) as a big repository takes it.
    monkeypatch.setattr(pipeline, "_BULK_MIN_TASKS", 1)
    monkeypatch.setattr(graph_build, "PARALLEL_MIN_FILES", 1)  # edges resolved in worker processes
    got = _digests(stdlib_slice, tmp_path / "bulk", jobs=2)
    assert got["symbols"]["rows"] > 5000 and got["edges"]["rows"] > 10000
    assert differences(got, expect["tables"]) == []


def test_one_process_build_equals_the_bulk_build(stdlib_slice: Path, tmp_path: Path, monkeypatch) -> None:
    bulk = _digests(stdlib_slice, tmp_path / "a", jobs=2)
    monkeypatch.setattr(pipeline, "_BULK_MIN_TASKS", 10**9)  # row by row, indexes in place
    monkeypatch.setattr(graph_build, "PARALLEL_MIN_FILES", 10**9)  # edges resolved here
    one = _digests(stdlib_slice, tmp_path / "b", jobs=1)
    assert differences(one, bulk) == []


def test_updates_from_another_tree_end_equal_to_a_clean_build(stdlib_slice: Path, tmp_path: Path) -> None:
    """Start from an index of a different tree (files missing, edited, extra), then update in
    place: the result equals a clean build of the final tree."""
    work = tmp_path / "work"
    shutil.copytree(stdlib_slice, work)
    # Another tree: a package gone, files edited (a definition renamed, an import added), one extra.
    shutil.rmtree(work / "json")
    (work / "email" / "utils.py").write_text((work / "email" / "utils.py").read_text().replace(
        "def parseaddr(", "def parse_address("))
    (work / "asyncio" / "locks.py").write_text("import json\n" + (work / "asyncio" / "locks.py").read_text())
    (work / "extra.py").write_text("from email.utils import parseaddr\n\ndef f():\n    return parseaddr('x')\n")
    idx = tmp_path / "idx"
    index_repo(work, idx, embed=False, progress=False, jobs=2)
    shutil.rmtree(work)
    shutil.copytree(stdlib_slice, work)
    rep = index_repo(work, idx, embed=False, progress=False, jobs=2)
    assert rep.files_indexed == 2 + len(list((stdlib_slice / "json").rglob("*.py")))
    assert rep.files_deleted == 1
    clean = _digests(stdlib_slice, tmp_path / "clean", jobs=2)
    assert differences(table_digests(idx / "index.db"), clean) == []


# Two commits of this repository ten days apart (2026-11-25 05:50 and 2026-12-04 16:52 UTC): 37
# files modified and 22 added among 225, Python, Markdown, JSON, Go/Java/JS fixtures.
COMMIT_A, COMMIT_B = "d8d4c010ebf0460c01460208b052379eaab97628", "aaa854afe895ae9f8d136db8131aa4da0c52f2fc"


def test_switch_between_two_real_commits_equals_a_clean_index(tmp_path: Path) -> None:
    if not (has_commit(COMMIT_A) and has_commit(COMMIT_B)):
        pytest.skip("this clone lacks the two commits (shallow)")
    work = checkout(COMMIT_A, tmp_path / "work")
    idx = tmp_path / "idx"
    index_repo(work, idx, embed=False, progress=False)
    checkout(COMMIT_B, work)
    rep = index_repo(work, idx, embed=False, progress=False)
    assert rep.files_indexed >= 50
    clean = _digests(work, tmp_path / "clean")
    got = table_digests(idx / "index.db")
    assert got["edges"]["rows"] > 1000
    assert differences(got, clean) == []


def test_graph_workers_are_bounded_by_cores_and_memory(tmp_path: Path, monkeypatch) -> None:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "x.db")
    conn.execute("CREATE TABLE symbols (id INTEGER PRIMARY KEY)")
    conn.executemany("INSERT INTO symbols(id) VALUES (?)", [(1,), (100_000,)])
    assert graph_build.graph_workers(conn, 1) == 1
    assert graph_build.graph_workers(conn, 2) == 2
    assert graph_build.graph_workers(conn, 64) == graph_build.GRAPH_MAX_WORKERS
    # 100k symbols at ~110 MB a worker: a 250 MB budget allows two, a 100 MB one none in parallel.
    monkeypatch.setattr(graph_build, "GRAPH_WORKERS_BYTES", 250e6)
    assert graph_build.graph_workers(conn, 64) == 2
    monkeypatch.setattr(graph_build, "GRAPH_WORKERS_BYTES", 100e6)
    assert graph_build.graph_workers(conn, 64) == 1


def _write() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        tree = copy_stdlib_slice(Path(d) / "tree")
        pipeline._BULK_MIN_TASKS = 1
        got = _digests(tree, Path(d) / "idx", jobs=2)
    EXPECT.write_text(json.dumps({"python": PYTHON, "tables": got}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {EXPECT}")


if __name__ == "__main__" and "--write" in sys.argv:
    _write()
