"""Best-effort cgroups (v1 or v2) for one sandboxed command tree: a process cap and a memory cap.

Why: RLIMIT_NPROC is not enforced for processes of host uid 0 (root), which is what a bwrap
sandbox started by root runs as, so a fork bomb would only be stopped by the timeout. Where we
may create cgroups (root, a writable hierarchy), a child of our own cgroup caps pids and memory
for everything the command spawns. Where we may not, `available` is False and callers say so.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

_CONTROLLERS = ("pids", "memory")


@dataclass
class _Mount:
    point: Path
    root: str
    version: int
    controllers: frozenset[str]


def _mounts() -> list[_Mount]:
    out: list[_Mount] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        f, r = left.split(), right.split()
        if len(f) < 5 or len(r) < 3:
            continue
        if r[0] == "cgroup":
            ctrls = frozenset(o for o in r[2].split(",") if o in _CONTROLLERS)
            if ctrls:
                out.append(_Mount(Path(f[4]), f[3], 1, ctrls))
        elif r[0] == "cgroup2":
            out.append(_Mount(Path(f[4]), f[3], 2, frozenset()))
    return out


def _own_paths() -> tuple[dict[str, str], str | None]:
    """Our cgroup path per v1 controller, and our v2 path."""
    v1: dict[str, str] = {}
    v2: str | None = None
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return v1, v2
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, ctrls, path = parts
        if hid == "0" and ctrls == "":
            v2 = path
        for c in ctrls.split(","):
            if c in _CONTROLLERS:
                v1[c] = path
    return v1, v2


def _under(mount: _Mount, path: str) -> Path | None:
    root = mount.root.rstrip("/")
    if root and not (path == root or path.startswith(root + "/")):
        return None
    return mount.point / path[len(root):].lstrip("/")


@dataclass
class CgroupJail:
    """Child cgroups holding one command tree. Create with `CgroupJail.create`; always `remove()`."""

    dirs: dict[str, Path] = field(default_factory=dict)  # controller -> cgroup directory
    version: dict[str, int] = field(default_factory=dict)

    @classmethod
    def create(cls, *, pids_max: int, memory_bytes: int) -> CgroupJail:
        jail = cls()
        if os.geteuid() != 0:
            return jail
        name = f"repoloop-sbx-{uuid.uuid4().hex[:12]}"
        v1, v2 = _own_paths()
        mounts = _mounts()
        values = {"pids": pids_max, "memory": memory_bytes}
        for ctrl in _CONTROLLERS:
            for m in mounts:
                if m.version == 1 and ctrl in m.controllers and ctrl in v1:
                    parent = _under(m, v1[ctrl])
                    if parent and jail._make(ctrl, parent / name, 1, values[ctrl]):
                        break
            else:
                for m in mounts:
                    if m.version == 2 and v2 is not None:
                        parent = _under(m, v2)
                        if parent and jail._make_v2(ctrl, parent, name, values[ctrl]):
                            break
        return jail

    def _make(self, ctrl: str, d: Path, version: int, value: int) -> bool:
        _sweep(d.parent)
        try:
            d.mkdir(exist_ok=True)
            if ctrl == "pids":
                (d / "pids.max").write_text(str(value))
            elif version == 1:
                (d / "memory.limit_in_bytes").write_text(str(value))
                sw = d / "memory.memsw.limit_in_bytes"
                if sw.exists():
                    try:
                        sw.write_text(str(value))
                    except OSError:
                        pass
            else:
                (d / "memory.max").write_text(str(value))
                if (d / "memory.swap.max").exists():
                    (d / "memory.swap.max").write_text("0")
        except OSError:
            _rmdir(d)
            return False
        self.dirs[ctrl] = d
        self.version[ctrl] = version
        return True

    def _make_v2(self, ctrl: str, parent: Path, name: str, value: int) -> bool:
        try:
            if ctrl not in (parent / "cgroup.subtree_control").read_text().split():
                (parent / "cgroup.subtree_control").write_text(f"+{ctrl}")  # EBUSY if parent has procs
        except OSError:
            return False
        return self._make(ctrl, parent / name, 2, value)

    @property
    def available(self) -> dict[str, bool]:
        return {"processes": "pids" in self.dirs, "memory": "memory" in self.dirs}

    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in dict.fromkeys(self.dirs.values())]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for f in self.procs_files():
            try:
                found.update(int(x) for x in f.read_text().split())
            except (OSError, ValueError):
                pass
        return found

    def kill(self) -> None:
        """SIGKILL everything in the jail (repeated: a fork bomb may be forking meanwhile)."""
        for d in self.dirs.values():
            k = d / "cgroup.kill"
            if k.exists():
                try:
                    k.write_text("1")
                except OSError:
                    pass
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)

    def oom_killed(self) -> bool:
        d = self.dirs.get("memory")
        if d is None:
            return False
        try:
            if self.version["memory"] == 1:
                text = (d / "memory.oom_control").read_text()
            else:
                text = (d / "memory.events").read_text()
        except OSError:
            return False
        for line in text.splitlines():
            k, _, v = line.partition(" ")
            if k == "oom_kill" and v.strip().isdigit() and int(v) > 0:
                return True
        return False

    def pids_hit(self) -> bool:
        d = self.dirs.get("pids")
        if d is None:
            return False
        try:
            text = (d / "pids.events").read_text()
        except OSError:
            return False
        return any(line.startswith("max ") and line.split()[1] != "0" for line in text.splitlines())

    def remove(self) -> None:
        self.kill()
        for d in self.dirs.values():
            _rmdir(d)
        self.dirs.clear()


STALE_AFTER_S = 60.0  # a jail is entered within milliseconds of its creation


def _sweep(parent: Path) -> None:
    """Remove jails left by a repoloop that was killed: rmdir only succeeds on an empty cgroup, and
    only those older than STALE_AFTER_S are tried (a fresh one may be about to be entered)."""
    try:
        entries = list(parent.glob("repoloop-sbx-*"))
    except OSError:
        return
    now = time.time()
    for d in entries:
        try:
            if now - d.stat().st_mtime > STALE_AFTER_S and not (d / "cgroup.procs").read_text().strip():
                d.rmdir()
        except OSError:
            pass


def _rmdir(d: Path) -> None:
    for _ in range(50):
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
