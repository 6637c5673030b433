"""The parse pool keeps a bounded amount of work ahead of the store and still finishes."""

from __future__ import annotations

from pathlib import Path

import pytest

from repoloop.indexer import pipeline
from repoloop.indexer.store import IndexStore


@pytest.mark.parametrize("budget", [1, 10_000])
def test_pool_with_tiny_in_flight_budget_indexes_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            budget: int) -> None:
    monkeypatch.setattr(pipeline, "_MAX_IN_FLIGHT_BYTES", budget)
    repo = tmp_path / "repo"
    repo.mkdir()
    n = pipeline._POOL_MIN_TASKS + 60  # enough to use worker processes
    for i in range(n):
        (repo / f"m{i:03d}.py").write_text(f"def f{i}(x):\n    return x + {i}\n" + "# pad\n" * (i % 7) * 50)
    rep = pipeline.index_repo(repo, jobs=2, embed=False, progress=False)
    assert rep.files_indexed == n
    with IndexStore(repo / ".repoloop" / "index.db") as store:
        names = {r[0] for r in store.conn.execute("SELECT name FROM symbols")}
    assert names == {f"f{i}" for i in range(n)}
