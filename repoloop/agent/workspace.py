"""The agent's git worktree: where every edit happens, so the user's checkout is never touched.

`git worktree add .repoloop/worktrees/<id> -b repoloop/<id> HEAD`; verified steps are committed there;
the final diff is taken against the starting commit; the worktree is removed at the end and the
branch stays. `apply()` is the only path by which anything reaches the user's working tree.

The sandbox can write the worktree, so nothing in it is trusted by the host: every git call over
it names repoloop's own gitdir and the work tree explicitly (never following the worktree's
`.git`), with hooks, fsmonitor, filters and external programs off (`repoloop.gitsafe`); nested
`.git` entries the sandbox made are removed before each `git add`.

A run that is hard-killed (kill -9, OOM, power) cannot remove its worktree. Each live run holds an
exclusive `flock` on `worktrees/<id>.lock` for the life of its worktree; the kernel drops it when
the process dies, however it dies, so the next `repoloop run` or `repoloop runs` can tell a dead
run's worktree from a live one (`sweep_stale`): it commits what the dead run left uncommitted onto
its branch, removes the worktree, keeps the branch and ends the run's trajectory as "killed".
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repoloop.errors import RepoloopError
from repoloop.gitsafe import GitTarget, git, worktree_gitdir
from repoloop.indexer.store import refuse_symlinked_state_dir
from repoloop.sandbox.lend import recover as recover_lend

_IDENTITY = ["-c", "user.name=repoloop", "-c", "user.email=repoloop@localhost", "-c", "commit.gpgsign=false"]
# Build and test droppings that must never land in the agent's commits (on top of the repo's ignores).
_EXCLUDES = "__pycache__/\n*.py[cod]\n.pytest_cache/\n.mypy_cache/\n.ruff_cache/\n"
_DIFF_OPTS = ["--binary", "--no-ext-diff", "--no-textconv", "--ignore-submodules=all"]


def ensure_state_dir(repo: Path) -> Path:
    """`.repoloop/` with a `.gitignore` of `*`, so nothing repoloop keeps shows in `git status`."""
    d = repo / ".repoloop"
    refuse_symlinked_state_dir(d)
    d.mkdir(parents=True, exist_ok=True)
    ignore = d / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n")
    return d


@dataclass
class Workspace:
    repo: Path  # the user's repository root
    path: Path  # the worktree
    branch: str
    base: str  # the starting commit
    excludes: Path | None = None
    gitdir: Path | None = None  # the worktree's administrative gitdir (in the repository's .git)

    git_s: float = 0.0  # time spent in git (part of repoloop's own share of a step)
    _head: str | None = None
    _head_tree: str | None = None
    _lock: RunLock | None = None  # held while the worktree exists: this run is alive
    _targets: dict[Path, GitTarget] | None = None

    def _target(self, cwd: Path) -> GitTarget:
        """The worktree with its gitdir named explicitly; any other directory as it is."""
        if self._targets is None:
            self._targets = {}
        t = self._targets.get(cwd)
        if t is None:
            if cwd == self.path:
                if self.gitdir is None:
                    raise RepoloopError(f"no gitdir recorded for the worktree {self.path}")
                t = GitTarget(self.repo, git_dir=self.gitdir, work_tree=self.path)
            else:
                t = GitTarget(cwd)
            self._targets[cwd] = t
        return t

    def _git(self, args: list[str], cwd: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        t0 = time.perf_counter()
        try:
            return git(args, self._target(cwd), **kw)
        finally:
            self.git_s += time.perf_counter() - t0

    def _add(self) -> None:
        cfg = ["-c", f"core.excludesFile={self.excludes}"] if self.excludes else []
        self._drop_nested_repos(cfg)
        self._git([*cfg, "add", "-A"], self.path)

    def _drop_nested_repos(self, cfg: list[str]) -> None:
        """A `.git` the sandbox made below the top would become a gitlink (and, for git, a
        repository to run things in): removed. Untracked embedded repositories are the entries
        `ls-files -o` lists with a trailing slash."""
        out = self._git([*cfg, "ls-files", "-o", "--exclude-standard", "-z"], self.path).stdout
        for entry in out.split("\0"):
            if not entry.endswith("/"):
                continue
            nested = self.path / entry / ".git"
            if nested.is_dir() and not nested.is_symlink():
                shutil.rmtree(nested, ignore_errors=True)
            else:
                nested.unlink(missing_ok=True)

    def tree(self) -> str:
        """A fingerprint of the worktree's content (tree hash), to see whether anything changed."""
        self._add()
        return self._git(["write-tree"], self.path).stdout.strip()

    @staticmethod
    def check(repo: Path) -> str:
        """The HEAD commit of `repo`, or a RepoloopError saying why the agent cannot work there."""
        top = git(["rev-parse", "--show-toplevel"], repo, check=False)
        if top.returncode != 0:
            raise RepoloopError(f"{repo} is not a git repository (the agent works on a git worktree)")
        head = git(["rev-parse", "--verify", "HEAD"], repo, check=False)
        if head.returncode != 0:
            raise RepoloopError(f"{repo} has no commits yet; commit something first")
        return head.stdout.strip()

    @staticmethod
    def user_changes(repo: Path) -> bool:
        """Whether the user's checkout has uncommitted changes to tracked files."""
        out = git(["status", "--porcelain", "--untracked-files=no"], repo, check=False)
        return bool(out.stdout.strip())

    @classmethod
    def create(cls, repo: Path, run_id: str, state_dir: Path | None = None) -> Workspace:
        repo = repo.resolve()
        recover_lend(repo)  # a `repoloop exec` killed with -9 left the checkout lent to the sandbox's uid
        base = cls.check(repo)
        state = state_dir or ensure_state_dir(repo)
        path = state / "worktrees" / run_id
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(repo, state)
        lock = RunLock.acquire(path.parent / f"{run_id}.lock")  # before the worktree exists
        if lock is None:
            raise RepoloopError(f"run {run_id} is already in progress")
        branch = f"repoloop/{run_id}"
        try:
            git(["worktree", "add", "--quiet", "-b", branch, str(path), base], repo)
            try:
                gitdir = worktree_gitdir(repo, path)  # now, before anything else has touched the tree
                if gitdir is None:
                    raise RepoloopError(f"git made the worktree {path} but it is not registered in the repository")
                excludes = state / "agent-excludes"
                if not excludes.exists():
                    excludes.write_text(_EXCLUDES)
            except BaseException:  # no Workspace will exist to clean up: do it here, keep the branch
                _remove_tree(path)
                git(["worktree", "prune"], repo, check=False)
                raise
        except BaseException:
            lock.release()
            raise
        return cls(repo=repo, path=path, branch=branch, base=base, excludes=excludes, gitdir=gitdir, _lock=lock)

    # -- state ------------------------------------------------------------------------------------
    def dirty(self) -> bool:
        return bool(self._git(["status", "--porcelain", "--untracked-files=all", "--ignore-submodules=all"],
                              self.path).stdout.strip())

    def commit(self, message: str, tree: str | None = None) -> str | None:
        """Commit everything in the worktree (or `tree`, just written from its index by `tree()`);
        None when there was nothing to commit. commit-tree + update-ref: two processes, not four."""
        tree = tree or self.tree()
        if self._head is None:  # the branch head and its tree, tracked in memory after this
            self._head, self._head_tree = self._git(["rev-parse", "HEAD", "HEAD^{tree}"], self.path).stdout.split()
        if self._head_tree == tree:
            return None
        head = self._head
        sha = self._git([*_IDENTITY, "commit-tree", tree, "-p", head, "-m", message], self.path).stdout.strip()
        self._git(["update-ref", "-m", "repoloop: step", f"refs/heads/{self.branch}", sha, head], self.path)
        self._head, self._head_tree = sha, tree
        return sha

    def base_tree(self) -> str:
        return self._git(["rev-parse", f"{self.base}^{{tree}}"], self.path).stdout.strip()

    def diff(self) -> str:
        """The branch's change against the starting commit, uncommitted work in the worktree included."""
        if self.path.exists():
            self._add()
            return self._git(["diff", "--cached", *_DIFF_OPTS, self.base], self.path).stdout
        return self._git(["diff", *_DIFF_OPTS, self.base, self.branch], self.repo).stdout

    def branch_diff(self) -> str:
        return self._git(["diff", *_DIFF_OPTS, self.base, self.branch], self.repo).stdout

    def remove(self, *, delete_branch: bool = False) -> None:
        _remove_tree(self.path)
        self._git(["worktree", "prune"], self.repo, check=False)
        if delete_branch:
            self._git(["branch", "-D", self.branch], self.repo, check=False)
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def apply(self, diff: str) -> None:
        """Apply the final diff to the user's working tree (the one sanctioned write there)."""
        if not diff.strip():
            return
        chk = self._git(["apply", "--check", "--whitespace=nowarn"], self.repo, check=False, input=diff)
        if chk.returncode != 0:
            reason = (chk.stderr.strip().splitlines() or ["conflict"])[0]
            raise RepoloopError(f"--apply: the diff does not apply to your working tree ({reason}); "
                                f"the change is on branch {self.branch}")
        self._git(["apply", "--whitespace=nowarn"], self.repo, input=diff)


@dataclass
class RunLock:
    """An exclusive flock on a file: held by a live run, released by the kernel when it dies."""

    path: Path
    fd: int

    @classmethod
    def acquire(cls, path: Path) -> RunLock | None:
        """The lock, or None when a live process holds it. The descriptor is not inherited by
        child processes (sandboxed commands), so only this process's death releases it."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(path, fd)

    def release(self) -> None:
        self.path.unlink(missing_ok=True)  # while still held: nobody can take a lock on a stale file
        os.close(self.fd)


@dataclass(slots=True)
class Swept:
    run_id: str
    branch: str | None
    salvaged: str | None  # the commit holding work the dead run left uncommitted, if any


def sweep_stale(repo: Path, state_dir: Path) -> list[Swept]:
    """Remove the worktrees of runs that died without cleaning up (their lock is free); their
    branches stay, with any uncommitted work committed onto them. Live runs are left alone."""
    wt_dir = Path(state_dir) / "worktrees"
    if not wt_dir.is_dir():
        return []
    swept: list[Swept] = []
    for path in sorted(p for p in wt_dir.iterdir() if p.is_dir()):
        lock = RunLock.acquire(wt_dir / f"{path.name}.lock")
        if lock is None:
            continue  # a live run
        try:
            swept.append(_sweep_one(repo, state_dir, path))
        finally:
            lock.release()
    if swept:
        git(["worktree", "prune"], repo, check=False)
    return swept


def _sweep_one(repo: Path, state_dir: Path, path: Path) -> Swept:
    gitdir = worktree_gitdir(repo, path)  # from the repository's side: the tree's .git is not trusted
    branch = None
    if gitdir is not None:
        head = git(["symbolic-ref", "--quiet", "--short", "HEAD"], GitTarget(repo, git_dir=gitdir), check=False)
        branch = head.stdout.strip() if head.returncode == 0 and head.stdout.strip() else None
    salvaged = None
    if branch is not None:
        excludes = Path(state_dir) / "agent-excludes"
        ws = Workspace(repo=repo, path=path, branch=branch, base="",
                       excludes=excludes if excludes.exists() else None, gitdir=gitdir)
        try:
            salvaged = ws.commit("repoloop: unverified work of a run that died (saved by a later run)")
        except RepoloopError:
            salvaged = None  # a broken worktree: remove it anyway, the branch keeps what was committed
    _remove_tree(path)
    _end_trajectory(Path(state_dir) / "runs" / f"{path.name}.jsonl", branch, salvaged)
    return Swept(path.name, branch, salvaged)


def _remove_tree(path: Path) -> None:
    """Delete a worktree's files ourselves (`git worktree remove` would first read the tree's own
    `.git`); `git worktree prune` then drops its registration. rmtree never follows symlinks."""
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def _end_trajectory(path: Path, branch: str | None, salvaged: str | None) -> None:
    """Close a dead run's trajectory with a `run_end` of status "killed" (if it has none)."""
    try:
        data = path.read_bytes()
    except OSError:
        return
    if b'"type": "run_end"' in data:
        return
    last_t = 0.0
    for line in data.splitlines()[::-1]:
        try:
            last_t = float(json.loads(line).get("t", 0.0))
            break
        except (ValueError, AttributeError):
            continue
    rec = {"type": "run_end", "t": last_t, "status": "killed",
           "reason": "the process died; its worktree was removed by a later run", "branch": branch,
           "salvaged": salvaged}
    with path.open("ab") as fh:
        fh.write((b"" if not data or data.endswith(b"\n") else b"\n") + json.dumps(rec).encode() + b"\n")
