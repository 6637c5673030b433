"""The graph generation moves only when the ranking graph's edges did (issue #7).

A warm server re-reads the whole graph (seconds, hundreds of MB on a big repo) whenever the
`graph_generation` meta key changes; an edit inside a function body, a comment or a docstring
leaves every edge's (src, dst, kind, weight) as it was and must not cost that. Real pipeline,
real tree-sitter, real SQLite, a real warm `HybridRetriever`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from repoloop.indexer.graph.build import generation, rebuild_edges, update_edges
from repoloop.indexer.pipeline import index_repo
from repoloop.indexer.store import IndexStore
from repoloop.retrieval import graph
from repoloop.retrieval.api import RetrievalOptions
from repoloop.retrieval.retriever import HybridRetriever, open_retriever

UTIL = '''"""Helpers."""


def slugify(text):
    """Lower-case words joined by dashes."""
    return "-".join(text.lower().split())


def shout(text):
    return text.upper()
'''
BILLING = '''"""Invoices."""

from pkg.util import slugify


def invoice_slug(title):
    """A URL-safe name for an invoice."""
    return slugify(title)


def invoice_total(lines):
    return sum(lines)
'''
REPORTS = '''from pkg.billing import invoice_total


def monthly(lines):
    return invoice_total(lines)
'''


def _repo(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "util.py").write_text(UTIL)
    (root / "pkg" / "billing.py").write_text(BILLING)
    (root / "pkg" / "reports.py").write_text(REPORTS)
    return root


def _index(repo: Path) -> None:
    index_repo(repo, repo / ".repoloop", embed=False, progress=False)


def _state(repo: Path) -> tuple[int, set[tuple[str, str, str]]]:
    store = IndexStore(repo / ".repoloop" / "index.db", readonly=True)
    try:
        return generation(store), {(r[0], r[1], r[2]) for r in store.conn.execute("SELECT src, dst, kind FROM edges")}
    finally:
        store.close()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = _repo(tmp_path / "repo")
    _index(repo)
    return repo


def _callers_lines(repo: Path) -> list[tuple[str, int]]:
    store = IndexStore(repo / ".repoloop" / "index.db", readonly=True)
    try:
        return [(c["qualname"], c["line"]) for c in graph.callers(store, "pkg.util.slugify")]
    finally:
        store.close()


def test_body_comment_and_docstring_edits_keep_the_generation(repo: Path) -> None:
    gen, edges = _state(repo)
    assert _callers_lines(repo) == [("pkg.billing.invoice_slug", 8)]
    assert ("s:pkg.billing.invoice_slug", "s:pkg.util.slugify", "calls") in edges
    billing = repo / "pkg" / "billing.py"
    _edit(billing, "return sum(lines)", "total = 0\n    for x in lines:\n        total += x\n    return total")
    _edit(billing, '"""A URL-safe name for an invoice."""', '"""A URL-safe name.\n\n    Shown in links."""  # why')
    _index(repo)
    assert _state(repo) == (gen, edges)
    # the docstring grew by two lines: the call is shown where it is now
    assert _callers_lines(repo) == [("pkg.billing.invoice_slug", 10)]


def test_a_new_call_into_another_module_bumps_the_generation(repo: Path) -> None:
    gen, edges = _state(repo)
    _edit(repo / "pkg" / "billing.py", "from pkg.util import slugify", "from pkg.util import shout, slugify")
    _edit(repo / "pkg" / "billing.py", "return sum(lines)", "shout('x')\n    return sum(lines)")
    _index(repo)
    gen2, edges2 = _state(repo)
    assert gen2 == gen + 1
    assert edges2 - edges >= {("s:pkg.billing.invoice_total", "s:pkg.util.shout", "calls")}


def test_deleting_an_imported_file_bumps_the_generation(repo: Path) -> None:
    gen, edges = _state(repo)
    assert ("f:pkg/reports.py", "f:pkg/billing.py", "imports") in edges
    (repo / "pkg" / "billing.py").unlink()
    _index(repo)
    gen2, edges2 = _state(repo)
    assert gen2 == gen + 1
    assert not any("pkg/billing.py" in s or "pkg/billing.py" in d or "pkg.billing" in d for s, d, _k in edges2)


def test_adding_a_file_without_edges_keeps_it_and_one_with_edges_bumps(repo: Path) -> None:
    gen, _ = _state(repo)
    (repo / "pkg" / "empty.py").write_text("# nothing here yet\n")
    _index(repo)
    assert _state(repo)[0] == gen
    (repo / "pkg" / "empty.py").write_text("def later():\n    return 1\n")
    _index(repo)
    gen2, edges2 = _state(repo)
    assert gen2 == gen + 1 and ("f:pkg/empty.py", "s:pkg.empty.later", "contains") in edges2


def test_an_index_without_digests_bumps_once_then_settles(repo: Path) -> None:
    """An index built before the digests existed is never trusted blindly."""
    store = IndexStore(repo / ".repoloop" / "index.db")
    try:
        store.conn.execute("DELETE FROM graph_edge_sums")
    finally:
        store.close()
    gen, _ = _state(repo)
    billing = repo / "pkg" / "billing.py"
    _edit(billing, "return sum(lines)", "return sum(lines)  # first")
    _index(repo)
    assert _state(repo)[0] == gen + 1
    _edit(billing, "# first", "# second")
    _index(repo)
    assert _state(repo)[0] == gen + 1


def test_a_full_rebuild_always_bumps_and_matches_the_incremental_edges(repo: Path) -> None:
    billing = repo / "pkg" / "billing.py"
    _edit(billing, "return sum(lines)", "return sum(lines) + 0")
    _index(repo)
    gen, edges = _state(repo)
    store = IndexStore(repo / ".repoloop" / "index.db")
    try:
        rebuild_edges(store)
        assert update_edges(store, set(), set()) > 0  # nothing to do: no bump
    finally:
        store.close()
    assert _state(repo) == (gen + 1, edges)


def test_the_cached_global_ranking_is_never_stored_from_half_written_edges(repo: Path) -> None:
    """Between storing a file (its edges deleted) and the graph step, a reader sees fewer edges
    under the same generation; if the edit then keeps the generation, a ranking cached from that
    read would stay wrong. Such a read is marked incomplete and not cached."""
    store = IndexStore(repo / ".repoloop" / "index.db")
    try:
        full = graph.pagerank(store)
        store.conn.execute("DELETE FROM graph_rank_cache")
        store.conn.execute("DELETE FROM edges WHERE file_id=(SELECT id FROM files WHERE path='pkg/util.py')")
        store.conn.execute("INSERT INTO pending(path, op) VALUES ('pkg/util.py', 'changed')")
        g = graph.load_graph(store)
        assert not g.complete and "s:pkg.util.shout" not in g.index
        graph.pagerank(store)
        assert store.conn.execute("SELECT count(*) FROM graph_rank_cache").fetchone()[0] == 0
        update_edges(store, {"pkg/util.py"}, set())  # the graph step: same edges, same generation
        store.clear_pending(["pkg/util.py"])
        assert graph.load_graph(store).complete
        assert graph.pagerank(store) == pytest.approx(full)
    finally:
        store.close()


def _in_service(r: HybridRetriever, old: graph.RepoGraph | None) -> graph.RepoGraph:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r.search("invoice slug", 3)  # a query swaps a loaded graph into service
        if r.graph.graph is not old and r.graph.pending is None:
            return r.graph.graph
        time.sleep(0.05)
    raise AssertionError("the re-read graph never came into service")


def test_a_warm_retriever_keeps_its_graph_after_a_body_edit_and_rereads_it_after_a_call(repo: Path) -> None:
    r = open_retriever(repo, options=RetrievalOptions(lexical_only=True))
    try:
        r.warm()  # small repo: the whole graph in memory
        assert r.graph.full and r.graph.graph is not None and r.graph.graph.complete
        graph_before = r.graph.graph
        billing = repo / "pkg" / "billing.py"
        _edit(billing, "return sum(lines)", "return sum(list(lines))  # no new repo call")
        _index(repo)
        assert r.refresh() is True  # the files' rows changed ...
        assert r.graph.reloads == 0 and r.graph.pending is None  # ... the graph did not
        r.search("invoice total", 3)
        assert r.graph.graph is graph_before

        _edit(billing, "return sum(list(lines))", "shout('x')\n    return sum(list(lines))")
        _edit(billing, "from pkg.util import slugify", "from pkg.util import shout, slugify")
        _index(repo)
        assert r.refresh() is True and r.graph.reloads == 1
        g = _in_service(r, graph_before)
        src, dst = g.index["s:pkg.billing.invoice_total"], g.index["s:pkg.util.shout"]
        assert g.transition_t[dst, src] > 0
    finally:
        r.close()


def test_a_graph_read_mid_pass_is_read_again_even_without_a_bump(repo: Path) -> None:
    """The whole graph loaded while a pass had stored a file but not rebuilt its edges lacks
    them; the pass then keeps the generation (body edit), so refresh must re-read it anyway."""
    db = repo / ".repoloop" / "index.db"
    writer = IndexStore(db)
    r = open_retriever(repo, options=RetrievalOptions(lexical_only=True))
    try:
        writer.conn.execute("INSERT INTO pending(path, op) VALUES ('pkg/util.py', 'changed')")
        writer.conn.execute("DELETE FROM edges WHERE file_id=(SELECT id FROM files WHERE path='pkg/util.py')")
        r.warm()
        g = r.graph.graph
        assert r.graph.full and g is not None and not g.complete and "s:pkg.util.shout" not in g.index
        before = g
        update_edges(writer, {"pkg/util.py"}, set())
        writer.clear_pending(["pkg/util.py"])
        assert r.refresh() is True and r.graph.reloads == 1
        g = _in_service(r, before)
        assert g.complete and "s:pkg.util.shout" in g.index
    finally:
        r.close()
        writer.close()
