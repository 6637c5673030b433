"""Hybrid retrieval on a real (lexical) index: stack traces, file:line, names, signals, CLI JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from repoloop.retrieval.api import RetrievalOptions
from repoloop.retrieval.retriever import HybridRetriever, open_retriever
from tests.test_retrieval_fixtures import index, write_repo

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_repo(tmp_path_factory.mktemp("shop"))
    index(root)
    return root


@pytest.fixture(scope="module")
def retriever(repo: Path):
    r = open_retriever(repo)
    yield r
    r.close()


def test_open_returns_the_hybrid_implementation_and_is_lexical_without_embeddings(retriever) -> None:
    assert isinstance(retriever, HybridRetriever)
    assert retriever.lexical_only  # built with --no-embed: implies lexical


def test_python_traceback_ranks_the_failing_function_first(retriever) -> None:
    trace = '''Traceback (most recent call last):
  File "/home/ci/build/app/main.py", line 3, in <module>
    checkout()
  File "/home/ci/build/shop/cart.py", line 21, in total_price
    return compute_total(self.items, prices)
  File "/home/ci/build/shop/pricing.py", line 8, in compute_total
    total += prices[sku] * quantity
KeyError: 'apple'
'''
    hits = retriever.search(trace, 5, explain=True)
    assert hits[0].path == "shop/pricing.py"
    assert hits[0].symbol == "shop.pricing.compute_total"
    assert hits[0].signals["trace"]["rank"] == 1
    # The caller frame comes right after the innermost one.
    assert hits[1].path == "shop/cart.py" and hits[1].start_line <= 21 <= hits[1].end_line


def test_trace_boost_beats_lexically_stronger_chunks(retriever) -> None:
    # The words favour apply_discount, the trace points at validate_card.
    q = ('percent discount total reduce percent discount\n  File "/srv/x/shop/payment.py", line 9, in validate_card\n'
         "ValueError: invalid literal for int()")
    hits = retriever.search(q, 3)
    assert hits[0].symbol == "shop.payment.validate_card"
    without = retriever.search(q, 3, signals="bm25")
    assert without[0].symbol == "shop.pricing.apply_discount"


def test_file_line_mention_is_recognised(retriever) -> None:
    hits = retriever.search("the bug is at shop/inventory.py:12 when stock runs out", 3, explain=True)
    assert hits[0].path == "shop/inventory.py"
    assert hits[0].start_line <= 12 <= hits[0].end_line
    assert hits[0].symbol == "shop.inventory.Inventory.reserve_stock"
    assert "trace" in hits[0].signals


def test_identifier_in_query_matches_symbol_name(retriever) -> None:
    hits = retriever.search("why does `Inventory.release_stock` not check anything", 3, explain=True)
    assert hits[0].symbol == "shop.inventory.Inventory.release_stock"
    assert hits[0].signals["name"]["rank"] == 1
    # Fuzzy: case and underscores ignored.
    hits = retriever.search("parse_http_header drops the value", 3, explain=True)
    assert hits[0].symbol == "util.text.parseHttpHeader"


def test_results_are_qualified_function_level_chunks(retriever) -> None:
    hits = retriever.search("luhn checksum of a card number", 3)
    assert hits[0].symbol == "shop.payment.validate_card"
    assert hits[0].kind == "function"
    assert hits[0].text.lstrip().startswith("def validate_card")


def test_signal_subsets_and_file_ranking(retriever) -> None:
    only_bm25 = retriever.search("slugify title for urls", 5, explain=True, signals="bm25")
    assert only_bm25 and all(set(h.signals) == {"bm25"} for h in only_bm25)
    files = retriever.search_files("reserve and release stock", 3)
    assert files[0][0] == "shop/inventory.py"
    assert len({p for p, _ in files}) == len(files)


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "repoloop.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=120)


def test_search_json_shape(repo: Path) -> None:
    out = _cli("search", "validate the card number", "--repo", str(repo), "-k", "3", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data) == {"results"}
    assert 1 <= len(data["results"]) <= 3
    for r in data["results"]:
        assert set(r) == {"path", "start_line", "end_line", "symbol", "kind", "score", "text"}
        assert not r["path"].startswith("/")
        assert 1 <= r["start_line"] <= r["end_line"]
        assert isinstance(r["score"], float)
    first = data["results"][0]
    lines = (repo / first["path"]).read_text().split("\n")[first["start_line"] - 1 : first["end_line"]]
    assert first["text"] == "\n".join(lines)
    scores = [r["score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True)

    ex = json.loads(_cli("search", "validate the card number", "--repo", str(repo), "--json", "--explain").stdout)
    assert all("signals" in r and r["signals"] for r in ex["results"])


def test_search_user_errors_exit_2_with_one_line(repo: Path) -> None:
    for args in (["--signals", "bm25,magic"], ["-k", "0"], ["--signals", "dense"]):
        out = _cli("search", "x", "--repo", str(repo), *args)
        assert out.returncode == 2
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    out = _cli("search", "x", "--repo", str(repo / "shop"))  # a directory without an index
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_lexical_search_never_imports_torch_or_chromadb(repo: Path) -> None:
    code = (
        "import sys, io, contextlib\n"
        "from repoloop.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        f"    rc = main(['search', 'card payment', '--repo', {str(repo)!r}, '--lexical', '--json'])\n"
        "    rc2 = main(['context', 'card payment', '--repo', " + repr(str(repo)) + ", '--lexical'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'chromadb', 'sentence_transformers'))\n"
        "print(rc, rc2, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "0 0 []"


def test_graph_signal_alone_follows_calls_from_the_query_hits(retriever) -> None:
    hits = retriever.search("why does Cart.total_price return the wrong total", 5, explain=True, signals="graph")
    syms = [h.symbol for h in hits]
    assert all(set(h.signals) == {"graph"} for h in hits)
    assert syms[0] == "shop.cart.Cart"  # the seed itself
    # compute_total is called by the seed: it outranks its uncalled neighbours in the same file.
    assert syms.index("shop.pricing.compute_total") < syms.index("shop.pricing.apply_discount")
    fused = retriever.search("why does Cart.total_price return the wrong total", 5, explain=True)
    assert fused[0].symbol == "shop.cart.Cart.total_price" and "graph" in fused[0].signals


def test_search_files_cli_json(repo: Path) -> None:
    out = _cli("search", "reserve and release stock", "--repo", str(repo), "--files", "--json", "-k", "2",
               "--signals", "bm25,name")
    assert out.returncode == 0, out.stderr
    files = json.loads(out.stdout)["files"]
    assert [f["path"] for f in files][0] == "shop/inventory.py" and len(files) <= 2


def test_warm_loads_the_whole_graph_and_ranks_the_same(repo: Path) -> None:
    q = "why does Cart.total_price return the wrong total"
    cold = open_retriever(repo)
    warm = open_retriever(repo)
    try:
        before = [h.symbol for h in cold.search(q, 5, signals="graph")]
        assert not cold.graph.full
        warm.warm()
        assert warm.graph.full and warm.graph.graph is not None  # the in-memory graph
        after = [h.symbol for h in warm.search(q, 5, signals="graph")]
        assert after[:2] == before[:2]
    finally:
        cold.close()
        warm.close()


def test_one_file_gets_at_most_per_file_chunks_before_other_files(tmp_path: Path) -> None:
    import dataclasses

    from repoloop.retrieval.weights import DEFAULT

    root = tmp_path / "r"
    (root / "pkg").mkdir(parents=True)
    many = "\n\n".join(f"def invoice_total_{i}(invoice):\n    return invoice.total_amount + {i}\n" for i in range(8))
    (root / "pkg" / "billing.py").write_text(many)
    (root / "pkg" / "report.py").write_text("def summarize(rows):\n    # the invoice total, per month\n    return rows\n")
    index(root)
    capped = open_retriever(root, options=RetrievalOptions(weights=dataclasses.replace(DEFAULT, per_file=2)))
    uncapped = open_retriever(root, options=RetrievalOptions(weights=dataclasses.replace(DEFAULT, per_file=0)))
    try:
        got = [h.path for h in capped.search("invoice total amount", 4)]
        assert got[:2] == ["pkg/billing.py", "pkg/billing.py"] and got[2] == "pkg/report.py", got
        assert len(got) == 4  # the cap reorders, it never drops results
        assert [h.path for h in uncapped.search("invoice total amount", 4)] == ["pkg/billing.py"] * 4
        # The default: the first 40 % of k is free (the best file's next symbols stay on top), then
        # one chunk per file until every file had its turn.
        default = open_retriever(root)
        got = [h.path for h in default.search("invoice total amount", 5)]
        assert got[:2] == ["pkg/billing.py"] * 2 and got[2] == "pkg/report.py", got
        assert got[3:] == ["pkg/billing.py"] * 2
        default.close()
    finally:
        capped.close()
        uncapped.close()


def test_path_priors_follow_weights_swapped_on_an_open_retriever(tmp_path: Path) -> None:
    """A tuning run swaps `weights` on one open retriever; the compiled path priors must follow
    (they were cached once per retriever, so every variant ranked with the first one's priors)."""
    import dataclasses

    from repoloop.retrieval.weights import DEFAULT

    root = tmp_path / "r"
    (root / "pkg").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "pkg" / "ledger.py").write_text("def ledger_balance(ledger):\n    return ledger.balance\n")
    (root / "docs" / "ledger.py").write_text("def ledger_balance(ledger):\n    return ledger.balance\n")
    index(root)
    r = open_retriever(root, options=RetrievalOptions(weights=dataclasses.replace(DEFAULT, path_boost=((r"^docs/", 0.1),))))
    try:
        assert r.search("ledger balance", 2)[0].path == "pkg/ledger.py"
        r.weights = dataclasses.replace(DEFAULT, path_boost=((r"^pkg/", 0.1),))
        assert r.search("ledger balance", 2)[0].path == "docs/ledger.py"
    finally:
        r.close()
