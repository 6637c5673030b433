"""The agent's git worktree: where every edit happens, so the user's checkout is never touched.

`git worktree add .repoloop/worktrees/<id> -b repoloop/<id> HEAD`; verified steps are committed there;
the final diff is taken against the starting commit; the worktree is removed at the end and the
branch stays. `apply()` is the only path by which anything reaches the user's working tree.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repoloop.errors import RepoloopError

_IDENTITY = ["-c", "user.name=repoloop", "-c", "user.email=repoloop@localhost", "-c", "commit.gpgsign=false"]
# Build and test droppings that must never land in the agent's commits (on top of the repo's ignores).
_EXCLUDES = "__pycache__/\n*.py[cod]\n.pytest_cache/\n.mypy_cache/\n.ruff_cache/\n"


def git(args: list[str], cwd: Path, *, check: bool = True, input: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, input=input,
                             timeout=timeout)
    except FileNotFoundError:
        raise RepoloopError("git is not installed") from None
    if check and out.returncode != 0:
        raise RepoloopError(f"git {args[0]} failed: {(out.stderr or out.stdout).strip().splitlines()[-1:]}")
    return out


def ensure_state_dir(repo: Path) -> Path:
    """`.repoloop/` with a `.gitignore` of `*`, so nothing repoloop keeps shows in `git status`."""
    d = repo / ".repoloop"
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

    git_s: float = 0.0  # time spent in git (part of repoloop's own share of a step)
    _head: str | None = None
    _head_tree: str | None = None

    def _git(self, args: list[str], cwd: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
        t0 = time.perf_counter()
        try:
            return git(args, cwd, **kw)
        finally:
            self.git_s += time.perf_counter() - t0

    def _add(self) -> None:
        cfg = ["-c", f"core.excludesFile={self.excludes}"] if self.excludes else []
        self._git([*cfg, "add", "-A"], self.path)

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
        base = cls.check(repo)
        state = state_dir or ensure_state_dir(repo)
        path = state / "worktrees" / run_id
        path.parent.mkdir(parents=True, exist_ok=True)
        branch = f"repoloop/{run_id}"
        git(["worktree", "add", "--quiet", "-b", branch, str(path), base], repo)
        excludes = state / "agent-excludes"
        if not excludes.exists():
            excludes.write_text(_EXCLUDES)
        return cls(repo=repo, path=path, branch=branch, base=base, excludes=excludes)

    # -- state ------------------------------------------------------------------------------------
    def dirty(self) -> bool:
        return bool(self._git(["status", "--porcelain", "--untracked-files=all"], self.path).stdout.strip())

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
            return self._git(["diff", "--cached", "--binary", self.base], self.path).stdout
        return self._git(["diff", "--binary", self.base, self.branch], self.repo).stdout

    def branch_diff(self) -> str:
        return self._git(["diff", "--binary", self.base, self.branch], self.repo).stdout

    def remove(self, *, delete_branch: bool = False) -> None:
        self._git(["worktree", "remove", "--force", str(self.path)], self.repo, check=False)
        self._git(["worktree", "prune"], self.repo, check=False)
        if delete_branch:
            self._git(["branch", "-D", self.branch], self.repo, check=False)

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
