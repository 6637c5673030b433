"""The localization benchmark's per-instance snapshots (benchmarks/loc_snapshots.py): a real git
history, real tree moves, real index runs in child processes, real SQLite copies, queried with the
real retriever after the working index moved on (or was deleted)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import loc_repoloop  # noqa: E402
import loc_snapshots  # noqa: E402
import materialize  # noqa: E402

V1 = {
    "shop/pay.py": "def charge_card(amount):\n    \"\"\"Charge a credit card.\"\"\"\n    return amount\n",
    "shop/cart.py": "from shop.pay import charge_card\n\n\ndef checkout(items):\n    return charge_card(sum(items))\n",
}
V2 = {  # charge_card renamed and moved; a new module
    "shop/billing.py": "def bill_invoice(amount):\n    \"\"\"Bill an invoice instead.\"\"\"\n    return amount\n",
    "shop/cart.py": "from shop.billing import bill_invoice\n\n\ndef checkout(items):\n    return bill_invoice(sum(items))\n",
}


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout.strip()


@pytest.fixture()
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """acme/demo as a bare mirror with two commits, V1 then V2 (pay.py deleted)."""
    src = tmp_path / "src"
    src.mkdir()
    _git(src, "init", "-q")
    commits = []
    for i, files in enumerate((V1, V2)):
        for old in src.glob("shop/*.py"):
            old.unlink()
        for p, text in files.items():
            (src / p).parent.mkdir(parents=True, exist_ok=True)
            (src / p).write_text(text)
        _git(src, "add", "-A")
        _git(src, "commit", "-q", "-m", f"v{i + 1}", "--date", f"2020-01-0{i + 1}T00:00:00")
        commits.append(_git(src, "rev-parse", "HEAD"))
    mirror = tmp_path / "mirror"
    (mirror / "acme+demo").mkdir(parents=True)
    _git(tmp_path, "clone", "-q", "--bare", str(src), str(mirror / "acme+demo" / "repo"))
    monkeypatch.setattr(materialize, "MIRROR_ROOT", mirror)
    return commits[0], commits[1]


def _files(runner: loc_repoloop.RepoloopRunner, snap: loc_snapshots.Snapshot, query: str) -> list[str]:
    runner.index_dirs[snap.root] = snap.index_dir
    res, _ = runner.search(snap.root, query, "fused-lex", k=5)
    runner.forget(snap.root)
    assert res is not None
    return [r["path"] for r in res]


def test_build_then_query_each_instance_at_its_own_commit(tmp_path: Path, history: tuple[str, str]) -> None:
    c1, c2 = history
    recs = [{"id": "acme__demo-2", "repo": "acme/demo", "base_commit": c2},
            {"id": "acme__demo-1", "repo": "acme/demo", "base_commit": c1}]
    snaps_dir, trees = tmp_path / "snaps", tmp_path / "trees"
    loc_snapshots.build(recs, snaps_dir, trees, embed=False)
    snaps = loc_snapshots.load(snaps_dir)
    assert set(snaps) == {"acme__demo-1", "acme__demo-2"}
    # visited in commit-date order: the second instance was an incremental move, not a fresh tree
    assert snaps["acme__demo-1"].meta["moved_paths"] == -1
    assert snaps["acme__demo-2"].meta["moved_paths"] == 3
    assert snaps["acme__demo-2"].meta["stats"]["files"] == 2
    # each snapshot stands alone: the working index is gone, and no tree is needed to search
    shutil.rmtree(trees)
    runner = loc_repoloop.RepoloopRunner(["fused-lex"])
    runner.signals["fused-lex"] = loc_repoloop.lexical_signals()
    assert "shop/pay.py" in _files(runner, snaps["acme__demo-1"], "charge_card credit card")
    at2 = _files(runner, snaps["acme__demo-2"], "charge_card bill_invoice credit card invoice")
    assert "shop/pay.py" not in at2 and "shop/billing.py" in at2
    assert loc_snapshots.check_fingerprint(snaps) == []
    # a restart builds nothing again
    before = snaps["acme__demo-1"].meta["created"]
    loc_snapshots.build(recs, snaps_dir, trees, embed=False)
    assert loc_snapshots.load(snaps_dir)["acme__demo-1"].meta["created"] == before


def test_inline_weight_variant_is_relative_to_the_runner_weights() -> None:
    from repoloop.retrieval.weights import DEFAULT

    w = loc_repoloop.RepoloopRunner(["fused-lex"])._variant("file=1.5+rrf_k=30")
    assert w.signal["file"] == 1.5 and w.rrf_k == 30.0
    assert w.signal["bm25"] == DEFAULT.signal["bm25"]
