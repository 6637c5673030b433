"""A full graph build writes every file's interface streamed by ranges of file ids (bounded
memory on big repos); the rows must be exactly the per-file `_interface` the incremental path
compares against, or every later update would see spurious interface changes."""

from __future__ import annotations

import json
from pathlib import Path

from repoloop.indexer.graph.build import _all_interface_rows, _interface, rebuild_edges
from tests.graph_fixtures import copy_stdlib_packages, index_dir


def test_streamed_interfaces_equal_per_file_interfaces(tmp_path: Path):
    root = copy_stdlib_packages(tmp_path / "repo", ["json", "email"])
    store = index_dir(root)
    try:
        conn = store.conn
        files = {p: (fid, h) for fid, p, h in conn.execute("SELECT id, path, hash FROM files")}
        assert len(files) > 30
        rows = list(_all_interface_rows(conn, files, batch=7))  # many batches, a short last one
        assert [r[0] for r in rows] == [p for p, _ in sorted(files.items(), key=lambda kv: kv[1][0])]
        for path, h, iface in rows:
            fid, want_hash = files[path]
            assert h == want_hash
            assert iface == json.dumps(_interface(conn, fid)), path
        assert sum(len(json.loads(r[2])["defs"]) for r in rows) == conn.execute(
            "SELECT count(*) FROM symbols").fetchone()[0]
        # and a full rebuild stores exactly those rows
        rebuild_edges(store)
        stored = dict((p, (h, i)) for p, h, i in conn.execute("SELECT path, hash, iface FROM graph_files"))
        assert stored == {p: (h, i) for p, h, i in rows}
    finally:
        store.close()


def test_bounded_memos_give_the_same_edges(tmp_path: Path, monkeypatch):
    """The resolver's per-file memos drop their oldest entries past MEMO_FILES; what is dropped is
    recomputed, so a tiny bound must give exactly the edges of an unbounded one."""
    from repoloop.indexer.graph import resolve_refs as resolve
    from repoloop.indexer.graph.build import file_edges

    root = copy_stdlib_packages(tmp_path / "repo", ["json", "email"])
    store = index_dir(root)
    try:
        fids = [r[0] for r in store.conn.execute("SELECT id FROM files ORDER BY path")]

        def all_edges(limit: int) -> list:
            monkeypatch.setattr(resolve, "MEMO_FILES", limit)
            r = resolve.Resolver(store.conn)
            out = [sorted(file_edges(r, fid)) for fid in fids]
            assert len(r._imports) <= limit
            return out

        unbounded = all_edges(10**9)
        assert sum(map(len, unbounded)) > 1000
        assert all_edges(1) == unbounded
    finally:
        store.close()
