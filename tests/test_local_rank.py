"""Local (SQL, push-based) personalized PageRank against networkx on real indexes, and the
lexical CLI search staying lean (no whole-graph load, no numpy/scipy/networkx/torch/chromadb)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

from repoloop.retrieval import graph
from repoloop.retrieval.local_rank import LocalRanker, local_pagerank
from tests.graph_fixtures import copy_stdlib_packages, index_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stdlib_index(tmp_path_factory):
    root = copy_stdlib_packages(tmp_path_factory.mktemp("lr") / "repo", ["json", "email"])
    store = index_dir(root)
    yield root, store
    store.close()


def _top(d: dict[str, float], n: int) -> list[str]:
    return [k for k, _ in sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def test_matches_networkx_personalized(stdlib_index):
    _root, store = stdlib_index
    nxg = graph.load_nx(store)
    assert nxg.number_of_edges() > 500
    seeds = {"s:json.decoder.JSONDecoder.decode": 1.0, "f:email/parser.py": 0.5, "s:json.dumps": 0.25}
    ref = nx.pagerank(nxg, alpha=graph.ALPHA, personalization=seeds, tol=1e-12, max_iter=1000)
    ours = local_pagerank(store.conn, seeds, eps=1e-7)
    assert max(abs(ours.get(k, 0.0) - v) for k, v in ref.items()) < 1e-4
    assert _top(ours, 15) == _top(ref, 15)
    # the default precision keeps the top of the ranking, reading only part of the graph
    rough = LocalRanker(store.conn)
    got = rough.rank(seeds)
    assert set(_top(got, 10)) == set(_top(ref, 10))
    assert len(rough._adj) < nxg.number_of_nodes()
    # a second query reuses the adjacency it read: same answer
    assert rough.rank(seeds) == got


def test_dangling_and_unknown_seeds(stdlib_index):
    _root, store = stdlib_index
    assert local_pagerank(store.conn, {"s:no.such.symbol": 1.0, "f:nope.py": 2.0}) == {}
    assert local_pagerank(store.conn, {}) == {}
    # A hand-made edges table: s:b has no out-edges, so its mass goes back to the seeds.
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE edges (file_id INTEGER, src TEXT, dst TEXT, kind TEXT, weight REAL, line INTEGER)")
    conn.executemany("INSERT INTO edges VALUES (1,?,?,?,?,1)", [
        ("s:a", "s:b", "calls", 1.0), ("s:a", "s:c", "references", 1.0), ("s:c", "s:a", "calls", 0.5),
        ("s:c", "s:c", "calls", 1.0),  # recursion: no rank
        ("f:m.py", "s:a", "contains", 1.0),  # and its reverse, s:a -> f:m.py
    ])
    ref_g = nx.DiGraph()
    ref_g.add_weighted_edges_from([("s:a", "s:b", 1.0), ("s:a", "s:c", 0.5), ("s:c", "s:a", 0.5),
                                   ("f:m.py", "s:a", 1.0), ("s:a", "f:m.py", 1.0)])
    seeds = {"s:b": 1.0, "s:c": 1.0, "s:unknown": 3.0}
    ref = nx.pagerank(ref_g, alpha=graph.ALPHA, personalization={"s:b": 1.0, "s:c": 1.0}, tol=1e-14, max_iter=2000)
    ours = local_pagerank(conn, seeds, eps=1e-10)
    assert set(ours) == set(ref)
    assert max(abs(ours[k] - v) for k, v in ref.items()) < 1e-6


def test_max_nodes_bounds_the_work(stdlib_index):
    _root, store = stdlib_index
    seeds = {"f:email/message.py": 1.0}
    lr = LocalRanker(store.conn, max_nodes=5)
    got = lr.rank(seeds, eps=1e-9)
    assert got and len(lr._adj) <= 5 + 1  # the seed check reads the seed itself
    assert sum(got.values()) <= 1.0 + 1e-9


@pytest.mark.parametrize("flags", [["--lexical"], []], ids=["lexical", "no-embed-index"])
def test_lexical_cli_search_is_lean(stdlib_index, flags):
    """The one-shot lexical search (--lexical, or any search of a --no-embed index) uses the graph
    signal without importing the heavy stack."""
    root, _store = stdlib_index
    probe = (
        "import runpy, sys, json\n"
        "sys.argv = ['repoloop', 'search', 'decode json document', '--repo', sys.argv[1], '--json', *sys.argv[2:]]\n"
        "try:\n    runpy.run_module('repoloop.cli', run_name='__main__')\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = sorted(m for m in ('numpy', 'scipy', 'networkx', 'torch', 'chromadb', 'rich', 'sentence_transformers')"
        " if m in sys.modules)\n"
        "print(json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", probe, str(root), *flags], capture_output=True, text=True, env=env, timeout=120)
    report = json.loads(r.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, r.stderr[-2000:]
    hits = json.loads(r.stdout)["results"]
    assert hits and any(h["path"].startswith("json/") for h in hits[:3])
    # the graph signal took part (explain names it for some hit)
    r2 = subprocess.run([sys.executable, "-m", "repoloop.cli", "search", "decode json document", "--repo", str(root),
                         "--lexical", "--json", "--explain"], capture_output=True, text=True, env=env, timeout=120)
    assert r2.returncode == 0, r2.stderr
    assert any("graph" in (h.get("signals") or {}) for h in json.loads(r2.stdout)["results"])
