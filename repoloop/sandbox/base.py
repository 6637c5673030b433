"""The one sandbox protocol every backend speaks, and the values that cross its boundary.

The agent only ever sees `Sandbox`: it starts one over a workspace (a git worktree), runs
commands in it step after step, and stops it. Backends differ in isolation, never in interface.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol, runtime_checkable

Command = str | Sequence[str]

TIMEOUT_EXIT_CODE = 124  # what `timeout(1)` returns; the CLI and the agent report it as such
QUOTA_EXIT_CODE = 128 + 25  # as if killed by SIGXFSZ: the workspace outgrew its disk quota
# Set in every command's environment to the backend's kind: a script inside can tell where it runs.
# Written, never read: nothing in repoloop takes its configuration from the environment below the CLI.
KIND_ENV = "REPOLOOP_SANDBOX"


@dataclass(frozen=True)
class Limits:
    """Resource limits for a sandbox. Each backend enforces what it can and says what it could not."""

    memory_mb: int = 2048
    processes: int = 256
    file_size_mb: int = 1024
    open_files: int = 1024
    cpus: float = 1.0  # docker only: CPU share of the container
    cpu_seconds: int | None = None  # CPU time per command (RLIMIT_CPU); None: wall-clock timeout only
    timeout: float = 300.0  # default wall-clock timeout of one command, seconds
    output_bytes: int = 64_000  # kept per stream (head and tail); the rest is cut with a marker
    disk_mb: int = 2048  # how much the workspace may grow while the sandbox lives (all commands)
    tmp_mb: int = 512  # size of each scratch tmpfs (/tmp, /var/tmp, homes, /run)


@dataclass(frozen=True)
class RunResult:
    """What one command did. `exit_code` is 124 on a timeout, 128+N when killed by signal N."""

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    duration: float = 0.0
    stdout_cut: int = 0  # bytes removed from the middle of stdout by the output cap
    stderr_cut: int = 0
    note: str = ""  # why it ended abnormally (timeout, signal, likely limit), for people and the agent

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclass
class SandboxInfo:
    """What a started sandbox enforces, so callers and tests can tell real limits from wishes."""

    kind: str
    network: bool
    enforced: dict[str, bool] = field(default_factory=dict)


@runtime_checkable
class Sandbox(Protocol):
    """Start over a workspace, run commands in it, stop. Also a context manager."""

    kind: str
    workspace: Path

    def start(self) -> None: ...

    def run(
        self,
        command: Command,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> RunResult: ...

    def stop(self) -> None: ...

    def __enter__(self) -> Sandbox: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class SandboxBase:
    """Shared plumbing: context manager, idempotent start/stop, argv normalisation."""

    kind = "base"

    def __init__(self, workspace: Path, *, network: bool = False, limits: Limits | None = None) -> None:
        self.workspace = Path(workspace).resolve()
        self.network = network
        self.limits = limits or Limits()
        self.started = False

    def __enter__(self) -> SandboxBase:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def _timeout(self, timeout: float | None) -> float:
        return float(self.limits.timeout if timeout is None else timeout)

    def _workdir(self, cwd: str | None) -> Path:
        """The directory to run in: the workspace or a directory inside it (never outside)."""
        if not cwd:
            return self.workspace
        p = (self.workspace / cwd).resolve()
        if p != self.workspace and self.workspace not in p.parents:
            from repoloop.errors import RepoloopError

            raise RepoloopError(f"cwd {cwd!r} is outside the workspace")
        return p


def shell_argv(command: Command, shell: str = "bash") -> list[str]:
    """A string runs through the shell (`bash -c` where there is bash), a list runs as is.
    Not a login shell: Debian's /etc/profile resets PATH, losing the venv and the caller's PATH."""
    if isinstance(command, str):
        return [shell, "-c", command]
    argv = [str(a) for a in command]
    if not argv:
        from repoloop.errors import RepoloopError

        raise RepoloopError("empty command")
    return argv


def describe(command: Command) -> str:
    return command if isinstance(command, str) else shlex.join(str(a) for a in command)


def exit_note(exit_code: int, limits: Limits) -> str:
    """A human hint for an abnormal exit status (128+N means signal N)."""
    import signal

    if exit_code <= 128 or exit_code > 128 + 64:
        return ""
    try:
        name = signal.Signals(exit_code - 128).name
    except ValueError:
        return f"killed by signal {exit_code - 128}"
    hint = {
        "SIGKILL": f" (memory limit {limits.memory_mb} MB exceeded?)",
        "SIGXCPU": " (CPU time limit)",
        "SIGXFSZ": f" (file size limit {limits.file_size_mb} MB)",
    }.get(name, "")
    return f"killed by {name}{hint}"
