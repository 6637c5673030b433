"""Indexing pipeline on a small real multi-language repository: full, incremental, deletes, renames,
the graph hand-off, schema rebuilds and the write lock."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from repoloop.errors import IndexLockedError, IndexMissingError
from repoloop.indexer import pipeline
from repoloop.indexer.lock import IndexLock
from repoloop.indexer.pipeline import index_repo
from repoloop.indexer.schema import SCHEMA_VERSION
from repoloop.indexer.store import DB_NAME, IndexStore

FILES = {
    "pkg/__init__.py": "from .core import Engine\n",
    "pkg/core.py": (
        '"""Core engine."""\n\nimport os\n\n\nclass Engine:\n    """Runs jobs."""\n\n'
        "    def start(self, n):\n        return helper(n)\n\n    def stop(self):\n        os.sync()\n\n\n"
        "def helper(n):\n    return n * 2\n"
    ),
    "pkg/util.py": "def slugify(text):\n    return text.lower().replace(' ', '-')\n",
    "web/app.js": "function render(x) {\n  return `<p>${x}</p>`;\n}\nclass View {\n  show() { render(1); }\n}\n",
    "svc/main.go": 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hi")\n}\n',
    "README.md": "# Demo\n\nThe engine runs jobs.\n",
    "pyproject.toml": '[project]\nname = "demo"\n',
}


def make_repo(root: Path, files: dict[str, str] = FILES) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def backdate(root: Path, seconds: float = 3600) -> None:
    """Move every mtime into the past, as for files not touched while being indexed."""
    t = time.time() - seconds
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            os.utime(os.path.join(dirpath, n), (t, t))


def db(repo: Path) -> sqlite3.Connection:
    return sqlite3.connect(repo / ".repoloop" / DB_NAME)


def rows_for(conn: sqlite3.Connection, path: str) -> dict[str, int]:
    """Rows left anywhere for PATH (by file id and by path text)."""
    out = {"files": conn.execute("SELECT count(*) FROM files WHERE path=?", (path,)).fetchone()[0]}
    out["symbols"] = conn.execute(
        "SELECT count(*) FROM symbols WHERE file_id NOT IN (SELECT id FROM files)").fetchone()[0]
    for t in ("refs", "chunks", "edges"):
        out[t] = conn.execute(f"SELECT count(*) FROM {t} WHERE file_id NOT IN (SELECT id FROM files)").fetchone()[0]
    out["chunks_fts"] = conn.execute(
        "SELECT count(*) FROM chunks_fts WHERE rowid NOT IN (SELECT id FROM chunks)").fetchone()[0]
    out["fts_path"] = conn.execute(
        "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (f'path:"{path.split("/")[-1].split(".")[0]}"',)
    ).fetchone()[0]
    return out


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def test_full_index(repo: Path) -> None:
    rep = index_repo(repo, embed=False, progress=False)
    assert rep.files_seen == rep.files_indexed == len(FILES)
    assert rep.files_unchanged == 0
    assert not rep.errors
    conn = db(repo)
    paths = {r[0] for r in conn.execute("SELECT path FROM files")}
    assert paths == set(FILES)
    langs = dict(conn.execute("SELECT path, language FROM files"))
    assert langs["pkg/core.py"] == "python" and langs["README.md"] == "text" and langs["pyproject.toml"] == "text"
    quals = {r[0] for r in conn.execute("SELECT qualname FROM symbols")}
    assert {"pkg.core.Engine", "pkg.core.Engine.start", "pkg.core.helper", "pkg.util.slugify"} <= quals
    names = {r[0] for r in conn.execute("SELECT name FROM symbols")}
    assert {"render", "View", "show", "main"} <= names  # JavaScript and Go parsed too
    assert langs["web/app.js"] == "javascript" and langs["svc/main.go"] == "go"
    # Every file has chunks and FTS rows; the text files are findable.
    assert conn.execute("SELECT count(*) FROM files WHERE id NOT IN (SELECT file_id FROM chunks)").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM chunks").fetchone()[0] == \
        conn.execute("SELECT count(*) FROM chunks_fts").fetchone()[0]
    hit = conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'engine'").fetchone()[0]
    assert hit >= 2  # core.py and README.md
    assert rep.symbols == conn.execute("SELECT count(*) FROM symbols").fetchone()[0]
    assert set(rep.seconds) >= {"walk", "parse", "store", "graph", "embed"}
    assert "symbols" in rep.summary() and f"{len(FILES)} files" in rep.summary()


def test_reindex_without_changes_parses_nothing(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index_repo(repo, embed=False, progress=False)
    # Just written: mtimes within the trust margin, so the files are hashed but not parsed.
    rep = index_repo(repo, embed=False, progress=False)
    assert rep.files_indexed == 0 and rep.files_unchanged == len(FILES)
    # Verified a second later, the same mtimes are trusted: nothing is read at all.
    time.sleep(1.1)
    index_repo(repo, embed=False, progress=False)
    reads: list[str] = []
    real_parse = pipeline._parse_file
    monkeypatch.setattr(pipeline, "_parse_file", lambda t: reads.append(t.path) or real_parse(t))
    index_repo(repo, embed=False, progress=False, jobs=1)
    assert reads == []
    monkeypatch.undo()
    # Once verified, unchanged size+mtime means the file is not even read.
    backdate(repo)
    index_repo(repo, embed=False, progress=False)  # records the new mtimes (content unchanged)
    calls: list[str] = []
    real = pipeline._parse_file
    monkeypatch.setattr(pipeline, "_parse_file", lambda t: calls.append(t.path) or real(t))
    rep = index_repo(repo, embed=False, progress=False, jobs=1)
    assert calls == [] and rep.files_indexed == 0 and rep.files_unchanged == len(FILES)


def test_change_one_file_reparses_exactly_that_file(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    index_repo(repo, embed=False, progress=False)
    backdate(repo)
    index_repo(repo, embed=False, progress=False)
    (repo / "pkg/util.py").write_text("def slugify(text):\n    return text\n\n\ndef unslug(s):\n    return s\n")
    parsed: list[str] = []
    real = pipeline._parse_file

    def spy(t):
        r = real(t)
        if r.parsed is not None:
            parsed.append(t.path)
        return r

    monkeypatch.setattr(pipeline, "_parse_file", spy)
    rep = index_repo(repo, embed=False, progress=False, jobs=1)
    assert parsed == ["pkg/util.py"] and rep.files_indexed == 1
    quals = {r[0] for r in db(repo).execute("SELECT qualname FROM symbols")}
    assert "pkg.util.unslug" in quals


def test_touch_without_content_change_is_not_reparsed(repo: Path) -> None:
    index_repo(repo, embed=False, progress=False)
    os.utime(repo / "pkg/core.py", (time.time() + 5, time.time() + 5))
    rep = index_repo(repo, embed=False, progress=False)
    assert rep.files_indexed == 0 and rep.files_unchanged == len(FILES)


def test_delete_and_rename_leave_every_table(repo: Path) -> None:
    index_repo(repo, embed=False, progress=False)
    conn = db(repo)
    fid = conn.execute("SELECT id FROM files WHERE path='pkg/core.py'").fetchone()[0]
    # An edge made from core.py (as the graph builder would write it).
    conn.execute("INSERT INTO edges(file_id, src, dst, kind) VALUES (?, 'f:pkg/core.py', 'f:pkg/util.py', 'imports')",
                 (fid,))
    conn.commit()
    (repo / "pkg/core.py").unlink()
    (repo / "pkg/util.py").rename(repo / "pkg/text_tools.py")
    rep = index_repo(repo, embed=False, progress=False)
    assert rep.files_deleted == 2 and rep.files_indexed == 1
    for gone in ("pkg/core.py", "pkg/util.py"):
        left = rows_for(conn, gone)
        assert left == {"files": 0, "symbols": 0, "refs": 0, "chunks": 0, "edges": 0, "chunks_fts": 0,
                        "fts_path": 0}, (gone, left)
    assert conn.execute("SELECT count(*) FROM symbols WHERE qualname LIKE 'pkg.core.%'").fetchone()[0] == 0
    quals = {r[0] for r in conn.execute("SELECT qualname FROM symbols")}
    assert "pkg.text_tools.slugify" in quals and "pkg.util.slugify" not in quals


def test_file_that_becomes_skipped_leaves_the_index(repo: Path) -> None:
    index_repo(repo, embed=False, progress=False)
    (repo / "pkg/util.py").write_bytes(b"\0\0binary now")
    (repo / ".gitignore").write_text("web/\n")
    rep = index_repo(repo, embed=False, progress=False)
    conn = db(repo)
    paths = {r[0] for r in conn.execute("SELECT path FROM files")}
    assert "pkg/util.py" not in paths and "web/app.js" not in paths
    skips = dict(conn.execute("SELECT path, reason FROM skips"))
    assert skips["pkg/util.py"] == "binary" and skips["web/"] == "gitignored"
    assert rep.skips == {"binary": 1, "gitignored": 1}


def test_bad_encoding_is_indexed_with_replacement_and_counted(repo: Path) -> None:
    (repo / "pkg/latin.py").write_bytes("def caf\xe9():\n    return 'na\xefve'\n\ndef ok():\n    pass\n".encode("latin-1"))
    rep = index_repo(repo, embed=False, progress=False)
    assert rep.decode_errors == 1
    conn = db(repo)
    assert conn.execute("SELECT decode_errors FROM files WHERE path='pkg/latin.py'").fetchone()[0] == 1
    assert "pkg.latin.ok" in {r[0] for r in conn.execute("SELECT qualname FROM symbols")}
    text = conn.execute("SELECT group_concat(text) FROM chunks JOIN files f ON f.id=file_id"
                        " WHERE f.path='pkg/latin.py'").fetchone()[0]
    assert "\ufffd" in text


def test_parallel_equals_serial(tmp_path: Path) -> None:
    files = {f"gen/m{i}.py": f"def f{i}(x):\n    return g{i}(x)\n\n\nclass C{i}:\n    def m(self):\n        pass\n"
             for i in range(120)}
    a = make_repo(tmp_path / "a", files)
    rep1 = index_repo(a, tmp_path / "idx1", embed=False, progress=False, jobs=1)
    rep2 = index_repo(a, tmp_path / "idx2", embed=False, progress=False, jobs=2)
    assert rep1.files_indexed == rep2.files_indexed == 120

    def dump(idx: Path) -> list:
        c = sqlite3.connect(idx / DB_NAME)
        return sorted(c.execute("SELECT f.path, s.qualname, s.start_line, s.end_line FROM symbols s"
                                " JOIN files f ON f.id=s.file_id").fetchall())

    assert dump(tmp_path / "idx1") == dump(tmp_path / "idx2") and len(dump(tmp_path / "idx1")) == 360


class _FakeGraph:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[set[str], set[str]]] = []
        self.fail = fail

    def update_edges(self, store, changed, deleted, **kw) -> int:
        self.calls.append((set(changed), set(deleted)))
        if self.fail:
            raise RuntimeError("killed mid-graph")
        return 0

    def stale(self, store) -> bool:  # built by this code, no JS packages moved
        return False


def test_graph_phase_gets_changes_and_survives_a_crash(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    g = _FakeGraph(fail=True)
    mod = types.ModuleType("repoloop.indexer.graph.build")
    mod.update_edges = g.update_edges
    mod.stale = g.stale
    monkeypatch.setitem(sys.modules, "repoloop.indexer.graph.build", mod)
    with pytest.raises(RuntimeError):
        index_repo(repo, embed=False, progress=False)
    assert g.calls[-1] == (set(FILES), set())
    # The rows were stored; the graph was not. The next run hands the same paths over again.
    g.fail = False
    (repo / "README.md").unlink()
    index_repo(repo, embed=False, progress=False)
    assert g.calls[-1] == (set(FILES) - {"README.md"}, {"README.md"})
    index_repo(repo, embed=False, progress=False)
    assert len(g.calls) == 2  # nothing pending: not called again


def test_schema_version_mismatch_rebuilds(repo: Path) -> None:
    index_repo(repo, embed=False, progress=False)
    conn = db(repo)
    conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    conn.execute("CREATE TABLE legacy_stuff (x)")
    conn.commit()
    conn.close()
    # Readers refuse to misread it...
    with pytest.raises(IndexMissingError, match="schema 1"):
        IndexStore(repo / ".repoloop" / DB_NAME, readonly=True)
    # ...and the next index run rebuilds it from scratch.
    rep = index_repo(repo, embed=False, progress=False)
    assert rep.files_indexed == len(FILES)
    conn = db(repo)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "legacy_stuff" not in tables
    assert conn.execute("SELECT count(*) FROM files").fetchone()[0] == len(FILES)


def test_lock_refuses_a_second_writer_and_wait_waits(repo: Path) -> None:
    lock = IndexLock(repo / ".repoloop")
    lock.acquire()
    try:
        with pytest.raises(IndexLockedError, match=f"pid {os.getpid()}"):
            index_repo(repo, embed=False, progress=False)
        threading.Timer(0.5, lock.release).start()
        t = time.monotonic()
        rep = index_repo(repo, embed=False, progress=False, wait=True)
        assert time.monotonic() - t >= 0.4 and rep.files_indexed == len(FILES)
    finally:
        lock.release()


def test_index_dir_outside_and_inside_repo(repo: Path, tmp_path: Path) -> None:
    rep = index_repo(repo, repo / "myindex", embed=False, progress=False)
    assert rep.files_seen == len(FILES)
    rep = index_repo(repo, repo / "myindex", embed=False, progress=False)
    assert rep.files_seen == len(FILES) and rep.files_indexed == 0


def test_index_paths_updates_only_the_given_paths(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / ".gitignore").write_text("*.log\n")
    index_repo(repo, embed=False, progress=False)
    (repo / "pkg/util.py").write_text("def slug2(t):\n    return t\n")
    (repo / "pkg/core.py").unlink()
    (repo / "pkg/new.py").write_text("def fresh():\n    pass\n")
    (repo / "debug.log").write_text("noise\n")
    (repo / "node_modules/dep").mkdir(parents=True)
    (repo / "node_modules/dep/index.js").write_text("module.exports = 1;\n")
    (repo / "README.md").write_text("# Changed but not reported\n")
    parsed: list[str] = []
    real = pipeline._parse_file

    def spy(t):
        r = real(t)
        if r.parsed is not None:
            parsed.append(t.path)
        return r

    monkeypatch.setattr(pipeline, "_parse_file", spy)
    rep = pipeline.index_paths(repo, ["pkg/util.py", "pkg/core.py", str(repo / "pkg/new.py"), "debug.log",
                                      "node_modules/dep/index.js", "/elsewhere/x.py"], embed=False)
    assert sorted(parsed) == ["pkg/new.py", "pkg/util.py"]
    assert rep.files_indexed == 2 and rep.files_deleted == 1
    conn = db(repo)
    quals = {r[0] for r in conn.execute("SELECT qualname FROM symbols")}
    assert {"pkg.util.slug2", "pkg.new.fresh"} <= quals and not any(q.startswith("pkg.core") for q in quals)
    skips = dict(conn.execute("SELECT path, reason FROM skips"))
    assert skips == {"debug.log": "gitignored", "node_modules/": "dependency_or_build_dir"}
    # README.md was not among the paths: still the old content until a full run.
    assert conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'reported'").fetchone()[0] == 0
    parsed.clear()
    rep = index_repo(repo, embed=False, progress=False, jobs=1)
    assert parsed == ["README.md"]


def test_index_paths_with_a_directory_runs_a_full_pass(repo: Path) -> None:
    index_repo(repo, embed=False, progress=False)
    (repo / "extra").mkdir()
    (repo / "extra/m.py").write_text("def m():\n    pass\n")
    rep = pipeline.index_paths(repo, ["extra"], embed=False)
    assert rep.files_seen == len(FILES) + 1 and rep.files_indexed == 1


def test_parser_change_reparses_unchanged_files(repo: Path) -> None:
    index_repo(repo, embed=False, progress=False)
    conn = db(repo)
    assert conn.execute("SELECT value FROM meta WHERE key='parser_fingerprint'").fetchone()[0] == \
        pipeline.parser_fingerprint()
    conn.execute("UPDATE meta SET value='from-an-older-parser' WHERE key='parser_fingerprint'")
    conn.commit()
    # A watcher's partial pass re-parses its paths but leaves the rest for a full pass.
    rep = pipeline.index_paths(repo, ["pkg/util.py"], embed=False)
    assert rep.files_indexed == 1
    rep = index_repo(repo, embed=False, progress=False)
    assert rep.files_indexed == len(FILES)
    rep = index_repo(repo, embed=False, progress=False)
    assert rep.files_indexed == 0


def test_a_failed_write_rolls_back_and_leaves_no_transaction_open(repo: Path) -> None:
    """Every write of the store goes through one transaction() (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on
    any exception). A write that fails half-way must keep the old rows and leave the connection
    usable: before, set_skips/update_skips/clear_pending had no rollback, and the next write failed
    with "cannot start a transaction within a transaction"."""
    index_repo(repo, embed=False, progress=False)
    store = IndexStore(repo / ".repoloop" / DB_NAME)
    try:
        store.set_skips({"a.bin": "binary"})
        with pytest.raises(sqlite3.Error):
            store.set_skips({"b.bin": "binary", "c.bin": object()})  # type: ignore[dict-item]  # cannot bind
        assert not store.conn.in_transaction
        assert [r[0] for r in store.conn.execute("SELECT path FROM skips")] == ["a.bin"]
        with pytest.raises(sqlite3.Error):
            store.update_skips(["a.bin"], {"d.bin": object()})  # type: ignore[dict-item]
        assert not store.conn.in_transaction
        assert [r[0] for r in store.conn.execute("SELECT path FROM skips")] == ["a.bin"]
        store.clear_pending(["x.py"])  # the connection still writes
        store.set_skips({"e.bin": "binary"})
        assert [r[0] for r in store.conn.execute("SELECT path FROM skips")] == ["e.bin"]
    finally:
        store.close()
