"""Function-level localization (`repoloop locate`) on a real lexical index of a small repository:
the right function ranks first for a crafted issue and for a stack trace, inside classes whose
methods share one chunk; the CLI's JSON, exit codes; the agent's observation carries it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from repoloop.retrieval.api import RetrievalOptions
from repoloop.retrieval.locate import Locator, name_words
from repoloop.retrieval.retriever import open_retriever
from tests.test_retrieval_fixtures import index, write_repo

ORDERS = '''"""Orders and their money."""


class OrderBook:
    """Every order of a shop, by id."""

    def __init__(self):
        self.orders = {}
        self.refunded = set()

    def add_order(self, order_id, amount):
        self.orders[order_id] = amount

    def cancel_order(self, order_id):
        self.orders.pop(order_id, None)

    def refund_order(self, order_id, wallet):
        amount = self.orders[order_id]
        wallet.credit(amount)
        return amount

    def order_total(self):
        return sum(self.orders.values())

    def apply_coupon(self, order_id, coupon):
        amount = self.orders[order_id]
        self.orders[order_id] = amount - amount * coupon.rate / coupon.base
        return self.orders[order_id]
'''

WALLET = '''"""Customer wallets."""


class Wallet:
    def __init__(self):
        self.balance = 0

    def credit(self, amount):
        self.balance += amount

    def debit(self, amount):
        if amount > self.balance:
            raise ValueError("insufficient balance")
        self.balance -= amount


def transfer(src, dst, amount):
    src.debit(amount)
    dst.credit(amount)
'''

SHIPPING = '''"""Shipping costs."""


def shipping_cost(weight, zone):
    base = {"eu": 5, "us": 8}[zone]
    return base + weight * 0.5


def free_shipping_threshold(zone):
    return {"eu": 50, "us": 75}[zone]
'''

DURATION_GO = '''package timeutil

import "strings"

// ParseDuration reads "1h30m" style durations into seconds.
func ParseDuration(s string) int {
	total := 0
	for _, part := range strings.Split(s, "h") {
		total += len(part)
	}
	return total
}

// FormatDuration writes seconds as "1h30m".
func FormatDuration(sec int) string {
	return strings.Repeat("h", sec/3600)
}
'''


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_repo(tmp_path_factory.mktemp("locshop"), {
        "shop/__init__.py": "",
        "shop/orders.py": ORDERS,
        "shop/wallet.py": WALLET,
        "shop/shipping.py": SHIPPING,
        "timeutil/duration.go": DURATION_GO,
    })
    index(root)
    return root


@pytest.fixture(scope="module")
def retriever(repo: Path):
    r = open_retriever(repo)
    yield r
    r.close()


def test_name_words_split_snake_and_camel_case() -> None:
    assert name_words("refund_order") == ["refund", "order"]
    assert name_words("parseHTTPDate") == ["parse", "http", "date"]


def test_crafted_issue_ranks_the_method_first_inside_its_class(retriever) -> None:
    got = Locator(retriever).locate("Refunding an order twice credits the customer's wallet twice", 5)
    assert got.files[0].path == "shop/orders.py"
    first = got.files[0].functions[0]
    assert first.symbol == "shop.orders.OrderBook.refund_order"
    assert first.kind == "method"
    assert "name_words" in first.evidence and "chunks" in first.evidence
    # The class holding it is not preferred over the method, and an unrelated method scores less.
    scores = {f.symbol: f.score for f in got.files[0].functions}
    assert scores.get("shop.orders.OrderBook", 0) < first.score
    assert scores.get("shop.orders.OrderBook.order_total", 0) < first.score


def test_stack_trace_ranks_the_innermost_frames_function_first(retriever) -> None:
    trace = '''Traceback (most recent call last):
  File "/srv/app/checkout.py", line 40, in pay
    book.apply_coupon(order_id, coupon)
  File "/srv/app/shop/orders.py", line 27, in apply_coupon
    self.orders[order_id] = amount - amount * coupon.rate / coupon.base
ZeroDivisionError: division by zero
'''
    got = Locator(retriever).locate(trace, 5)
    assert got.files[0].path == "shop/orders.py"
    first = got.files[0].functions[0]
    assert first.symbol == "shop.orders.OrderBook.apply_coupon"
    assert first.start_line <= 27 <= first.end_line
    assert first.evidence["trace"] > 0
    # Flattened for the scoring contract: the first result is that function.
    res = got.results()
    assert res[0]["path"] == "shop/orders.py" and res[0]["symbol"] == "shop.orders.OrderBook.apply_coupon"


def test_mentioned_identifier_wins_over_words_and_files_keep_search_order(retriever) -> None:
    q = "transfer() leaves the source wallet debited when the credit fails"
    got = Locator(retriever).locate(q, 5)
    assert got.files[0].path == "shop/wallet.py"
    assert got.files[0].functions[0].symbol == "shop.wallet.transfer"
    # Same files, same order as search's unique files.
    seen: list[str] = []
    for h in retriever.search(q, 5):
        if h.path not in seen:
            seen.append(h.path)
    assert [f.path for f in got.files] == seen[: len(got.files)]


def test_go_function_by_its_words(retriever) -> None:
    got = Locator(retriever).locate("parsing a duration like 1h30m gives the wrong number of seconds", 3)
    assert got.files[0].path == "timeutil/duration.go"
    assert got.files[0].functions[0].name == "ParseDuration"


def _cli(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "repoloop.cli", "locate", *args, "--repo", str(repo)],
                          capture_output=True, text=True, timeout=120)


def test_cli_json_lists_files_with_functions_and_flat_results(repo: Path) -> None:
    p = _cli(repo, "Refunding an order twice credits the customer's wallet twice", "--json", "-k", "3")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["files"][0]["path"] == "shop/orders.py"
    assert data["files"][0]["functions"][0]["symbol"] == "shop.orders.OrderBook.refund_order"
    assert data["results"][0]["symbol"] == "shop.orders.OrderBook.refund_order"
    assert len(data["files"]) <= 3
    text = _cli(repo, "Refunding an order twice credits the customer's wallet twice", "-k", "1")
    assert text.returncode == 0 and "refund_order" in text.stdout


def test_cli_exit_codes(repo: Path, tmp_path: Path) -> None:
    none = _cli(repo, "qqxzv wwkjhq", "--json")
    assert none.returncode == 1, none.stdout + none.stderr
    assert json.loads(none.stdout)["files"] == []
    empty = _cli(repo, "   ")
    assert empty.returncode == 2 and "empty" in empty.stderr and "Traceback" not in empty.stderr
    bare = tmp_path / "bare"
    bare.mkdir()
    missing = _cli(bare, "refund")
    assert missing.returncode == 2 and "repoloop index" in missing.stderr


def test_observer_heads_the_context_with_likely_locations(repo: Path) -> None:
    from repoloop.agent.observe import Observer

    obs = Observer.open(repo, None, options=RetrievalOptions(), lexical_only=True, rerank=False)
    try:
        text, items = obs.context("Refunding an order twice credits the customer's wallet twice", 2000)
    finally:
        obs.close()
    assert text.startswith("Likely locations")
    first = text.split("\n")[1]
    assert first.startswith("- shop/orders.py: OrderBook.refund_order (")
    assert obs.located[0] == {"path": "shop/orders.py", "functions": obs.located[0]["functions"]}
    assert obs.located[0]["functions"][0] == "shop.orders.OrderBook.refund_order"
    assert items  # the context pack itself is still there


class _TransferEmbedder:
    """Chunks defining `transfer` point one way, everything else another; the query points at them."""

    name = "locate-keyword-test"
    dim = 2

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [[1.0, 0.0] if ("def transfer" in t or t.startswith("QUERY")) else [0.0, 1.0] for t in texts]


def test_rerank_vectors_give_each_definition_its_own_dense_evidence(repo: Path) -> None:
    from repoloop.indexer.config import EmbedConfig

    shared = EmbedConfig(vector_cache=repo.parent / "locate-vectors.db")
    emb = _TransferEmbedder()
    with open_retriever(repo, options=RetrievalOptions(rerank=True, embed=shared), embedder=emb) as r:
        got = Locator(r).locate("QUERY money moves between wallets: balance credit debit", 5)
        assert emb.calls > 0  # the re-rank embedded chunks at query time
        wallet = next(f for f in got.files if f.path == "shop/wallet.py")
        ev = {f.symbol: f.evidence for f in wallet.functions}
        assert ev["shop.wallet.transfer"].get("dense", 0) > 0.4
        assert all(e.get("dense", 0) == 0 for s, e in ev.items() if s != "shop.wallet.transfer")
    with open_retriever(repo, options=RetrievalOptions(rerank=False)) as r:  # lexical: no dense evidence at all
        got = Locator(r).locate("QUERY money moves between wallets: balance credit debit", 5)
        assert not any("dense" in fn.evidence for f in got.files for fn in f.functions)


def test_observer_locates_from_the_first_part_of_a_task_too_long_to_search(repo: Path) -> None:
    from repoloop.agent.observe import Observer

    task = "Refunding an order twice credits the customer's wallet twice\n" + "log line\n" * 5000
    obs = Observer.open(repo, None, options=RetrievalOptions(), lexical_only=True, rerank=False)
    try:
        text, _ = obs.context(task, 2000)
    finally:
        obs.close()
    assert len(task) > 32_768
    assert text.startswith("Likely locations"), obs.notes
    assert not any("locate" in n for n in obs.notes)


def test_a_name_defined_several_times_in_a_file_is_listed_once(tmp_path: Path) -> None:
    """TypeScript overloads (three definitions of one name) take one line of the file's list, the
    best of them: the others would crowd out the file's other functions."""
    root = write_repo(tmp_path / "repo", {
        "src/errors.ts": (
            "export function treeifyError(e: string): string;\n"
            "export function treeifyError(e: number): number;\n"
            "export function treeifyError(e: any): any {\n  return flattenIssues(e);\n}\n"
            "export function flattenIssues(e: any): any {\n  return e.issues.map((i: any) => i.message);\n}\n"
            "export function formatError(e: any): string {\n  return String(e);\n}\n"),
    })
    index(root)
    with open_retriever(root) as r:
        syms = [f.symbol for f in Locator(r).locate("treeifyError loses nested issues", 3).files[0].functions]
    assert syms.count(syms[0]) == 1 and syms[0].endswith("treeifyError")
    assert len(syms) == len(set(syms)) and any(s.endswith("flattenIssues") for s in syms)
