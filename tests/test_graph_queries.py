"""Graph queries on a small real repository: callers/callees with depth, deps, ambiguity weights,
PageRank (fast path == networkx), the global-rank cache, and the `deps` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import networkx as nx
import pytest

from repoloop.indexer.graph.build import generation, update_edges
from repoloop.retrieval import graph
from tests.graph_fixtures import edges, index_dir

FILES = {
    "app/__init__.py": "from .core import run\n",
    "app/core.py": """
        from app.util import helper, Store
        from . import util

        def run(x):
            s = Store()
            s.save(x)
            return step(helper(x)) + util.twice(x)

        def step(y):
            return helper(y)
        """,
    "app/util.py": """
        import os

        def helper(v):
            return os.path.join(v, "x")

        def twice(v):
            return helper(v) * 2

        class Base:
            def save(self, x):
                return self.write(x)

            def write(self, x):
                return x

        class Store(Base):
            def load(self):
                return self.write(1)
        """,
    "app/other.py": """
        class Cache:
            def save(self, x):
                return x

        def use(obj):
            return obj.save(1)
        """,
    "app/cli.py": """
        from app import run

        def main():
            run(1)
        """,
}


def write_repo(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


@pytest.fixture()
def repo(tmp_path):
    root = write_repo(tmp_path / "repo", FILES)
    store = index_dir(root)
    yield root, store
    store.close()


def test_edges_of_each_kind(repo):
    _root, store = repo
    e = edges(store)
    assert ("f:app/core.py", "f:app/util.py", "imports") in e
    assert ("f:app/__init__.py", "f:app/core.py", "imports") in e
    assert ("f:app/cli.py", "f:app/__init__.py", "imports") in e
    assert ("f:app/util.py", "s:app.util.Base", "contains") in e
    assert ("s:app.util.Base", "s:app.util.Base.save", "contains") in e
    assert ("s:app.util.Store", "s:app.util.Base", "inherits") in e
    assert ("s:app.core.run", "s:app.util.Store", "calls") in e  # class instantiation
    assert ("s:app.core.run", "s:app.core.step", "calls") in e  # same module
    assert ("s:app.core.run", "s:app.util.helper", "calls") in e  # from-import
    assert ("s:app.core.run", "s:app.util.twice", "calls") in e  # module attribute
    assert ("s:app.util.Store.load", "s:app.util.Base.write", "calls") in e  # self.m, inherited
    assert ("s:app.cli.main", "s:app.core.run", "calls") in e  # re-exported by the package
    assert not any(d.startswith("s:os") for _s, d, _k in e)  # outside the repo: no edge


def test_ambiguous_receiver_gives_weak_edges(repo):
    _root, store = repo
    rows = store.conn.execute(
        "SELECT dst, weight FROM edges WHERE src='s:app.other.use' AND kind='calls' ORDER BY dst").fetchall()
    assert [(d, round(w, 3)) for d, w in rows] == [("s:app.other.Cache.save", 0.25), ("s:app.util.Base.save", 0.25)]
    # a resolved receiver type is certain: s.save(x) where s = Store() is only by name, but
    # self.write in Base.save resolves exactly
    w = store.conn.execute("SELECT weight FROM edges WHERE src='s:app.util.Base.save' "
                           "AND dst='s:app.util.Base.write'").fetchone()[0]
    assert w == 1.0


def test_callers_and_callees_with_depth(repo):
    _root, store = repo
    c1 = graph.callers(store, "app.util.helper")
    assert {(c["qualname"], c["path"]) for c in c1} == {
        ("app.core.run", "app/core.py"), ("app.core.step", "app/core.py"), ("app.util.twice", "app/util.py")}
    assert all(c["depth"] == 1 and c["line"] for c in c1)
    c2 = graph.callers(store, "app.util.helper", depth=2)
    assert ("app.cli.main", 2) in {(c["qualname"], c["depth"]) for c in c2}
    out = graph.callees(store, "app.core.run")
    by_q = {c["qualname"]: c for c in out}
    assert set(by_q) >= {"app.util.helper", "app.core.step", "app.util.Store", "app.util.twice"}
    assert by_q["app.core.step"]["path"] == "app/core.py" and by_q["app.core.step"]["line"] == 9
    deep = {c["qualname"]: c["depth"] for c in graph.callees(store, "app.cli.main", depth=3)}
    assert deep["app.core.run"] == 1 and deep["app.core.step"] == 2 and deep["app.util.helper"] == 2
    assert graph.callers(store, "app.nothing.here") == []


def test_deps(repo):
    _root, store = repo
    d = graph.deps(store, "app/core.py")
    assert d["path"] == "app/core.py"
    assert [x["path"] for x in d["imports"]] == ["app/util.py"]
    assert d["imports"][0]["line"] == 1
    assert [x["path"] for x in d["imported_by"]] == ["app/__init__.py"]
    u = graph.deps(store, "app/util.py")
    assert u["unresolved"] == ["os"]
    assert {x["path"] for x in u["imported_by"]} == {"app/core.py"}


def test_pagerank_matches_networkx(repo):
    _root, store = repo
    g = graph.load_graph(store)
    nxg = graph.load_nx(store)
    ours = graph.pagerank(g)
    ref = nx.pagerank(nxg, alpha=graph.ALPHA, tol=1e-10, max_iter=500)
    assert set(ours) == set(ref)
    assert max(abs(ours[k] - ref[k]) for k in ref) < 1e-4
    assert abs(sum(ours.values()) - 1.0) < 1e-6
    seeds = {"f:app/cli.py": 1.0}
    ours_p = graph.pagerank(g, seeds)
    ref_p = nx.pagerank(nxg, alpha=graph.ALPHA, personalization=seeds, tol=1e-10, max_iter=500)
    assert max(abs(ours_p[k] - ref_p[k]) for k in ref_p) < 1e-4
    # personalization moves rank towards the seed's neighbourhood
    assert ours_p["s:app.core.run"] > ours["s:app.core.run"]
    assert ours_p["s:app.other.Cache"] < ours["s:app.other.Cache"]
    # files: the helper module everyone uses outranks the leaf
    fr = graph.file_ranks(g)
    assert fr["app/util.py"] > fr["app/cli.py"]
    assert graph.file_ranks(store) == pytest.approx(fr, rel=1e-3)


def test_global_rank_is_cached_by_generation(repo):
    root, store = repo
    first = graph.pagerank(store)
    gen = generation(store)
    (cached_gen, blob), = store.conn.execute("SELECT generation, ranks FROM graph_rank_cache").fetchall()
    assert cached_gen == gen and json.loads(blob) == first
    doctored = {k: 2 * v for k, v in first.items()}
    store.conn.execute("UPDATE graph_rank_cache SET ranks=?", (json.dumps(doctored),))
    assert graph.pagerank(store)["f:app/cli.py"] == pytest.approx(2 * first["f:app/cli.py"])  # a cache hit
    (root / "app/extra.py").write_text("from app.util import helper\n\ndef more():\n    return helper(2)\n")
    store.close()
    store = index_dir(root)
    assert generation(store) > gen
    fresh = graph.pagerank(store)
    assert "s:app.extra.more" in fresh
    assert abs(sum(fresh.values()) - 1.0) < 1e-6
    store.close()


def test_unchanged_update_is_a_noop(repo):
    _root, store = repo
    gen = generation(store)
    before = edges(store)
    assert update_edges(store, set(), set()) == len(before)
    assert generation(store) == gen


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "repoloop.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_deps_cli(repo):
    root, store = repo
    r = _cli("deps", "app/core.py", "--repo", str(root), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d) == {"path", "imports", "imported_by", "unresolved"}
    assert d["imports"] == [{"path": "app/util.py", "line": 1}]
    # relative to the cwd works too
    r = _cli("deps", "util.py", "--repo", str(root), cwd=root / "app")
    assert r.returncode == 0 and "app/core.py" in r.stdout
    r = _cli("deps", "nope.py", "--repo", str(root))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = _cli("deps", "app/core.py", "--repo", str(root / "missing"))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_symbol_cli_callers_and_callees(repo):
    root, _store = repo
    r = _cli("symbol", "helper", "--repo", str(root), "--callers", "--callees", "--depth", "2", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    callers = {(c["qualname"], c["depth"]) for c in d["callers"]}
    assert {("app.core.run", 1), ("app.core.step", 1), ("app.util.twice", 1), ("app.cli.main", 2)} <= callers
    assert all(set(c) >= {"qualname", "path", "line"} for c in d["callers"] + d["callees"])
