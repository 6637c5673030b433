"""The walk keeps what is worth indexing and says why it left out everything else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from repoloop.indexer import walk as w


def _write(root: Path, rel: str, data: str | bytes = "x = 1\n") -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        p.write_bytes(data)
    else:
        p.write_text(data)
    return p


def _run(root: Path, **opts) -> tuple[set[str], dict[str, str]]:
    walker = w.Walker(root, w.WalkOptions(**opts))
    return {e.path for e in walker}, walker.skips


def test_nested_gitignore_applies_relative_to_its_directory(tmp_path: Path) -> None:
    _write(tmp_path, ".gitignore", "*.log\n/top_only.py\n")
    _write(tmp_path, "a.log")
    _write(tmp_path, "top_only.py")
    _write(tmp_path, "sub/top_only.py")  # "/top_only.py" is anchored at the root
    _write(tmp_path, "sub/.gitignore", "generated/\n/local.py\n")
    _write(tmp_path, "sub/generated/g.py")
    _write(tmp_path, "sub/local.py")
    _write(tmp_path, "local.py")  # sub's anchored pattern does not reach up
    _write(tmp_path, "sub/deeper/local.py")  # nor down into other directories
    _write(tmp_path, "sub/x.log")
    kept, skips = _run(tmp_path)
    assert kept == {".gitignore", "sub/.gitignore", "sub/top_only.py", "local.py", "sub/deeper/local.py"}
    assert skips["a.log"] == w.IGNORED
    assert skips["sub/x.log"] == w.IGNORED
    assert skips["top_only.py"] == w.IGNORED
    assert skips["sub/generated/"] == w.IGNORED  # a directory is pruned whole, once
    assert skips["sub/local.py"] == w.IGNORED


def test_negation_and_deeper_file_overrides(tmp_path: Path) -> None:
    _write(tmp_path, ".gitignore", "*.txt\n!keep.txt\n")
    _write(tmp_path, "drop.txt")
    _write(tmp_path, "keep.txt")
    _write(tmp_path, "docs/.gitignore", "!notes.txt\n")
    _write(tmp_path, "docs/notes.txt")  # re-included by the deeper file
    _write(tmp_path, "docs/other.txt")
    kept, skips = _run(tmp_path)
    assert "keep.txt" in kept and "docs/notes.txt" in kept
    assert skips["drop.txt"] == w.IGNORED and skips["docs/other.txt"] == w.IGNORED


def test_repoloopignore_and_git_info_exclude(tmp_path: Path) -> None:
    _write(tmp_path, ".repoloopignore", "fixtures/\n")
    _write(tmp_path, "fixtures/big.py")
    _write(tmp_path, ".git/info/exclude", "scratch.py\n")
    _write(tmp_path, "scratch.py")
    _write(tmp_path, "main.py")
    kept, skips = _run(tmp_path)
    assert "main.py" in kept and "fixtures/big.py" not in kept and "scratch.py" not in kept
    assert skips["fixtures/"] == w.REPOLOOPIGNORED
    assert skips["scratch.py"] == w.IGNORED
    assert not any(p.startswith(".git/") or p == ".git/" for p in kept | set(skips))


def test_dependency_and_build_dirs_are_pruned(tmp_path: Path) -> None:
    for d in ("node_modules/lib", ".venv/lib", "venv", "__pycache__", "dist", "target/debug", ".tox", "vendor/x"):
        _write(tmp_path, f"{d}/m.py")
    _write(tmp_path, "build/__init__.py")  # a package called build is source
    _write(tmp_path, "src/app.py")
    kept, skips = _run(tmp_path)
    assert kept == {"src/app.py", "build/__init__.py"}
    for d in ("node_modules/", ".venv/", "venv/", "__pycache__/", "dist/", "target/", ".tox/", "vendor/"):
        assert skips[d] == w.PRUNED


def test_binary_huge_minified_and_generated(tmp_path: Path) -> None:
    _write(tmp_path, "blob.py", b"x = 1\n\0\0\0binary")
    _write(tmp_path, "huge.py", "x = 1\n" * 50_000)  # 300 KB
    _write(tmp_path, "small.py", "y = 2\n")
    _write(tmp_path, "app.js", "var a=1;" * 2000)  # one 16 KB line
    _write(tmp_path, "lib.min.js", "var a = 1;\n")
    _write(tmp_path, "package-lock.json", "{}\n")
    kept, skips = _run(tmp_path, max_file_size=100_000)
    assert kept == {"small.py"}
    assert skips == {"blob.py": w.BINARY, "huge.py": w.TOO_LARGE, "app.js": w.MINIFIED,
                     "lib.min.js": w.MINIFIED, "package-lock.json": w.MINIFIED}
    # The limit is configurable.
    kept, _ = _run(tmp_path, max_file_size=1_000_000)
    assert "huge.py" in kept


def test_secrets_are_never_yielded(tmp_path: Path) -> None:
    names = [".env", ".env.local", "prod.env", "server.pem", "tls.key", "id_rsa", "id_ed25519.pub", ".npmrc",
             ".pypirc", ".netrc", "credentials.json", "gcp-credentials.json", "cert.p12", "cert.pfx"]
    for n in names:
        _write(tmp_path, f"conf/{n}", "SECRET=hunter2\n")
    _write(tmp_path, "conf/.env.example", "SECRET=\n")
    _write(tmp_path, "conf/settings.py", "DEBUG = True\n")
    kept, skips = _run(tmp_path)
    assert kept == {"conf/.env.example", "conf/settings.py"}
    assert {skips[f"conf/{n}"] for n in names} == {w.SECRET}


def test_symlinks_loop_outside_and_broken(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    outside = tmp_path / "outside"
    _write(outside, "secret_src.py")
    _write(repo, "pkg/a.py")
    os.symlink(repo / "pkg", repo / "pkg" / "loop")  # directory loop
    os.symlink(outside, repo / "out_dir")  # leaves the repo
    os.symlink(outside / "secret_src.py", repo / "out_file.py")
    os.symlink(repo / "missing.py", repo / "broken.py")
    os.symlink("self_loop.py", repo / "self_loop.py")  # ELOOP
    os.symlink(repo / "pkg" / "a.py", repo / "alias.py")  # inside the repo, to an indexed file: a duplicate
    os.symlink(repo / "pkg", repo / "linkdir")  # the same, for a directory
    _write(repo, "local/conf.py")  # ignored: reached only through the symlink, which is followed
    (repo / ".gitignore").write_text("local/\n")
    os.symlink(repo / "local" / "conf.py", repo / "conf.py")
    kept, skips = _run(repo)
    assert kept - {".gitignore"} == {"pkg/a.py", "conf.py"}
    assert skips["alias.py"] == skips["linkdir/"] == w.SYMLINK_DUPLICATE
    assert skips["local/"] == w.IGNORED
    assert skips["pkg/loop/"] == w.SYMLINK_LOOP
    assert skips["out_dir/"] == w.SYMLINK_OUTSIDE
    assert skips["out_file.py"] == w.SYMLINK_OUTSIDE
    assert skips["broken.py"] == w.BROKEN_SYMLINK
    assert skips["self_loop.py"] == w.SYMLINK_LOOP


def test_unreadable_file_and_special_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, where chmod 000 does not stop a read; so make os.open() (which every read
    # of a repository file goes through) raise the PermissionError an unprivileged user would get.
    _write(tmp_path, "locked.py")
    _write(tmp_path, "ok.py")
    os.mkfifo(tmp_path / "pipe.py")  # opening a FIFO would block forever: must not be read
    real_open = os.open

    def fake_open(path, *a, **k):
        if str(path).endswith("locked.py"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr(os, "open", fake_open)
    kept, skips = _run(tmp_path)
    assert kept == {"ok.py"}
    assert skips["locked.py"] == w.UNREADABLE
    assert skips["pipe.py"] == w.SPECIAL


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads chmod 000 files; covered by the monkeypatch test")
def test_chmod_000_as_user(tmp_path: Path) -> None:
    p = _write(tmp_path, "locked.py")
    p.chmod(0)
    _, skips = _run(tmp_path)
    assert skips["locked.py"] == w.UNREADABLE


def test_unreadable_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "private/a.py")
    _write(tmp_path, "b.py")
    real = os.scandir

    def fake_scandir(path):
        if str(path).endswith("private"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(w.os, "scandir", fake_scandir)
    kept, skips = _run(tmp_path)
    assert kept == {"b.py"} and skips["private/"] == w.UNREADABLE


def test_name_filter_and_known_unchanged_skip_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "image.png", b"\x89PNG\0\0")
    _write(tmp_path, "a.py", b"\0binary but known")
    opened: list[str] = []
    real_open = open

    def spy_open(path, *a, **k):
        opened.append(os.path.basename(str(path)))
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", spy_open)
    kept, skips = _run(tmp_path, want=lambda p: p.endswith(".py"),
                       known_unchanged=lambda p, size, mtime: p == "a.py")
    assert kept == {"a.py"} and skips == {"image.png": w.UNSUPPORTED}
    assert opened == []  # neither file was read


def test_walk_is_a_stream(tmp_path: Path) -> None:
    for i in range(50):
        _write(tmp_path, f"d{i % 5}/f{i}.py")
    walker = w.Walker(tmp_path)
    it = iter(walker)
    first = next(it)
    assert first.path.endswith(".py") and first.size == len("x = 1\n")
    assert sum(1 for _ in it) == 49


def test_file_name_that_is_not_utf8(tmp_path: Path) -> None:
    fd = os.open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.py"), os.O_WRONLY | os.O_CREAT)
    os.write(fd, b"x = 1\n")
    os.close(fd)
    _write(tmp_path, "ok.py")
    kept, skips = _run(tmp_path)
    assert kept == {"ok.py"}
    assert skips == {"caf\\xe9.py": w.BAD_NAME}
    "".join(skips).encode("utf-8")  # storable as is
