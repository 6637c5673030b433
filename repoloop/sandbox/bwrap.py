"""The bubblewrap backend: the default where no Docker engine answers.

Each command gets a fresh bwrap: the host's / read-only, the workspace read-write, a fresh /tmp,
home directories, /run and credential files hidden, no network (unless asked), its own PID
namespace (so killing its init kills every descendant), no capabilities, dies with its parent,
and rlimits (prlimit) plus, where we may create them, cgroup caps on processes and memory.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from repoloop.errors import RepoloopError
from repoloop.sandbox.base import Command, Limits, RunResult, SandboxBase, SandboxInfo, shell_argv
from repoloop.sandbox.cgroup import CgroupJail
from repoloop.sandbox.process import run_process

# Directories replaced by an empty tmpfs, files replaced by /dev/null (when they exist).
HIDDEN_DIRS = ("/tmp", "/var/tmp", "/root", "/home", "/run", "/etc/ssh")
HIDDEN_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-")


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
        self.started = True
        probe = self.run(["true"], timeout=30)
        if probe.exit_code != 0:
            self.started = False
            first = (probe.stderr.strip().splitlines() or ["no message"])[0]
            raise RepoloopError(f"bubblewrap cannot start a sandbox here: {first}")
        jail = CgroupJail.create(pids_max=self.limits.processes, memory_bytes=self.limits.memory_mb << 20)
        cg = jail.available if self.use_cgroups else {"processes": False, "memory": False}
        jail.remove()
        self.info.enforced = {
            "read_only_host": True,
            "network_isolated": not self.network,
            "memory": True,  # RLIMIT_AS always; a cgroup as well where cg["memory"]
            "processes": os.geteuid() != 0 or cg["processes"],  # RLIMIT_NPROC is void for root
            "memory_cgroup": cg["memory"],
            "file_size": True,
        }

    def stop(self) -> None:
        self.started = False  # nothing persists between commands: each run is its own bwrap

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
            result = run_process(
                argv,
                timeout=self._timeout(timeout),
                limits=self.limits,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                cwd=workdir,
                kill_extra=jail.kill,
            )
            if result.exit_code != 0:
                extra = []
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
        a = [self._bwrap or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        hidden = list(HIDDEN_DIRS)
        if home != Path("/") and str(home) not in hidden:
            hidden.append(str(home))
        for d in hidden:
            if os.path.isdir(d) and not os.path.islink(d):
                a += ["--tmpfs", d]
        for f in HIDDEN_FILES:
            if os.path.isfile(f):
                a += ["--ro-bind", "/dev/null", f]
        for h in self.hide:
            if h.is_dir():
                a += ["--tmpfs", str(h)]
            elif h.exists():
                a += ["--ro-bind", "/dev/null", str(h)]
        if self.network:
            resolv = Path("/etc/resolv.conf").resolve()
            if resolv.exists() and str(resolv).startswith("/run/"):
                a += ["--ro-bind", str(resolv), str(resolv)]
        for p in self.ro_binds:
            a += ["--ro-bind", str(p), str(p)]
        ws = str(self.workspace)
        a += ["--bind", ws, ws, "--chdir", str(workdir)]
        a += ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
        if self.network:
            a += ["--share-net"]
        a += ["--clearenv"]
        for k, v in self._env(home, env).items():
            a += ["--setenv", k, v]
        pl = [
            self._prlimit or "prlimit",
            f"--as={lim.memory_mb << 20}",
            f"--nproc={lim.processes}",
            f"--fsize={lim.file_size_mb << 20}",
            f"--nofile={lim.open_files}",
        ]
        if lim.cpu_seconds:
            pl.append(f"--cpu={lim.cpu_seconds}")
        return [*a, "--", *pl, "--", *cmd]

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
            "REPOLOOP_SANDBOX": self.kind,
        }
        env.update(extra or {})
        return env


def _with_note(r: RunResult, note: str) -> RunResult:
    from dataclasses import replace

    return replace(r, note=note)
