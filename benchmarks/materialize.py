"""Prepare benchmark checkouts from bare git snapshots, outside the project repository.

Why: both localization datasets are scored against a repository tree at a fixed commit. dev.jsonl
needs one checkout per repo (its HEAD); the SWE-bench dev set needs each repo at many base commits,
which we visit in date order and reach by applying `git diff --raw --no-renames A B` to one working
tree, so that an incremental indexer sees only what changed.

    python benchmarks/materialize.py dev  --out /work/benchdata/dev
    python benchmarks/materialize.py swe  --out /work/benchdata/swe --id django__django-10880
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_OUT = Path(__file__).resolve().parent / "out"  # git-ignored
MIRROR_ROOT = Path(os.environ.get("BENCH_MIRRORS") or _OUT / "mirrors")  # bare git dirs OWNER+NAME/repo
BENCH_DIR = Path(os.environ.get("BENCH_DATA") or _OUT / "bench")  # dev.jsonl, swebench_verified_dev.jsonl

# Where an upstream snapshot is too large, SWEBENCH_DEV.md names forks with the same commits.
FORKS = {
    "django/django": "apprent1c3/django",
    "scikit-learn/scikit-learn": "Agent-Benchmarking/scikit-learn",
    "matplotlib/matplotlib": "williamlus/matplotlib",
}


def git_dir(repo: str) -> Path:
    """The bare git directory of `owner/name` (fetched snapshot under MIRROR_ROOT)."""
    src = FORKS.get(repo, repo)
    d = MIRROR_ROOT / src.replace("/", "+") / "repo"
    if not d.is_dir():
        raise FileNotFoundError(f"no snapshot of {src} at {d}: fetch github:{src} first")
    return d


def _git(gd: Path, *args: str, text: bool = True) -> str:
    out = subprocess.run(["git", "--git-dir", str(gd), *args], capture_output=True, text=text, check=True)
    return out.stdout


def commit_time(gd: Path, commit: str) -> int:
    """Committer timestamp, used to order instances so consecutive moves are small."""
    return int(_git(gd, "show", "-s", "--format=%ct", commit).strip())


@dataclass(frozen=True, slots=True)
class TreeEntry:
    mode: str
    sha: str
    path: str


def ls_tree(gd: Path, commit: str) -> list[TreeEntry]:
    """Every blob of the tree at `commit` (submodules skipped)."""
    out = _git(gd, "ls-tree", "-r", "-z", "--full-tree", commit)
    entries = []
    for rec in out.split("\0"):
        if not rec:
            continue
        meta, path = rec.split("\t", 1)
        mode, typ, sha = meta.split()
        if typ == "blob":
            entries.append(TreeEntry(mode, sha, path))
    return entries


class BlobReader:
    """A persistent `git cat-file --batch`: reading thousands of blobs one process each is too slow."""

    def __init__(self, gd: Path) -> None:
        self._p = subprocess.Popen(
            ["git", "--git-dir", str(gd), "cat-file", "--batch"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )

    def read(self, sha: str) -> bytes:
        assert self._p.stdin and self._p.stdout
        self._p.stdin.write(sha.encode() + b"\n")
        self._p.stdin.flush()
        header = self._p.stdout.readline().split()
        if len(header) < 3 or header[1] == b"missing":
            raise KeyError(sha)
        size = int(header[2])
        data = self._p.stdout.read(size)
        self._p.stdout.read(1)  # trailing newline
        return data

    def close(self) -> None:
        if self._p.poll() is None:
            assert self._p.stdin
            self._p.stdin.close()
            self._p.wait(timeout=10)

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _write_blob(root: Path, path: str, mode: str, data: bytes) -> None:
    dest = root / path
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() or dest.exists():
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        else:
            dest.unlink()
    if mode == "120000":
        os.symlink(data.decode("utf-8", "surrogateescape"), dest)
        return
    dest.write_bytes(data)
    if mode == "100755":
        dest.chmod(0o755)


def _prune_empty_dirs(d: Path, root: Path) -> None:
    """Remove directories a deletion left empty, as a fresh checkout would not have them."""
    while d != root and d.is_dir() and not any(d.iterdir()):
        d.rmdir()
        d = d.parent


def archive(gd: Path, commit: str, dest: Path) -> None:
    """A clean tree of `commit` at `dest` (no .git), as the dataset READMEs prescribe."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    tar = subprocess.Popen(["git", "--git-dir", str(gd), "archive", commit], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=tar.stdout, check=True)
    if tar.wait() != 0:
        raise RuntimeError(f"git archive {commit} failed")


class WorkTree:
    """One working tree per repository, moved between commits by applying raw diffs.

    The current commit is remembered in a marker file beside the tree, so a restarted benchmark
    continues from where the tree really is.
    """

    def __init__(self, gd: Path, root: Path) -> None:
        self.gd = gd
        self.root = root
        self._marker = root.parent / (root.name + ".commit")

    @property
    def commit(self) -> str | None:
        if self._marker.exists() and self.root.is_dir():
            return self._marker.read_text().strip() or None
        return None

    def move_to(self, commit: str) -> int:
        """Bring the tree to `commit`; returns the number of paths written or deleted."""
        cur = self.commit
        if cur == commit:
            return 0
        if cur is None:
            archive(self.gd, commit, self.root)
            self._marker.write_text(commit)
            return -1  # a fresh tree
        out = _git(self.gd, "diff", "--raw", "--no-renames", "-z", "--no-abbrev", cur, commit)
        parts = [p for p in out.split("\0")]
        changed = 0
        with BlobReader(self.gd) as blobs:
            i = 0
            while i < len(parts) - 1:
                meta = parts[i]
                if not meta.startswith(":"):
                    i += 1
                    continue
                path = parts[i + 1]
                i += 2
                _old_mode, new_mode, _old_sha, new_sha, status = meta[1:].split()
                dest = self.root / path
                if status.startswith("D") or new_mode == "160000":
                    if dest.is_symlink() or dest.is_file():
                        dest.unlink()
                        _prune_empty_dirs(dest.parent, self.root)
                    changed += 1
                    continue
                try:
                    data = blobs.read(new_sha)
                except KeyError:  # snapshots lack blobs of 4 MiB and more (a few astropy data files)
                    if dest.is_symlink() or dest.is_file():
                        dest.unlink()
                    changed += 1
                    continue
                _write_blob(self.root, path, new_mode, data)
                changed += 1
        self._marker.write_text(commit)
        return changed


def load_jsonl(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def checkout_name(repo: str) -> str:
    return repo.replace("/", "__")


def materialize_dev(out: Path, records: list[dict]) -> dict[str, Path]:
    """One checkout per repo of dev.jsonl at its HEAD (skipped when already there)."""
    dirs: dict[str, Path] = {}
    for repo, head in sorted({(r["repo"], r["head"]) for r in records}):
        dest = out / checkout_name(repo)
        marker = out / (checkout_name(repo) + ".commit")
        if not (dest.is_dir() and marker.exists() and marker.read_text().strip() == head):
            archive(git_dir(repo), head, dest)
            marker.write_text(head)
        dirs[repo] = dest
    return dirs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", choices=["dev", "swe"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--id", help="swe: one instance id to move its repo's tree to")
    a = ap.parse_args()
    if a.dataset == "dev":
        for repo, d in materialize_dev(a.out, load_jsonl(BENCH_DIR / "dev.jsonl")).items():
            print(repo, d)
        return
    recs = {r["id"]: r for r in load_jsonl(BENCH_DIR / "swebench_verified_dev.jsonl")}
    r = recs[a.id]
    wt = WorkTree(git_dir(r["repo"]), a.out / checkout_name(r["repo"]))
    n = wt.move_to(r["base_commit"])
    print(wt.root, r["base_commit"], "fresh" if n < 0 else f"{n} paths changed")


if __name__ == "__main__":
    main()
