"""Issue 14: the indexer must not trust a file after the walk.

Each attack test swaps a file between the walk and the read, deterministically: the walk's output
is hooked (`Walker.__iter__`/`Walker.check` swap the file just before they hand its entry on), so no
timer races. The indexing runs in a child process (real worker processes, real tree-sitter, real
SQLite) under a 4 GiB address-space limit and a timeout, so code that hangs on a FIFO or reads
/dev/zero without bound fails the test instead of stalling or exhausting the machine.

Run as a script (`python tests/test_hostile_index.py REPO SCENARIO ENTRY`), this file is that child.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

LIMIT = 64 * 1024  # --max-file-size of the attacked runs
TARGET = "pkg/target.py"
SECRET = "OUTSIDE_SECRET_MARKER"
N_FILES = 48  # above the pipeline's pool threshold (40) and the tags one (16): real workers
_CHILD_TIMEOUT = 40
_CHILD_MEMORY = 4 << 30


# -- the child side ---------------------------------------------------------------------------------
def _swap(p: Path, how: str) -> None:
    """Replace the file at `p` the way an attacker would between the walk and the read."""
    if how == "none":
        return
    if how == "grow":
        with open(p, "ab") as f:  # still a regular file, now 16x the limit
            f.write(b"".join(b"value_%d = %d\n" % (i, i) for i in range(80_000)))
        return
    os.unlink(p)
    if how == "fifo":
        os.mkfifo(p)
    elif how == "devzero":
        os.symlink("/dev/zero", p)
    elif how == "device":
        os.mknod(p, stat.S_IFCHR | 0o644, os.makedev(1, 5))  # /dev/zero's numbers, inside the repo
    elif how == "outside":
        os.symlink(p.parents[2] / "outside" / "secret.py", p)
    elif how == "inside":
        os.symlink(p.parent / "m0.py", p)
    else:
        raise ValueError(how)


def _child(repo: Path, how: str, entry: str) -> dict[str, Any]:
    """Run `entry` on `repo` with TARGET swapped (`how`) between the walk and the read."""
    from repoloop.indexer import pipeline
    from repoloop.indexer import walk as walk_mod

    armed = {"on": entry in ("index", "tags", "sniff")}
    real_iter, real_check, real_reason = walk_mod.Walker.__iter__, walk_mod.Walker.check, walk_mod.Walker._file_reason

    def hit(rel: str, abspath: str) -> None:
        if armed["on"] and rel == TARGET:
            armed["on"] = False
            _swap(Path(abspath), how)

    def iter_then_swap(self):  # noqa: ANN001, ANN202 - the patched Walker.__iter__
        for e in real_iter(self):
            if entry != "sniff":
                hit(e.path, e.abspath)
            yield e

    def check_then_swap(self, rel: str):  # noqa: ANN001, ANN202 - the patched Walker.check
        e = real_check(self, rel)
        if e is not None:
            hit(e.path, e.abspath)
        return e

    def reason_after_swap(self, abspath: str, rel: str, name: str, st: os.stat_result):  # noqa: ANN001, ANN202
        if entry == "sniff":  # between the walk's stat of the entry and its content sniff
            hit(rel, abspath)
        return real_reason(self, abspath, rel, name, st)

    walk_mod.Walker.__iter__ = iter_then_swap
    walk_mod.Walker.check = check_then_swap
    walk_mod.Walker._file_reason = reason_after_swap
    if entry in ("index", "sniff"):
        rep = pipeline.index_repo(repo, embed=False, progress=False, jobs=2, max_file_size=LIMIT)
        return {"files_seen": rep.files_seen, "skips": rep.skips}
    if entry == "tags":
        from repoloop.indexer.tags.extract import extract_tags

        res = extract_tags(repo, jobs=2, reuse=False, max_file_size=LIMIT)
        return {"skipped": res.skipped, "paths": sorted({t.path for t in res.tags})}
    # The watcher's re-index pass and `repoloop status`'s staleness check, on an index built first.
    pipeline.index_repo(repo, embed=False, progress=False, jobs=2, max_file_size=LIMIT)
    armed["on"] = True
    if entry == "watch":  # the event: the file was edited (another size), then swapped after its check
        (repo / TARGET).write_text("def target():\n    return 'edited'\n")
        rep = pipeline.index_paths(repo, [TARGET], embed=False)
        return {"files_seen": rep.files_seen, "skips": rep.skips}
    assert entry == "status"
    os.utime(repo / TARGET, (1, 1))  # size or mtime moved: status hashes the file
    from repoloop.indexer.store import IndexStore

    with IndexStore.open(repo, readonly=True) as store:
        return pipeline.changed_since_index(repo, store)


# -- the test side ----------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    """The child imports the repoloop this test imported (a worktree under test via PYTHONPATH)."""
    import repoloop

    src = str(Path(repoloop.__file__).resolve().parents[1])
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p))


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (_CHILD_MEMORY, _CHILD_MEMORY))


def _attack(repo: Path, how: str, entry: str = "index") -> dict[str, Any]:
    """The child's result; fails the test when it hangs or dies (its process group is killed)."""
    proc = subprocess.Popen([sys.executable, __file__, str(repo), how, entry], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), start_new_session=True,
                            preexec_fn=_limit_memory)
    try:
        out, err = proc.communicate(timeout=_CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child, its forkserver and its workers
        proc.communicate()
        pytest.fail(f"{entry} hung for {_CHILD_TIMEOUT} s after {TARGET} was swapped ({how})")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # workers left blocked on a FIFO by a failed run
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, f"{entry} failed after {TARGET} was swapped ({how}):\n{err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1])


def _status(repo: Path) -> dict[str, Any]:
    r = subprocess.run([sys.executable, "-m", "repoloop.cli", "status", "--repo", str(repo), "--json"],
                       capture_output=True, text=True, env=_env(), timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _skipped(repo: Path) -> dict[str, str]:
    return {s["path"]: s["reason"] for s in _status(repo)["skipped"]}


def _db(repo: Path) -> sqlite3.Connection:
    return sqlite3.connect(repo / ".repoloop" / "index.db")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """N_FILES small Python files, the target among them, and a secret outside the repository."""
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    for i in range(N_FILES):
        (root / "pkg" / f"m{i}.py").write_text(f"def f{i}():\n    return {i}\n")
    (root / TARGET).write_text("def target():\n    return 'target'\n")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.py").write_text(f"def leaked():\n    return '{SECRET}'\n")
    return root


def _assert_others_indexed(repo: Path) -> None:
    with _db(repo) as conn:
        paths = {r[0] for r in conn.execute("SELECT path FROM files")}
    assert {f"pkg/m{i}.py" for i in range(N_FILES)} <= paths


@pytest.mark.timeout(60)
@pytest.mark.hostile("6: file swapped for a FIFO after the walk")
def test_fifo_swapped_in_after_walk_is_skipped_not_waited_on(repo: Path) -> None:
    _attack(repo, "fifo")
    assert _skipped(repo).get(TARGET) == "not_a_regular_file"
    _assert_others_indexed(repo)


@pytest.mark.timeout(60)
@pytest.mark.hostile("6b: file swapped for a symlink to /dev/zero after the walk")
def test_symlink_to_dev_zero_swapped_in_is_not_read(repo: Path) -> None:
    _attack(repo, "devzero")
    assert _skipped(repo).get(TARGET) == "symlink_outside_repo"
    _assert_others_indexed(repo)


@pytest.mark.timeout(60)
@pytest.mark.hostile("6c: file swapped for a character device (inside the repo) after the walk")
def test_device_node_swapped_in_is_not_read(repo: Path) -> None:
    try:
        os.mknod(repo / "probe", stat.S_IFCHR | 0o644, os.makedev(1, 5))
        os.unlink(repo / "probe")
    except (PermissionError, AttributeError):
        pytest.skip("making a device node needs root")
    _attack(repo, "device")
    assert _skipped(repo).get(TARGET) == "not_a_regular_file"


@pytest.mark.timeout(60)
@pytest.mark.hostile("6d: file grown past --max-file-size after the walk")
def test_file_grown_past_limit_after_walk_is_skipped_as_too_large(repo: Path) -> None:
    _attack(repo, "grow")
    assert (repo / TARGET).stat().st_size > 16 * LIMIT
    assert _skipped(repo).get(TARGET) == "too_large"
    with _db(repo) as conn:
        assert conn.execute("SELECT count(*) FROM files WHERE path = ?", (TARGET,)).fetchone()[0] == 0
        # Nothing of it stored, and no stored file holds more text than the limit.
        assert conn.execute("SELECT count(*) FROM chunks WHERE text LIKE '%value_79999%'").fetchone()[0] == 0
        biggest = conn.execute("SELECT max(s) FROM (SELECT sum(length(text)) s FROM chunks GROUP BY file_id)")
        assert biggest.fetchone()[0] <= LIMIT
    _assert_others_indexed(repo)


@pytest.mark.timeout(60)
@pytest.mark.hostile("6e: file swapped for a symlink out of the repository after the walk")
def test_symlink_out_of_repo_swapped_in_is_not_read(repo: Path) -> None:
    _attack(repo, "outside")
    assert _skipped(repo).get(TARGET) == "symlink_outside_repo"
    with _db(repo) as conn:
        assert conn.execute("SELECT count(*) FROM chunks WHERE text LIKE ?", (f"%{SECRET}%",)).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM symbols WHERE name = 'leaked'").fetchone()[0] == 0


@pytest.mark.timeout(60)
@pytest.mark.hostile("6f: file swapped for a FIFO between the walk's stat and its sniff")
def test_fifo_swapped_in_before_the_walks_sniff(repo: Path) -> None:
    _attack(repo, "fifo", "sniff")
    assert _skipped(repo).get(TARGET) == "not_a_regular_file"


@pytest.mark.timeout(60)
@pytest.mark.hostile("6g: repoloop tags: file swapped for a FIFO after the walk")
def test_tags_fifo_swapped_in_after_walk(repo: Path) -> None:
    got = _attack(repo, "fifo", "tags")
    assert got["skipped"] == {"not_a_regular_file": 1}
    assert TARGET not in got["paths"] and len(got["paths"]) == N_FILES


@pytest.mark.timeout(60)
@pytest.mark.hostile("6h: repoloop tags: file swapped for a symlink to /dev/zero after the walk")
def test_tags_symlink_to_dev_zero_swapped_in(repo: Path) -> None:
    got = _attack(repo, "devzero", "tags")
    assert got["skipped"] == {"symlink_outside_repo": 1}


@pytest.mark.timeout(60)
@pytest.mark.hostile("6i: repoloop tags: file grown past the limit after the walk")
def test_tags_file_grown_past_limit(repo: Path) -> None:
    got = _attack(repo, "grow", "tags")
    assert got["skipped"] == {"too_large": 1} and TARGET not in got["paths"]


@pytest.mark.timeout(60)
@pytest.mark.hostile("6j: watcher re-index pass: file swapped for a FIFO after its check")
def test_watch_pass_fifo_swapped_in(repo: Path) -> None:
    got = _attack(repo, "fifo", "watch")
    assert got["skips"] == {"not_a_regular_file": 1}
    assert _skipped(repo).get(TARGET) == "not_a_regular_file"
    with _db(repo) as conn:  # the old rows of the file left the index
        assert conn.execute("SELECT count(*) FROM symbols WHERE name = 'target'").fetchone()[0] == 0


@pytest.mark.timeout(60)
@pytest.mark.hostile("6k: repoloop status: file swapped for a FIFO before its staleness hash")
def test_status_staleness_fifo_swapped_in(repo: Path) -> None:
    got = _attack(repo, "fifo", "status")
    assert got["changed"] == [TARGET]


@pytest.mark.timeout(60)
@pytest.mark.hostile("6l: .gitignore is a FIFO (the walk reads ignore files)")
def test_gitignore_fifo_does_not_hang_the_walk(repo: Path) -> None:
    os.mkfifo(repo / ".gitignore")
    got = _attack(repo, "none", "index")
    assert got["files_seen"] == N_FILES + 1
    assert _skipped(repo).get(".gitignore") == "not_a_regular_file"


@pytest.mark.timeout(60)
def test_in_repo_symlink_swapped_in_after_walk_is_read(repo: Path) -> None:
    """The post-walk checks keep the walk's symlink policy: a symlink inside the repository is
    followed (its resolved target opened with O_NOFOLLOW)."""
    got = _attack(repo, "inside", "index")
    assert got["files_seen"] == N_FILES + 1
    with _db(repo) as conn:
        assert conn.execute("SELECT count(*) FROM symbols WHERE name = 'f0'").fetchone()[0] == 2


@pytest.mark.timeout(60)
@pytest.mark.hostile("6m: watcher: root .gitignore is a FIFO")
def test_watcher_gitignore_fifo(repo: Path) -> None:
    os.mkfifo(repo / ".gitignore")
    code = "from repoloop.service.watch import PathFilter; import sys; PathFilter(__import__('pathlib').Path(sys.argv[1]))"
    try:
        r = subprocess.run([sys.executable, "-c", code, str(repo)], env=_env(), timeout=20, capture_output=True,
                           text=True)
    except subprocess.TimeoutExpired:
        pytest.fail("the watcher's PathFilter hung reading a FIFO .gitignore")
    assert r.returncode == 0, r.stderr


@pytest.mark.timeout(60)
@pytest.mark.hostile("6n: file grows between the reader's fstat and its read")
def test_read_is_bounded_when_the_file_grows_after_fstat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from repoloop.indexer import safe_read

    p = tmp_path / "a.py"
    p.write_bytes(b"x = 1\n")
    real_fstat, real_read = os.fstat, os.read
    read = []

    def fstat_then_grow(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        with open(p, "ab") as f:
            f.write(b"y = 2\n" * 100_000)
        return st

    def counted_read(fd: int, n: int) -> bytes:
        b = real_read(fd, n)
        read.append(len(b))
        return b

    monkeypatch.setattr(safe_read.os, "fstat", fstat_then_grow)
    monkeypatch.setattr(safe_read.os, "read", counted_read)
    assert safe_read.read_repo_file(str(p), str(tmp_path.resolve()), 1000) == "too_large"
    assert sum(read) == 1001


def test_read_repo_file_reasons(tmp_path: Path) -> None:
    """The reader's verdicts, one per kind of file; in-repo symlinks are followed."""
    from repoloop.indexer import safe_read

    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.py").write_bytes(b"a = 1\n")
    (root / "big.py").write_bytes(b"#" * 101)
    (root / "alias.py").symlink_to(root / "a.py")
    (root / "sub").mkdir()
    (root / "linkdir").symlink_to(root / "sub")
    (root / "sub" / "b.py").write_bytes(b"b = 2\n")
    (root / "out.py").symlink_to(tmp_path)
    os.mkfifo(root / "pipe.py")
    r = str(root.resolve())

    def read(name: str, **kw: Any) -> bytes | str:
        return safe_read.read_repo_file(str(root / name), r, 100, **kw)

    assert read("a.py") == read("alias.py") == b"a = 1\n"
    assert read("linkdir/b.py") == b"b = 2\n"
    assert read("big.py") == "too_large" and read("big.py", prefix=True) == b"#" * 100
    assert read("pipe.py") == "not_a_regular_file" and read("sub") == "not_a_regular_file"
    assert read("out.py") == "symlink_outside_repo"
    assert read("gone.py") == "vanished"


def test_index_cli_follows_in_repo_symlinks_only_to_what_it_does_not_index_itself(tmp_path: Path) -> None:
    """`repoloop index` end to end: a symlink inside the repository to a path the index holds
    under its own name is skipped (each file once: no doubled hits); one to a path left out
    (ignored here) is indexed under the link's name (the reader opens its resolved target);
    those leaving the repository are skipped."""
    root = tmp_path / "repo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("def real():\n    return 1\n")
    (root / "alias.py").symlink_to(root / "pkg" / "a.py")
    (root / "linkdir").symlink_to(root / "pkg")
    (root / "gen").mkdir()
    (root / "gen" / "b.py").write_text("def generated():\n    return 2\n")
    (root / ".gitignore").write_text("gen/\n")
    (root / "rel.py").symlink_to("gen/b.py")
    (tmp_path / "secret.py").write_text("def leaked():\n    pass\n")
    (root / "out.py").symlink_to(tmp_path / "secret.py")
    r = subprocess.run([sys.executable, "-m", "repoloop.cli", "index", str(root), "--no-embed"],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    with _db(root) as conn:
        by_path = {p: n for p, n in conn.execute(
            "SELECT f.path, count(s.id) FROM files f LEFT JOIN symbols s ON s.file_id = f.id GROUP BY f.path")}
    assert by_path == {"pkg/a.py": 1, "rel.py": 1, ".gitignore": 0}
    skipped = _skipped(root)
    assert skipped.get("out.py") == "symlink_outside_repo"
    assert skipped.get("alias.py") == skipped.get("linkdir/") == "symlink_to_indexed_path"


if __name__ == "__main__":
    print(json.dumps(_child(Path(sys.argv[1]), sys.argv[2], sys.argv[3])))


@pytest.mark.hostile("6: a `tags` symlink in the repository points at a file outside it")
def test_tags_output_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("def f():\n    pass\n")
    victim = tmp_path / "bashrc"
    victim.write_text("export PATH=/usr/bin\n")
    (repo / "tags").symlink_to(victim)
    r = subprocess.run([sys.executable, "-m", "repoloop.cli", "tags", str(repo)], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == "export PATH=/usr/bin\n"
    assert not (repo / "tags").is_symlink() and "f\ta.py" in (repo / "tags").read_text()


@pytest.mark.hostile("6: the repository commits `.repoloop` as a symlink out of it")
def test_a_symlinked_state_dir_is_never_followed(tmp_path: Path) -> None:
    import subprocess
    import sys

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("def f():\n    pass\n")
    elsewhere = tmp_path / "ssh"
    elsewhere.mkdir()
    (repo / ".repoloop").symlink_to(elsewhere)
    root = Path(__file__).resolve().parent.parent
    for args in (["index", str(repo), "--no-embed"], ["status", "--repo", str(repo)],
                 ["search", "f", "--repo", str(repo)]):
        r = subprocess.run([sys.executable, "-m", "repoloop.cli", *args], capture_output=True, text=True,
                           cwd=root, timeout=120)
        assert r.returncode == 2 and "symbolic link" in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert list(elsewhere.iterdir()) == []


@pytest.mark.hostile("6: an indexed file swapped for a FIFO before a search renders it")
@pytest.mark.timeout(120)
def test_search_never_blocks_on_a_file_swapped_after_indexing(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pay.py").write_text("def charge_card(amount):\n    return amount * 2\n")
    (repo / "other.py").write_text("def unrelated():\n    return 1\n")
    root = Path(__file__).resolve().parent.parent

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "repoloop.cli", *args], capture_output=True, text=True,
                              cwd=root, timeout=60)

    assert cli("index", str(repo), "--no-embed").returncode == 0
    (repo / "pay.py").unlink()
    os.mkfifo(repo / "pay.py")
    r = cli("search", "charge_card", "--repo", str(repo), "--json")
    assert r.returncode in (0, 1), r.stderr
    json.loads(r.stdout)
    r = cli("context", "charge card", "--repo", str(repo), "--budget", "500")
    assert r.returncode == 0, r.stderr
