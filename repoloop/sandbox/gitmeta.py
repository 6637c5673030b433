"""What of a workspace's git metadata a sandbox may see: read-only, and without what leaks.

Host-side git later runs over the same tree (the agent commits each step; the user runs
`git status`). Whatever the sandbox can write there — `.git/config` (core.fsmonitor, hooksPath,
filters), hooks, a replaced `.git` file pointing at a gitdir of its own — becomes code the host
runs. So a workspace's `.git` (a directory, or a worktree's `.git` file) and the gitdirs it points
to are mounted read-only over the read-write workspace; the sandbox can neither edit nor replace
them. They stay readable so `git diff` / `git log` work inside, but the files that can carry a
remote's credentials (config with a token in a URL, reflogs and FETCH_HEAD recording it) are
masked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Masked inside every visible gitdir: credentials in remote URLs end up in these.
_MASK_FILES = ("config", "config.worktree", "FETCH_HEAD")
_MASK_DIRS = ("logs",)
# Inside, git reads a checkout owned by another uid (the command runs unprivileged): let it.
GIT_ENV = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}


@dataclass(frozen=True)
class Mount:
    kind: str  # "ro": bind src read-only at dest; "null": /dev/null over a file; "tmpfs": empty dir
    dest: Path
    src: Path | None = None


def _gitdir_of(dotgit_file: Path) -> Path | None:
    """The gitdir a worktree's `.git` file names (read by the host before any command ran)."""
    try:
        text = dotgit_file.read_text(errors="replace")[:4096]
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("gitdir:"):
            p = Path(line.split(":", 1)[1].strip())
            p = p if p.is_absolute() else (dotgit_file.parent / p)
            p = p.resolve()
            return p if (p / "HEAD").is_file() else None
    return None


def _common_dir(gitdir: Path) -> Path:
    try:
        rel = (gitdir / "commondir").read_text().strip()
    except OSError:
        return gitdir
    p = (gitdir / rel).resolve() if rel else gitdir
    return p if (p / "HEAD").is_file() else gitdir


def git_mounts(workspace: Path) -> list[Mount]:
    """Mounts that, applied after the workspace's read-write bind, put its git metadata out of
    the sandbox's reach. Empty when the workspace is not a git checkout."""
    workspace = Path(workspace)
    dotgit = workspace / ".git"
    if dotgit.is_symlink() or not dotgit.exists():
        return []
    gitdirs: list[Path] = []
    mounts = [Mount("ro", dotgit, dotgit)]
    if dotgit.is_dir():
        gitdirs.append(dotgit)
    else:
        gd = _gitdir_of(dotgit)
        if gd is not None:
            common = _common_dir(gd)
            for d in (common, gd):
                if d not in gitdirs and d != Path("/"):
                    gitdirs.append(d)
                    if not d.is_relative_to(workspace):
                        mounts.append(Mount("ro", d, d))
    for d in gitdirs:
        for name in _MASK_FILES:
            if (d / name).is_file():
                mounts.append(Mount("null", d / name))
        for name in _MASK_DIRS:
            if (d / name).is_dir():
                mounts.append(Mount("tmpfs", d / name))
    return mounts
