"""Real trees for the index-equivalence tests: a slice of this machine's standard library, and this
repository at two of its own commits (a real pair of commits, for the branch-switch test)."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

STDLIB = Path(sysconfig.get_paths()["stdlib"])
STDLIB_PACKAGES = ["json", "email", "asyncio", "importlib", "unittest", "xml", "http", "logging",
                   "concurrent", "collections", "urllib", "sqlite3", "wsgiref", "html", "dbm"]
STDLIB_MODULES = "abcdef"  # top-level modules whose name starts with one of these letters
PYTHON = ".".join(map(str, sys.version_info[:3]))
REPO = Path(__file__).resolve().parents[1]


def copy_stdlib_slice(dest: Path) -> Path:
    """~450 files of the standard library (packages without their tests, some top-level modules)."""
    dest.mkdir(parents=True, exist_ok=True)
    for n in STDLIB_PACKAGES:
        shutil.copytree(STDLIB / n, dest / n, ignore=shutil.ignore_patterns("__pycache__", "test", "tests"))
    for f in sorted(STDLIB.glob("*.py")):
        if f.name[0] in STDLIB_MODULES:
            shutil.copy2(f, dest / f.name)
    return dest


def has_commit(commit: str) -> bool:
    return subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{commit}^{{commit}}"],
                          capture_output=True).returncode == 0


def checkout(commit: str, dest: Path) -> Path:
    """This repository's tree at `commit` (git archive), replacing whatever `dest` held; files
    whose content is the same keep their old mtime (as a `git checkout` leaves them)."""
    data = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit],
                          capture_output=True, check=True).stdout
    dest.mkdir(parents=True, exist_ok=True)
    want: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            if m.isfile():
                f = tar.extractfile(m)
                assert f is not None
                want[m.name] = f.read()
    for p in sorted(dest.rglob("*"), reverse=True):
        rel = p.relative_to(dest).as_posix()
        if rel.startswith(".repoloop"):
            continue
        if p.is_file() and rel not in want:
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()
    for rel, content in want.items():
        p = dest / rel
        if p.is_file() and p.read_bytes() == content:
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    return dest
