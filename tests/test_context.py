"""The budgeted context pack: never over budget (property test over many budgets, tiny ones
included), exact counts with the offline tokenizer, grouping/merging/elisions, and the CLI JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repoloop.retrieval.api import RetrievalOptions, SearchHit
from repoloop.retrieval.context import build_context
from repoloop.retrieval.retriever import HybridRetriever, open_retriever
from repoloop.retrieval.tokens_count import EstimateCounter, get_counter
from tests.test_retrieval_fixtures import index, write_repo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory):
    root = write_repo(tmp_path_factory.mktemp("shop"))
    index(root)
    r = open_retriever(root)
    yield r
    r.close()


def test_offline_tokenizer_is_exact_cl100k() -> None:
    c = get_counter()
    assert c.exact and c.name.startswith("cl100k")
    assert c.encoding.encode("hello world") == [15339, 1917]  # cl100k ids, known values
    assert c.count("def foo(bar):\n    return bar + 1") == 10
    assert c.count("") == 0


@given(st.text(min_size=0, max_size=400))
@settings(max_examples=200, deadline=None)
def test_estimate_never_under_counts(text: str) -> None:
    assert EstimateCounter().count(text) >= get_counter().count(text)


@given(budget=st.one_of(st.integers(0, 40), st.integers(0, 3000)),
       task=st.sampled_from(["card payment validation", "apply a discount to the cart total",
                             "stock reservation fails", "slugify titles", "x"]))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_context_is_never_over_budget(retriever, budget: int, task: str) -> None:
    pack = retriever.context(task, budget)
    assert pack.budget == budget
    assert pack.tokens == retriever.counter.count(pack.text) <= budget
    if budget >= 600 and task != "x":  # room for at least the best chunk (and "x" matches nothing)
        assert any(i.kind == "code" for i in pack.items)
    if not pack.text:
        assert pack.tokens == 0 and pack.items == []


def test_context_groups_by_file_merges_overlaps_and_elides() -> None:
    lines = [f"line {i}" for i in range(1, 41)]
    src = {"a.py": lines, "b.py": lines}
    hits = [
        SearchHit("a.py", 30, 32, "a.g", "function", 0.9, "\n".join(lines[29:32])),
        SearchHit("b.py", 5, 6, "b.f", "function", 0.8, "\n".join(lines[4:6])),
        SearchHit("a.py", 2, 4, "a.f", "function", 0.7, "\n".join(lines[1:4])),
        SearchHit("a.py", 4, 8, "a.h", "function", 0.6, "\n".join(lines[3:8])),  # overlaps 2-4
    ]
    pack = build_context(hits, 10_000, get_counter(), src.get)
    assert pack.text.index("# a.py") < pack.text.index("# b.py")  # the file with the best hit first
    a_part = pack.text.split("# b.py")[0]
    assert "# a.py (lines 2-8, 30-32)" in a_part
    assert "line 8\n...\nline 30" in a_part  # elision between spans, line order
    assert a_part.count("line 4\n") == 1  # merged, not repeated
    spans = [(i.path, i.start_line, i.end_line) for i in pack.items]
    assert ("a.py", 2, 8) in spans and ("a.py", 30, 32) in spans
    # A budget too small for every chunk keeps the best that fit.
    small = build_context(hits, get_counter().count("# a.py (lines 30-32)\nline 30\nline 31\nline 32"),
                          get_counter(), src.get)
    assert [(i.path, i.start_line) for i in small.items] == [("a.py", 30)]


def test_context_adds_a_repo_map_for_leftover_budget(retriever) -> None:
    pack = retriever.context("card payment validation", 3000)
    assert "# Repository map (signatures)" in pack.text
    assert pack.items[-1].kind == "map" and pack.items[-1].tokens > 0
    assert pack.tokens <= 3000


def test_context_cli_json(retriever) -> None:
    out = subprocess.run([sys.executable, "-m", "repoloop.cli", "context", "validate the card number", "--repo",
                          str(retriever.repo), "--budget", "300", "--json", "--lexical"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["budget"] == 300 and 0 < data["tokens"] <= 300 and data["exact"] is True
    assert get_counter().count(data["text"]) == data["tokens"]
    for item in data["items"]:
        assert set(item) >= {"path", "start_line", "end_line", "score", "tokens"}
    assert data["items"][0]["path"] == "shop/payment.py"
    bad = subprocess.run([sys.executable, "-m", "repoloop.cli", "context", "x", "--repo", str(retriever.repo),
                          "--budget", "-5"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_without_a_tokenizer_the_estimate_still_keeps_the_budget(retriever) -> None:
    exact = get_counter()
    for budget in (0, 7, 50, 400, 1500):
        r = HybridRetriever(retriever.repo, retriever.idx, retriever.store,
                            RetrievalOptions(lexical_only=True, weights=retriever.weights), counter=EstimateCounter())
        pack = r.context("apply a discount to the cart total", budget)
        assert pack.tokens == EstimateCounter().count(pack.text) <= budget
        assert exact.count(pack.text) <= budget
