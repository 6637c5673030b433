"""Lending a root-owned workspace to an unprivileged uid for the life of a sandbox.

A sandboxed command must never run as host root: whatever it creates would be root's on the host
(a setuid-root shell left in the tree is a root shell for any local user). When root owns the
workspace, every entry below it is chowned to `SANDBOX_USER` while the sandbox lives and given
back at stop, with every setuid/setgid bit cleared. The top directory keeps its owner (git
refuses a worktree owned by someone else) and lets the sandbox's group write.

A process killed with -9 cannot give the tree back: a record of the lend (kept outside the
workspace, where the sandbox cannot forge it) lets the next sandbox over the same workspace
finish the job first (`recover`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

SANDBOX_USER = (65534, 65534)  # nobody:nogroup, the conventional owner of nothing
_SETID = stat.S_ISUID | stat.S_ISGID


def _state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "repoloop" / "lent"


def _record_path(workspace: Path) -> Path:
    return _state_dir() / (hashlib.sha256(str(workspace).encode()).hexdigest()[:24] + ".json")


def walk_entries(workspace: Path) -> list[str]:
    """Every path below the workspace except its top-level `.git` (git metadata stays the owner's).
    Symlinks are listed, never followed."""
    out: list[str] = []
    top = str(workspace)
    for root, dirs, files in os.walk(top):
        if root == top:
            dirs[:] = [d for d in dirs if d != ".git"]
            files = [f for f in files if f != ".git"]
        out.extend(os.path.join(root, n) for n in (*dirs, *files))
    return out


def clear_setid(workspace: Path) -> list[str]:
    """Clear setuid/setgid bits on every regular file below the workspace; the paths cleared."""
    cleared = []
    for p in walk_entries(workspace):
        try:
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode) and st.st_mode & _SETID:
                os.chmod(p, stat.S_IMODE(st.st_mode) & ~_SETID)
                cleared.append(p)
        except OSError:
            pass
    return cleared


@dataclass
class Lend:
    """One workspace lent to `user`; `give_back()` restores owners (idempotent)."""

    workspace: Path
    user: tuple[int, int] = SANDBOX_USER
    top: tuple[int, int, int] | None = None  # the top directory's uid, gid, mode before the lend
    owners: dict[str, tuple[int, int]] = field(default_factory=dict)  # entries not owned by the top's owner
    _fd: int | None = None

    @classmethod
    def needed(cls, workspace: Path) -> bool:
        """Only root can lend, and only a root-owned tree needs it (another owner is unprivileged)."""
        return os.geteuid() == 0 and Path(workspace).stat().st_uid == 0

    @classmethod
    def lend(cls, workspace: Path, user: tuple[int, int] = SANDBOX_USER) -> Lend:
        workspace = Path(workspace)
        recover(workspace)
        st = os.stat(workspace)
        lend = cls(workspace, user, (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)))
        uid, gid = user
        entries = walk_entries(workspace)
        for p in entries:  # remember owners that differ from the top's: rare, restored exactly
            try:
                est = os.lstat(p)
            except OSError:
                continue
            if (est.st_uid, est.st_gid) not in ((st.st_uid, st.st_gid), user):
                lend.owners[p] = (est.st_uid, est.st_gid)
        lend._write_record()
        os.chown(workspace, st.st_uid, gid)
        os.chmod(workspace, stat.S_IMODE(st.st_mode) | 0o070)
        for p in entries:
            try:
                os.lchown(p, uid, gid)
            except OSError:
                pass
        return lend

    def give_back(self) -> None:
        if self.top is None:
            return
        uid, gid = self.user
        top_uid, top_gid, top_mode = self.top
        for p in walk_entries(self.workspace):
            try:
                st = os.lstat(p)
                if stat.S_ISREG(st.st_mode) and st.st_mode & _SETID:
                    os.chmod(p, stat.S_IMODE(st.st_mode) & ~_SETID)
                if (st.st_uid, st.st_gid) == (uid, gid) or p in self.owners:
                    os.lchown(p, *self.owners.get(p, (top_uid, top_gid)))
            except OSError:
                pass
        try:
            os.chown(self.workspace, top_uid, top_gid)
            os.chmod(self.workspace, top_mode)
        except OSError:
            pass
        self.top = None
        self.owners.clear()
        self._drop_record()

    # -- the record a later process recovers from --------------------------------------------
    def _write_record(self) -> None:
        path = _record_path(self.workspace)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # held while this process lives: a live lend is never recovered
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"workspace": str(self.workspace), "user": list(self.user),
                                 "top": list(self.top or ()),
                                 "owners": {p: list(o) for p, o in self.owners.items()}}).encode())
        self._fd = fd

    def _drop_record(self) -> None:
        if self._fd is not None:
            _record_path(self.workspace).unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


def recover(workspace: Path) -> bool:
    """Give back a lend that a dead process left behind; False when there was none (or it is live)."""
    path = _record_path(Path(workspace))
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live sandbox holds it
        try:
            data = json.loads(os.read(fd, 1 << 24) or b"{}")
        except ValueError:
            data = {}
        if data.get("workspace") == str(workspace) and len(data.get("top", ())) == 3:
            lend = Lend(Path(workspace), tuple(data["user"]), tuple(data["top"]),  # type: ignore[arg-type]
                        {p: tuple(o) for p, o in data.get("owners", {}).items()})  # type: ignore[misc]
            lend.give_back()
        path.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)
