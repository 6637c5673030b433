"""Incremental graph updates (lazy symbol tables, targeted dangling-edge search) give exactly the
edges a full rebuild gives, on real stdlib packages edited the ways people edit code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from repoloop.indexer.graph.build import file_edges, rebuild_edges
from repoloop.indexer.graph.resolve_refs import Resolver
from repoloop.indexer.pipeline import index_repo
from repoloop.indexer.store import IndexStore
from tests.graph_fixtures import copy_stdlib_packages, index_dir


def _edges(store: IndexStore) -> set[tuple]:
    return set(store.conn.execute(
        "SELECT f.path, e.src, e.dst, e.kind, round(e.weight, 6), e.line FROM edges e JOIN files f ON f.id=e.file_id"))


@pytest.fixture()
def repo(tmp_path: Path):
    root = copy_stdlib_packages(tmp_path / "repo", ["json", "email"])
    store = index_dir(root)
    yield root, store
    store.close()


def test_lazy_resolver_gives_the_same_edges(repo):
    _root, store = repo
    eager, lazy = Resolver(store.conn), Resolver(store.conn, lazy=True)
    fids = [r[0] for r in store.conn.execute("SELECT id FROM files ORDER BY path")]
    assert len(fids) > 30
    total = 0
    for fid in fids:
        a, b = sorted(file_edges(eager, fid)), sorted(file_edges(lazy, fid))
        assert a == b, store.conn.execute("SELECT path FROM files WHERE id=?", (fid,)).fetchone()
        total += len(a)
    assert total > 1000


def test_incremental_equals_rebuild(repo, tmp_path: Path):
    root, store = repo
    before = _edges(store)
    # 1. a body edit: a new function that calls into another module
    p = root / "json" / "tool.py"
    p.write_text(p.read_text() + "\n\ndef extra_helper(s):\n    return json.loads(s)\n")
    # 2. a removed definition others call (edges into it must go)
    d = root / "json" / "decoder.py"
    src = d.read_text()
    assert "def py_scanstring(" in src
    d.write_text(src.replace("def py_scanstring(", "def py_scanstring_renamed("))
    # 3. a deleted module that others import
    (root / "email" / "quoprimime.py").unlink()
    # 4. a new module defining a name another file then uses
    (root / "email" / "newmod.py").write_text("def fresh(x):\n    return x\n")
    u = root / "email" / "utils.py"
    u.write_text(u.read_text() + "\n\nfrom email.newmod import fresh\n\ndef uses_fresh():\n    return fresh(1)\n")
    store.close()
    index_repo(root, root / ".repoloop", embed=False)
    store2 = IndexStore(root / ".repoloop" / "index.db")
    try:
        incremental = _edges(store2)
        assert incremental != before
        assert not any(e[2] == "s:json.decoder.py_scanstring" for e in incremental)
        assert not any(e[2] == "f:email/quoprimime.py" for e in incremental)
        assert any(e[2] == "s:email.newmod.fresh" and e[0] == "email/utils.py" for e in incremental)
        copy = tmp_path / "copy.db"
        store2.conn.execute("VACUUM INTO ?", (str(copy),))
    finally:
        store2.close()
    ref = IndexStore(copy)
    try:
        rebuild_edges(ref)
        assert _edges(ref) == incremental
    finally:
        ref.close()
    shutil.rmtree(root / ".repoloop")
