"""Running git on the host over a tree that untrusted code could have written.

Git runs programs named by its configuration and by the tree: hooks, `core.fsmonitor`,
`core.hooksPath`, clean/smudge/process filters chosen by `.gitattributes`, external diff and
textconv drivers, pagers, ssh and credential helpers, and it finds its repository by following
whatever `.git` it meets. Everything repoloop runs over the agent's worktree (or a user's
checkout) goes through `git()` here, which turns all of those off on the command line (which
outranks every config file), drops the caller's GIT_* environment, ignores the system config,
and — for a worktree — names the gitdir and work tree explicitly, so no `.git` in the tree is
ever followed. The sandbox keeps git metadata read-only as well (`repoloop.sandbox.gitmeta`):
belt and braces.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from repoloop.errors import RepoloopError

# Off, whatever any config file or the environment says.
SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.askPass=",
    "core.sshCommand=false",
    "core.gitProxy=",
    "core.alternateRefsCommand=",
    "credential.helper=",
    "diff.external=",
    "protocol.allow=never",
    "submodule.recurse=false",
    "diff.ignoreSubmodules=all",
    "status.submoduleSummary=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "log.showSignature=false",
    "gpg.program=false",
    "safe.directory=*",  # the worktree may be lent to the sandbox's uid; ownership is not trust here
)
# Per-driver keys that name a program (filter.<x>.clean, diff.<x>.textconv, ...): emptied.
_DRIVER_KEYS = r"^(filter|diff|merge)\..+\.(clean|smudge|process|textconv|command|driver)$"
# The caller's environment may point git anywhere (GIT_DIR, GIT_EXTERNAL_DIFF, GIT_SSH_COMMAND...).
_DROP_ENV_PREFIXES = ("GIT_",)
_DROP_ENV = ("PAGER", "EDITOR", "VISUAL", "SSH_ASKPASS")


def safe_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(_DROP_ENV_PREFIXES) and k not in _DROP_ENV}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0", GIT_PAGER="cat", GIT_OPTIONAL_LOCKS="0",
               GIT_NO_REPLACE_OBJECTS="1")
    return env


@dataclass
class GitTarget:
    """Where git runs: a directory (repository found from it) or an explicit gitdir + work tree."""

    cwd: Path
    git_dir: Path | None = None
    work_tree: Path | None = None
    _drivers: list[str] | None = field(default=None, repr=False)

    def prefix(self) -> list[str]:
        out = []
        if self.git_dir is not None:
            out.append(f"--git-dir={self.git_dir}")
        if self.work_tree is not None:
            out.append(f"--work-tree={self.work_tree}")
        for c in SAFE_CONFIG:
            out += ["-c", c]
        return out

    def driver_overrides(self) -> list[str]:
        """`-c` pairs emptying every filter/diff/merge driver the configuration defines (reading a
        config runs nothing). A required filter is made optional, or git would refuse to add."""
        if self._drivers is None:
            out = _run(["git", *self.prefix(), "config", "--null", "--name-only", "--get-regexp", _DRIVER_KEYS],
                       self.cwd, None, 30)
            names = sorted({n for n in out.stdout.split("\0") if n.strip()})
            pairs: list[str] = []
            for n in names:
                pairs += ["-c", f"{n}="]
                if n.startswith("filter."):
                    pairs += ["-c", n.rsplit(".", 1)[0] + ".required=false"]
            self._drivers = pairs
        return self._drivers


def _run(argv: list[str], cwd: Path, input: str | None, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, input=input, timeout=timeout,
                              env=safe_env(), stdin=None if input is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise RepoloopError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise RepoloopError(f"git {argv[1:2]} took over {timeout:g}s") from None


def git(args: list[str], cwd: Path | GitTarget, *, check: bool = True, input: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `git args` with every program-running feature off; a RepoloopError naming the failure
    when `check` and git exits non-zero."""
    target = cwd if isinstance(cwd, GitTarget) else GitTarget(Path(cwd))
    argv = ["git", *target.prefix(), *target.driver_overrides(), *args]
    out = _run(argv, target.cwd, input, timeout)
    if check and out.returncode != 0:
        raise RepoloopError(f"git {args[0]} failed: {(out.stderr or out.stdout).strip().splitlines()[-1:]}")
    return out


def common_dir(repo: Path) -> Path:
    out = git(["rev-parse", "--path-format=absolute", "--git-common-dir"], repo)
    return Path(out.stdout.strip())


def worktree_gitdir(repo: Path, worktree: Path) -> Path | None:
    """The administrative gitdir of `worktree`, found from the repository's side (its
    `worktrees/*/gitdir` files), never from the worktree's own `.git`, which its occupant may have
    rewritten."""
    try:
        admin = common_dir(repo) / "worktrees"
    except RepoloopError:
        return None
    want = str(Path(worktree) / ".git")
    try:
        entries = sorted(admin.iterdir())
    except OSError:
        return None
    for d in entries:
        try:
            if (d / "gitdir").read_text().strip() == want:
                return d
        except OSError:
            continue
    return None
