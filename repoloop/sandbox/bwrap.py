"""The bubblewrap backend: the default where no Docker engine answers.

Each command gets a fresh bwrap over an allow-list, not the host's whole `/`: the system's
toolchain directories read-only, the workspace read-write (its git metadata read-only, see
`gitmeta`), explicit read-only binds (an interpreter, a project venv), fresh size-capped tmpfs
for /tmp, homes and /run, nothing else of the host. No network (unless asked), its own PID
namespace (so killing its init kills every descendant), no capabilities, dies with its parent,
rlimits (prlimit) plus, where we may create them, cgroup caps on processes and memory. Run by root,
the command itself runs as an unprivileged uid (the workspace lent to it, `lend`), never as root.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from repoloop.errors import RepoloopError
from repoloop.sandbox.base import KIND_ENV, Command, Limits, RunResult, SandboxBase, SandboxInfo, shell_argv
from repoloop.sandbox.cgroup import CgroupJail
from repoloop.sandbox.disk import DiskWatch
from repoloop.sandbox.gitmeta import GIT_ENV, git_mounts
from repoloop.sandbox.lend import SANDBOX_USER, Lend
from repoloop.sandbox.process import run_process

# The host paths a command sees (read-only, where they exist): the system and its toolchains.
SYSTEM_DIRS = ("/usr", "/etc", "/opt", "/nix", "/gnu", "/snap")
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")  # merged-/usr symlinks or dirs
# Fresh, empty, size-capped tmpfs (the command's scratch space, nothing of the host's in it).
HIDDEN_DIRS = ("/tmp", "/var/tmp", "/root", "/home", "/run")
# Inside the visible /etc: secrets replaced by an empty file or directory.
HIDDEN_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-", "/etc/sudoers",
                "/etc/security/opasswd")
HIDDEN_ETC_DIRS = ("/etc/ssh", "/etc/ssl/private", "/etc/sudoers.d", "/etc/docker", "/etc/wireguard",
                   "/etc/letsencrypt", "/etc/NetworkManager/system-connections")


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


class BwrapSandbox(SandboxBase):
    kind = "bwrap"

    def __init__(
        self,
        workspace: Path,
        *,
        network: bool = False,
        limits: Limits | None = None,
        ro_binds: Sequence[Path] = (),
        hide: Sequence[Path] = (),
        use_cgroups: bool = True,
    ) -> None:
        super().__init__(workspace, network=network, limits=limits)
        self.ro_binds = [Path(p).resolve() for p in ro_binds]
        self.hide = [Path(p) for p in hide]
        self.use_cgroups = use_cgroups
        self._bwrap: str | None = None
        self._prlimit: str | None = None
        self._setpriv: str | None = None
        self._user: tuple[int, int] | None = None  # the uid:gid commands run as, when we are root
        self._lend: Lend | None = None
        self._git_mounts: list = []
        self._disk: DiskWatch | None = None
        self._empty: str | None = None
        self.info = SandboxInfo(kind=self.kind, network=network)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self.started:
            return
        if not self.workspace.is_dir():
            raise RepoloopError(f"sandbox workspace {self.workspace} is not a directory")
        if self.workspace == Path("/"):
            raise RepoloopError("the sandbox workspace cannot be /")
        self._bwrap = bwrap_path()
        if not self._bwrap:
            raise RepoloopError("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
        self._prlimit = shutil.which("prlimit")
        if not self._prlimit:
            raise RepoloopError("prlimit (util-linux) is not installed; the bwrap sandbox needs it")
        if os.geteuid() == 0:
            self._setpriv = shutil.which("setpriv")
            if not self._setpriv:
                raise RepoloopError("setpriv (util-linux) is not installed; run as root, the bwrap "
                                    "sandbox needs it to drop to an unprivileged uid")
            st = self.workspace.stat()
            self._user = (st.st_uid, st.st_gid) if st.st_uid != 0 else SANDBOX_USER
            if Lend.needed(self.workspace):
                self._lend = Lend.lend(self.workspace, SANDBOX_USER)
        self._git_mounts = git_mounts(self.workspace)
        self._disk = DiskWatch.start(self.workspace, self.limits.disk_mb)
        self.started = True
        try:
            probe = self.run(["true"], timeout=30)
        except BaseException:
            self.stop()
            raise
        if probe.exit_code != 0:
            self.stop()
            first = (probe.stderr.strip().splitlines() or ["no message"])[0]
            raise RepoloopError(f"bubblewrap cannot start a sandbox here: {first}")
        jail = CgroupJail.create(pids_max=self.limits.processes, memory_bytes=self.limits.memory_mb << 20)
        cg = jail.available if self.use_cgroups else {"processes": False, "memory": False}
        jail.remove()
        root = os.geteuid() == 0
        self.info.enforced = {
            "read_only_host": True,
            "host_hidden": True,  # only the allow-list, the workspace and ro_binds are visible
            "git_metadata_read_only": bool(self._git_mounts) or not (self.workspace / ".git").exists(),
            "network_isolated": not self.network,
            "non_root": True,  # root drops to self._user; anyone else is unprivileged already
            "memory": True,  # RLIMIT_AS always; a cgroup as well where cg["memory"]
            "processes": not root or cg["processes"] or self._user is not None,
            "memory_cgroup": cg["memory"],
            "file_size": True,
            "disk_quota": True,
        }

    def stop(self) -> None:
        self.started = False  # nothing persists between commands: each run is its own bwrap
        if self._empty is not None:
            Path(self._empty).unlink(missing_ok=True)
            self._empty = None
        if self._lend is not None:
            self._lend.give_back()
            self._lend = None

    # -- running -------------------------------------------------------------------------------
    def run(
        self,
        command: Command,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> RunResult:
        if not self.started:
            self.start()
        workdir = self._workdir(cwd)
        argv = self.argv(shell_argv(command, "bash" if shutil.which("bash") else "sh"), workdir, env)
        jail = (
            CgroupJail.create(pids_max=self.limits.processes, memory_bytes=self.limits.memory_mb << 20)
            if self.use_cgroups
            else CgroupJail()
        )
        try:
            procs = jail.procs_files()
            if procs:  # enter the cgroups before bwrap starts, so every descendant is inside
                script = "".join(f"echo $$ > {shlex.quote(str(p))} || exit 125; " for p in procs)
                argv = ["/bin/sh", "-c", script + 'exec "$@"', "sh", *argv]
            disk = self._disk
            result = run_process(
                argv,
                timeout=self._timeout(timeout),
                limits=self.limits,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                cwd=workdir,
                kill_extra=jail.kill,
                watch=disk.for_command() if disk is not None else None,
            )
            extra = []
            if result.exit_code != 0:
                if jail.oom_killed():
                    extra.append(f"memory limit {self.limits.memory_mb} MB exceeded (OOM kill)")
                if jail.pids_hit():
                    extra.append(f"process limit {self.limits.processes} reached")
            if extra:
                result = _with_note(result, "; ".join([n for n in [result.note] if n] + extra))
            return result
        finally:
            jail.remove()

    def argv(self, cmd: list[str], workdir: Path, env: Mapping[str, str] | None) -> list[str]:
        """The full bwrap command line for one command (public so `repoloop exec -v` can show it)."""
        lim = self.limits
        home = Path(os.environ.get("HOME") or "/root")
        a = [self._bwrap or "bwrap"]
        for d in SYSTEM_DIRS:
            if os.path.isdir(d) and not os.path.islink(d):
                a += ["--ro-bind", d, d]
        for d in SYSTEM_LINKS:
            if os.path.islink(d):
                a += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                a += ["--ro-bind", d, d]
        a += ["--dev", "/dev", "--proc", "/proc"]
        hidden = list(HIDDEN_DIRS)
        if home != Path("/") and str(home) not in hidden:
            hidden.append(str(home))
        for d in hidden:  # world-writable like a real /tmp: the command may run unprivileged
            a += ["--perms", "1777", "--size", str(lim.tmp_mb << 20), "--tmpfs", d]
        empty = self._empty_file()
        for f in HIDDEN_FILES:
            if os.path.isfile(f):
                a += ["--ro-bind", empty, f]
        for d in HIDDEN_ETC_DIRS:
            if os.path.isdir(d) and not os.path.islink(d):
                a += ["--size", str(1 << 20), "--tmpfs", d, "--remount-ro", d]
        if self.network:
            resolv = Path("/etc/resolv.conf").resolve()
            if resolv.exists() and not str(resolv).startswith(("/usr/", "/etc/")):
                a += ["--ro-bind", str(resolv), str(resolv)]
        for p in self.ro_binds:
            if p.exists():
                a += [*_parents(p, hidden), "--ro-bind", str(p), str(p)]
        ws = str(self.workspace)
        a += [*_parents(self.workspace, hidden), "--bind", ws, ws]
        for m in self._git_mounts:  # after the workspace: its git metadata is read-only inside
            if m.kind == "ro":
                a += ["--ro-bind", str(m.src), str(m.dest)]
            elif m.kind == "null":
                a += ["--ro-bind", empty, str(m.dest)]
            else:
                a += ["--size", str(1 << 20), "--tmpfs", str(m.dest), "--remount-ro", str(m.dest)]
        for h in self.hide:
            if h.is_symlink():
                continue
            if h.is_dir():
                a += ["--size", str(1 << 20), "--tmpfs", str(h), "--remount-ro", str(h)]
            elif h.exists():
                a += ["--ro-bind", empty, str(h)]
        a += ["--chdir", str(workdir)]
        if os.geteuid() == 0:
            # No user namespace (it would map the command to host root); setpriv below drops root.
            a += ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
            if not self.network:
                a += ["--unshare-net"]
        else:
            a += ["--unshare-all"]
            if self.network:
                a += ["--share-net"]
        a += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        if self._user is not None:  # only setpriv holds these, and drops them with root
            a += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
        a += ["--clearenv"]
        for k, v in self._env(home, env).items():
            a += ["--setenv", k, v]
        drop: list[str] = []
        if self._user is not None:
            uid, gid = self._user
            drop = [self._setpriv or "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                    "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
        pl = [
            self._prlimit or "prlimit",
            f"--as={lim.memory_mb << 20}",
            f"--nproc={lim.processes}",
            f"--fsize={lim.file_size_mb << 20}",
            f"--nofile={lim.open_files}",
        ]
        if lim.cpu_seconds:
            pl.append(f"--cpu={lim.cpu_seconds}")
        return [*a, "--", *drop, *pl, "--", *cmd]

    def _empty_file(self) -> str:
        """An empty read-only file to mask others with (/dev/null would not open: bwrap mounts
        binds nodev)."""
        if self._empty is None or not os.path.exists(self._empty):
            fd, path = tempfile.mkstemp(prefix="repoloop-empty-")
            os.close(fd)
            os.chmod(path, 0o444)
            self._empty = path
        return self._empty

    def _env(self, home: Path, extra: Mapping[str, str] | None) -> dict[str, str]:
        path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        venv = self.workspace / ".venv" / "bin"
        if venv.is_dir():
            path = f"{venv}:{path}"
        env = {
            "PATH": path,
            "HOME": str(home),  # an empty tmpfs: writable, nothing of the host's in it
            "TMPDIR": "/tmp",
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            KIND_ENV: self.kind,
            **GIT_ENV,
        }
        if self._user is not None:
            env["USER"] = env["LOGNAME"] = "nobody" if self._user == SANDBOX_USER else str(self._user[0])
        env.update(extra or {})
        return env


def _parents(dest: Path, tmpfs_dirs: Sequence[str]) -> list[str]:
    """`--dir`s making a bind destination's parents traversable (0755): bwrap would create them
    0700, root's alone, and the command may run unprivileged. Parents that come from a system
    bind or are a scratch tmpfs exist already."""
    shown = [Path(d) for d in (*SYSTEM_DIRS, *SYSTEM_LINKS)]
    out: list[str] = []
    for anc in reversed(dest.parents):
        if anc == Path("/") or str(anc) in tmpfs_dirs or any(anc == d or anc.is_relative_to(d) for d in shown):
            continue
        out += ["--perms", "0755", "--dir", str(anc)]
    return out


def _with_note(r: RunResult, note: str) -> RunResult:
    from dataclasses import replace

    return replace(r, note=note)
