"""`repoloop index | status | outline | symbol` as a user runs them: real subprocesses, JSON shapes
as README documents them, user errors as one line on stderr with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SRC = {
    "shop/__init__.py": "",
    "shop/cart.py": (
        "from shop.prices import total\n\n\n"
        "class Cart:\n"
        '    """A shopping cart."""\n\n'
        "    def __init__(self):\n        self.items = []\n\n"
        "    def add(self, item, qty=1):\n        self.items.append((item, qty))\n\n"
        "    def checkout(self) -> float:\n        return total(self.items)\n"
    ),
    "shop/prices.py": "def total(items):\n    \"\"\"Sum of the prices.\"\"\"\n    return sum(q for _, q in items)\n",
    "docs/guide.md": "# Guide\n\nAdd items to the cart, then check out.\n",
}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "repoloop.cli", *args], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli") / "repo"
    for rel, text in SRC.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (root / ".env").write_text("TOKEN=x\n")
    (root / "logo.bin").write_bytes(b"\0\1\2")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    r = run("index", "--no-embed", cwd=root)  # no PATH: the cwd's repository root
    assert r.returncode == 0, r.stderr
    assert "4 files" in r.stdout and "symbols" in r.stdout and "edges" in r.stdout
    assert r.stdout.count("\n") == 1  # one summary line, no progress bars off a terminal
    return root


def test_index_json_report(repo: Path) -> None:
    r = run("index", str(repo), "--no-embed", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["files_seen"] == 4 and rep["files_indexed"] == 0 and rep["files_unchanged"] == 4
    assert rep["skips"] == {"secret": 1, "unsupported_type": 1}
    assert set(rep["seconds"]) >= {"walk", "parse", "store", "graph", "embed"}


def test_status_json(repo: Path) -> None:
    r = run("status", "--repo", str(repo), "--json")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["files"] == 4 and st["languages"] == {"python": 3, "text": 1}
    assert st["symbols"] >= 5 and st["chunks"] >= 4
    assert st["skips"] == {"secret": 1, "unsupported_type": 1}
    assert {"path": ".env", "reason": "secret"} in st["skipped"]
    assert st["up_to_date"] is True and st["stale_counts"] == {"changed": 0, "added": 0, "deleted": 0}
    assert st["parser_current"] is True
    assert st["last_run"]["files_seen"] == 4


def test_status_reports_stale_files(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    (repo / "a.py").write_text("def a():\n    pass\n")
    (repo / "b.py").write_text("def b():\n    pass\n")
    assert run("index", str(repo), "--no-embed", "--quiet").returncode == 0
    (repo / "a.py").write_text("def a2():\n    pass\n")
    (repo / "b.py").unlink()
    (repo / "c.py").write_text("def c():\n    pass\n")
    st = json.loads(run("status", "--repo", str(repo), "--json").stdout)
    assert st["stale"] == {"changed": ["a.py"], "added": ["c.py"], "deleted": ["b.py"]}
    assert st["up_to_date"] is False
    human = run("status", "--repo", str(repo))
    assert human.returncode == 0 and "1 changed, 1 added, 1 deleted" in human.stdout


def test_outline_json_shape(repo: Path) -> None:
    r = run("outline", "shop/cart.py", "--repo", str(repo), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["path"] == "shop/cart.py"
    names = [s["name"] for s in data["symbols"]]
    assert names == ["Cart", "Cart.__init__", "Cart.add", "Cart.checkout"]
    add = data["symbols"][2]
    assert add == {"name": "Cart.add", "qualname": "shop.cart.Cart.add", "kind": "method", "start_line": 10,
                   "end_line": 11, "signature": add["signature"]}
    assert add["signature"].startswith("def add(self, item, qty=1)")
    # A path relative to the cwd works too, and people get a readable listing.
    r = run("outline", "cart.py", cwd=repo / "shop")
    assert r.returncode == 0 and "def checkout" in r.stdout


def test_symbol_json_shape_and_lookup_forms(repo: Path) -> None:
    r = run("symbol", "Cart.checkout", "--repo", str(repo), "--json", "--refs", "--callers", "--callees")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) == {"definitions", "refs", "callers", "callees"}
    (d,) = data["definitions"]
    assert d == {"qualname": "shop.cart.Cart.checkout", "kind": "method", "path": "shop/cart.py",
                 "start_line": 13, "end_line": 14, "signature": d["signature"], "doc": ""}
    # The graph (built during `index`) answers callers/callees.
    assert "shop.prices.total" in [c["qualname"] for c in data["callees"]]
    callers = json.loads(run("symbol", "total", "--repo", str(repo), "--json", "--callers").stdout)["callers"]
    assert [(c["qualname"], c["path"], c["line"]) for c in callers] == [("shop.cart.Cart.checkout", "shop/cart.py", 14)]
    for name in ("checkout", "shop.cart.Cart.checkout"):  # bare and fully qualified
        data = json.loads(run("symbol", name, "--repo", str(repo), "--json").stdout)
        assert [x["qualname"] for x in data["definitions"]] == ["shop.cart.Cart.checkout"]
    data = json.loads(run("symbol", "total", "--repo", str(repo), "--json", "--refs").stdout)
    assert data["definitions"][0]["doc"] == "Sum of the prices."
    refs = data["refs"]
    assert {"qualname": "shop.cart.Cart.checkout", "path": "shop/cart.py", "line": 14} in [
        {k: r[k] for k in ("qualname", "path", "line")} for r in refs]
    assert all(set(r) >= {"qualname", "path", "line"} for r in refs)


def test_symbol_not_found_is_exit_1(repo: Path) -> None:
    r = run("symbol", "NoSuchThing", "--repo", str(repo), "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout)["definitions"] == []
    assert r.stderr.strip() == "repoloop: no symbol named NoSuchThing"


@pytest.mark.parametrize("args, message", [
    (["status", "--repo", "{empty}"], "run `repoloop index` first"),
    (["symbol", "x", "--repo", "{empty}"], "run `repoloop index` first"),
    (["outline", "nope.py", "--repo", "{repo}"], "nope.py: not in the index"),
    (["outline", ".env", "--repo", "{repo}"], "not in the index (skipped: secret)"),
    (["index", "{missing}"], "not a directory"),
    (["status", "--repo", "{missing}"], "not a directory"),
    (["index", "{repo}", "--jobs", "0", "--no-embed"], "--jobs must be at least 1"),
    (["index", "{repo}", "--max-file-size", "-5", "--no-embed"], "--max-file-size must be positive"),
    (["index", "{repo}", "--jobs", "many"], "invalid int value"),
    (["symbol", "x", "--depth", "0", "--repo", "{repo}"], "--depth must be at least 1"),
])
def test_user_errors_are_one_line_exit_2(repo: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir(exist_ok=True)
    subst = {"{repo}": str(repo), "{empty}": str(tmp_path / "empty"), "{missing}": str(tmp_path / "missing")}
    r = run(*[subst.get(a, a) for a in args])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert message in r.stderr and r.stderr.startswith("repoloop:")


def test_lookup_across_qualname_separators(tmp_path: Path) -> None:
    from repoloop.indexer.lookup import find_definitions, outline
    from repoloop.indexer.pipeline import index_repo
    from repoloop.indexer.store import IndexStore

    (tmp_path / "src").mkdir()
    (tmp_path / "src/lib.rs").write_text(
        "pub struct Cart;\n\nimpl Cart {\n    pub fn total(&self) -> u32 {\n        0\n    }\n}\n")
    (tmp_path / "shop.py").write_text("class Cart:\n    def total(self):\n        return 0\n")
    index_repo(tmp_path, embed=False, progress=False)
    with IndexStore.open(tmp_path, readonly=True) as store:
        def quals(name: str) -> list[str]:
            return [d["qualname"] for d in find_definitions(store, name)]

        assert quals("crate::Cart::total") == ["crate::Cart::total"]  # exact
        both = ["crate::Cart::total", "shop.Cart.total"]
        assert sorted(quals("Cart::total")) == sorted(quals("Cart.total")) == both  # either separator
        assert sorted(quals("total")) == ["crate::Cart::total", "shop.Cart.total"]
        assert quals("art.total") == []  # a suffix is whole components, not characters
        assert quals("shop.Cart.total") == ["shop.Cart.total"]
        names = [s["name"] for s in outline(store, "src/lib.rs")["symbols"]]
        assert names == ["Cart", "Cart", "Cart::total"]  # struct, impl block, method


def test_text_output_piped_keeps_long_lines_whole(tmp_path: Path) -> None:
    """Off a terminal rich would wrap at 80 columns: a caller's path and name, or a long signature,
    must stay on one line so that grep, editors and pagers read them."""
    deep = "services/billing_and_invoicing_platform/internal/reconciliation_engine"
    (tmp_path / deep).mkdir(parents=True)
    (tmp_path / deep / "ledger_settlement_adapters.py").write_text(
        "from services.helpers import settle\n\n\n"
        "def reconcile_outstanding_ledger_entries_against_the_bank_statement(ledger, statement, tolerance=0.01):\n"
        "    return settle(ledger, statement)\n")
    (tmp_path / "services").joinpath("helpers.py").write_text("def settle(a, b):\n    return a\n")
    assert run("index", str(tmp_path), "--no-embed").returncode == 0
    r = run("symbol", "settle", "--repo", str(tmp_path), "--callers")
    assert r.returncode == 0, r.stderr
    caller = next(ln for ln in r.stdout.splitlines() if "ledger_settlement_adapters.py" in ln)
    assert f"{deep}/ledger_settlement_adapters.py:" in caller
    assert caller.rstrip().endswith("reconcile_outstanding_ledger_entries_against_the_bank_statement"), r.stdout
    r = run("outline", f"{deep}/ledger_settlement_adapters.py", "--repo", str(tmp_path))
    assert any("statement, tolerance=0.01)" in ln and "reconcile_outstanding" in ln for ln in r.stdout.splitlines())


def test_agent_result_diff_is_printed_unwrapped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from repoloop.agent.loop import RunResult, Usage
    from repoloop.cli.agent_cmds import _print_result

    line = "+    return compute_the_total_price_of_every_item_in_the_cart(items, prices, discounts, taxes)"
    diff = f"--- a/shop.py\n+++ b/shop.py\n@@ -1 +1 @@\n-    return 0\n{line}\n"
    _print_result(RunResult("success", "r1", "repoloop/r1", diff, 3, Usage(), 0.0, False, tmp_path / "r1.jsonl",
                            reason="tests pass"), lambda text: text)
    out = capsys.readouterr().out
    assert line in out.splitlines()
