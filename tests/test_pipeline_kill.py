"""A `repoloop index` killed with SIGKILL mid-run, and two runs at once, as real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repoloop.indexer.store import DB_NAME

N_FILES = 3000


def _generate(root: Path, n: int = N_FILES) -> Path:
    for i in range(n):
        d = root / f"pkg{i % 30}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"mod{i}.py").write_text(
            f'"""Module {i}."""\n\nimport os\n\n\nclass Thing{i}:\n    def run(self, x):\n'
            f"        return helper{i}(x) + os.getpid()\n\n\ndef helper{i}(x):\n    return x * {i}\n"
        )
    return root


@pytest.fixture(scope="module")
def big_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _generate(tmp_path_factory.mktemp("big") / "repo")


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.Popen([sys.executable, "-m", "repoloop.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


def _files_in(db: Path) -> int:
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return c.execute("SELECT count(*) FROM files").fetchone()[0]
        finally:
            c.close()
    except sqlite3.Error:
        return 0


def _dump(db: Path) -> dict[str, list]:
    c = sqlite3.connect(db)
    out = {
        "files": c.execute("SELECT path, hash, language FROM files ORDER BY path").fetchall(),
        "symbols": c.execute("SELECT f.path, s.qualname, s.kind, s.start_line, s.end_line FROM symbols s"
                             " JOIN files f ON f.id=s.file_id ORDER BY 1, 2, 4").fetchall(),
        "refs": c.execute("SELECT f.path, r.name, r.kind, r.line FROM refs r JOIN files f ON f.id=r.file_id"
                          " ORDER BY 1, 4, 2, 3").fetchall(),
        "chunks": c.execute("SELECT f.path, ch.start_line, ch.end_line, ch.hash FROM chunks ch"
                            " JOIN files f ON f.id=ch.file_id ORDER BY 1, 2").fetchall(),
        "fts": c.execute("SELECT count(*) FROM chunks_fts").fetchall(),
    }
    c.close()
    return out


def _check_consistent(db: Path) -> int:
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert c.execute("INSERT INTO chunks_fts(chunks_fts) VALUES('integrity-check')") is not None
    # Every file row has all of its rows: each generated module defines 3 symbols and has chunks.
    bad = c.execute("SELECT count(*) FROM files f WHERE (SELECT count(*) FROM symbols s WHERE s.file_id=f.id) != 3"
                    " OR NOT EXISTS (SELECT 1 FROM chunks ch WHERE ch.file_id=f.id)").fetchone()[0]
    assert bad == 0
    orphans = c.execute("SELECT count(*) FROM symbols WHERE file_id NOT IN (SELECT id FROM files)").fetchone()[0]
    assert orphans == 0
    assert c.execute("SELECT count(*) FROM chunks").fetchone()[0] == c.execute(
        "SELECT count(*) FROM chunks_fts").fetchone()[0]
    n = c.execute("SELECT count(*) FROM files").fetchone()[0]
    c.close()
    return n


def test_kill_9_mid_index_then_resume_equals_clean(big_repo: Path, tmp_path: Path) -> None:
    idx = tmp_path / "killed"
    db = idx / DB_NAME
    proc = _cli("index", str(big_repo), "--index-dir", str(idx), "--no-embed", "--jobs", "2", "--quiet")
    deadline = time.monotonic() + 120
    while _files_in(db) == 0:  # wait until it has started writing
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = _check_consistent(db)
    assert 0 < done < N_FILES, f"kill landed after the run finished ({done} files)"
    c = sqlite3.connect(db)
    assert c.execute("SELECT count(*) FROM sqlite_master WHERE name='refs_name'").fetchone()[0] == 0  # bulk mode
    c.close()

    # The next run is not refused (the kernel dropped the lock) and finishes the job.
    rerun = _cli("index", str(big_repo), "--index-dir", str(idx), "--no-embed", "--json")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert json.loads(out)["files_indexed"] == N_FILES - done  # only what the killed run had not stored
    assert _check_consistent(db) == N_FILES
    # The first run was bulk-loading an empty index without its secondary indexes: they are back.
    from repoloop.indexer.schema import BULK_INDEXES

    c = sqlite3.connect(db)
    have = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    c.close()
    assert set(BULK_INDEXES) <= have

    clean_idx = tmp_path / "clean"
    clean = _cli("index", str(big_repo), "--index-dir", str(clean_idx), "--no-embed", "--quiet")
    _, err = clean.communicate(timeout=300)
    assert clean.returncode == 0, err
    assert _dump(db) == _dump(clean_idx / DB_NAME)


def test_two_concurrent_runs(big_repo: Path, tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    first = _cli("index", str(big_repo), "--index-dir", str(idx), "--no-embed", "--jobs", "1", "--quiet")
    lock = idx / "index.lock"
    deadline = time.monotonic() + 60
    while not (lock.exists() and lock.read_text().strip() == str(first.pid)):
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = _cli("index", str(big_repo), "--index-dir", str(idx), "--no-embed")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "another `repoloop index`" in err and f"pid {first.pid}" in err
    # A waiting run queues behind the first and then finds nothing left to do.
    waiter = _cli("index", str(big_repo), "--index-dir", str(idx), "--no-embed", "--wait", "--json")
    assert first.wait(timeout=300) == 0
    out, err = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, err
    report = json.loads(out)
    assert report["files_indexed"] == 0 and report["files_unchanged"] == N_FILES
    assert _check_consistent(idx / DB_NAME) == N_FILES
