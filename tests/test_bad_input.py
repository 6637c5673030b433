"""Error-tolerant input end to end: a repository full of bad files indexes without failing, keeps
every good file, and `repoloop status --json` shows each skip by reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from repoloop.indexer.pipeline import index_repo

ROOT = Path(__file__).resolve().parents[1]


def _status(repo: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "repoloop.cli", "status", "--repo", str(repo), "--json"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "elsewhere.py").write_text("def elsewhere():\n    pass\n")
    files: dict[str, bytes] = {
        "good.py": b"def good():\n    return 1\n",
        "broken.py": b"def ok():\n    return 1\n\ndef broken(:\n    return\n\nclass After:\n    pass\n",
        "latin1.py": "def na\xefve():\n    return 'caf\xe9'\n".encode("latin-1"),
        "data.py": b"x = 1\n\0\0\0\0",
        "huge.txt": b"line\n" * 300_000,  # 1.5 MB > the 1 MiB default
        "dist.js": b"var a=1;" * 1000,
        "jquery.min.js": b"var a=1;\n",
        ".env.production": b"SECRET=1\n",
        "deploy/id_rsa": b"-----BEGIN OPENSSH PRIVATE KEY-----\n",
        "node_modules/left-pad/index.js": b"module.exports = 1;\n",
        "empty.py": b"",
        "notes.md": b"# Notes\n\nThe good function returns one.\n",
    }
    for rel, data in files.items():
        p = repo / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    os.symlink(repo, repo / "loop")
    os.symlink(outside, repo / "linked_outside")
    os.symlink(repo / "gone.py", repo / "dangling.py")
    os.mkfifo(repo / "events.fifo.py")
    (repo / "locked.py").write_text("def locked():\n    pass\n")
    return repo


def test_messy_repository_indexes_and_reports_every_reason(messy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Root ignores chmod 000, so the unreadable file raises PermissionError the way it would for a user
    # (at os.open, which every read of a repository file goes through: indexer/safe_read.py).
    real_open = os.open

    def guarded_open(path, *a, **k):
        if str(path).endswith("locked.py"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", guarded_open)
    rep = index_repo(messy, embed=False, progress=False)
    monkeypatch.undo()

    assert rep.files_indexed == rep.files_seen == 5  # good, broken, latin1, empty, notes
    assert rep.decode_errors == 1
    st = _status(messy)
    assert st["files"] == 5
    assert st["skips"] == {
        "binary": 1, "too_large": 1, "minified_or_generated": 2, "secret": 2, "dependency_or_build_dir": 1,
        "symlink_loop": 1, "symlink_outside_repo": 1, "broken_symlink": 1, "not_a_regular_file": 1,
        "unreadable": 1,
    }
    skipped = {s["path"]: s["reason"] for s in st["skipped"]}
    assert skipped["locked.py"] == "unreadable" and skipped["loop/"] == "symlink_loop"
    # broken.py, and latin1.py too (U+FFFD is not an identifier character).
    assert st["partial_parses"] >= 1 and st["decode_errors"] == 1
    # Nothing good was lost: the definitions around the syntax error are still there.
    from repoloop.indexer.store import IndexStore

    with IndexStore.open(messy, readonly=True) as store:
        quals = {r[0] for r in store.conn.execute("SELECT qualname FROM symbols")}
        status = dict(store.conn.execute("SELECT path, status FROM files"))
        latin = store.conn.execute("SELECT group_concat(text) FROM chunks JOIN files f ON f.id = file_id"
                                   " WHERE f.path = 'latin1.py'").fetchone()[0]
    assert {"good.good", "broken.ok"} <= quals
    assert "caf\ufffd" in latin
    assert "broken.After" in quals  # tree-sitter recovers after the error
    assert status["broken.py"] == "partial" and status["notes.md"] == "text"
    # The secret's content never reached the index.
    with IndexStore.open(messy, readonly=True) as store:
        assert store.conn.execute("SELECT count(*) FROM chunks WHERE text LIKE '%PRIVATE KEY%'"
                                  " OR text LIKE '%SECRET=%'").fetchone()[0] == 0


def test_max_file_size_option(messy: Path) -> None:
    rep = index_repo(messy, embed=False, progress=False, max_file_size=2_000_000)
    assert "too_large" not in rep.skips
    rep = index_repo(messy, embed=False, progress=False, max_file_size=20)
    assert rep.skips["too_large"] >= 4  # good.py etc. now over the limit, and removed from the index
    assert rep.files_deleted >= 4


def test_parser_crash_keeps_the_file_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "r"
    repo.mkdir()
    (repo / "fine.py").write_text("def fine():\n    pass\n")
    (repo / "crashy.py").write_text("def crashy():\n    return 'needle_word'\n")
    import repoloop.indexer.parse.parser as parse_mod

    real = parse_mod.parse_source

    def flaky(path, source, language, **kw):
        if path == "crashy.py":
            raise RecursionError("maximum recursion depth exceeded")
        return real(path, source, language, **kw)

    monkeypatch.setattr(parse_mod, "parse_source", flaky)
    rep = index_repo(repo, embed=False, progress=False, jobs=1)
    assert rep.files_indexed == 2
    assert rep.errors == [("crashy.py", "RecursionError: maximum recursion depth exceeded")]
    from repoloop.indexer.store import IndexStore

    with IndexStore.open(repo, readonly=True) as store:
        langs = dict(store.conn.execute("SELECT path, language FROM files"))
        hits = store.conn.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH 'needle_word'").fetchone()[0]
    assert langs == {"fine.py": "python", "crashy.py": "text"} and hits == 1


def test_damaged_index_is_set_aside_and_rebuilt(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    (repo / ".repoloop").mkdir(parents=True)
    (repo / "a.py").write_text("def a():\n    pass\n")
    garbage = os.urandom(4096)
    (repo / ".repoloop" / "index.db").write_bytes(garbage)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cli = [sys.executable, "-m", "repoloop.cli"]
    r = subprocess.run([*cli, "status", "--repo", str(repo)], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "damaged" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([*cli, "index", str(repo), "--no-embed"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "set aside" in r.stderr
    (aside,) = (repo / ".repoloop").glob("index.db.damaged-*")
    assert aside.read_bytes() == garbage  # kept, not destroyed
    assert _status(repo)["files"] == 1


def test_unwritable_index_dir_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "plainfile").write_text("")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "repoloop.cli", "index", str(tmp_path), "--no-embed",
                        "--index-dir", str(tmp_path / "plainfile" / "idx")], capture_output=True, text=True, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot write the index directory" in r.stderr
