"""A total disk quota on the workspace: what a sandboxed command may add to it.

Linux has no per-directory quota that works on any filesystem without set-up, and RLIMIT_FSIZE
caps one file, not many. So while a command runs, the workspace's filesystem is watched with
`statvfs` (one cheap call a tick); only when the filesystem has filled by more than the quota has
left does the workspace get measured (a walk), and a command whose workspace grew past the quota
since the sandbox started is killed. Other writers on the same filesystem cost a walk, never a kill.
A poll can be outrun (a burst of writes that ends between two ticks), so the check runs once more
when the command ends: a command over the quota is reported as such whether or not it was caught
while running.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def tree_bytes(top: Path) -> int:
    """Disk blocks used by everything below `top` (symlinks not followed)."""
    total = 0
    for root, dirs, files in os.walk(top):
        for n in (*dirs, *files):
            try:
                total += os.lstat(os.path.join(root, n)).st_blocks * 512
            except OSError:
                pass
    return total


def _fs_used(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


@dataclass
class DiskWatch:
    workspace: Path
    limit: int  # bytes the workspace may grow by, from the sandbox's start
    baseline: int
    size: int  # the last measured size

    @classmethod
    def start(cls, workspace: Path, limit_mb: int) -> DiskWatch:
        size = tree_bytes(workspace)
        return cls(Path(workspace), limit_mb << 20, size, size)

    def for_command(self) -> Callable[[], str | None]:
        """A check for one command's run: None while within the quota, else why it was stopped."""
        fs0 = [_fs_used(self.workspace)]

        def check() -> str | None:
            try:
                grown = _fs_used(self.workspace) - fs0[0]
            except OSError:
                return None
            if grown <= self.limit - (self.size - self.baseline):
                return None
            self.size = tree_bytes(self.workspace)
            if self.size - self.baseline > self.limit:
                return (f"disk quota exceeded: the workspace grew by {(self.size - self.baseline) >> 20} MB "
                        f"(limit {self.limit >> 20} MB)")
            fs0[0] = _fs_used(self.workspace)  # someone else's writes: re-arm from here
            return None

        return check
