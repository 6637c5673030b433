"""The agent's view of a sandbox: one started `repoloop.sandbox` backend over the worktree."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from repoloop.sandbox.base import RunResult, Sandbox

# No bytecode or cache droppings in the worktree (they would end up in the diff).
COMMAND_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "CI": "1", "NO_COLOR": "1"}


@dataclass
class SandboxRunner:
    """The agent's Runner (repoloop.agent.interfaces) over a started sandbox backend."""

    sandbox: Sandbox

    @classmethod
    def open(cls, kind: str | None, workspace: Path, *, network: bool = False, image: str | None = None,
             ro_binds: tuple[Path, ...] = ()) -> SandboxRunner:
        from repoloop.sandbox import open_sandbox

        binds = [*interpreter_binds(), *ro_binds]
        sb = open_sandbox(kind, workspace, network=network, image=image, ro_binds=binds)
        sb.start()
        return cls(sb)

    @property
    def kind(self) -> str:
        return str(getattr(self.sandbox, "kind", "?"))

    def run(self, command: str, timeout: float) -> RunResult:
        return self.sandbox.run(command, timeout=timeout, env=COMMAND_ENV)

    def stop(self) -> None:
        self.sandbox.stop()


def preflight(kind: str | None) -> str:
    """The sandbox kind that will be used, or a RepoloopError now - before any model call is paid for."""
    from repoloop.errors import RepoloopError
    from repoloop.sandbox import KINDS, choose_kind

    if kind is None:
        return choose_kind()
    if kind not in KINDS:
        raise RepoloopError(f"unknown sandbox {kind!r}: choose one of {', '.join(KINDS)}")
    if kind == "bwrap":
        from repoloop.sandbox.bwrap import bwrap_path

        if not bwrap_path():
            raise RepoloopError("the bwrap sandbox needs bubblewrap (apt-get install bubblewrap)")
    elif kind == "docker":
        from repoloop.sandbox.docker_backend import engine_reachable

        why = engine_reachable()
        if why:
            raise RepoloopError(f"the docker sandbox is unavailable: {why}")
    return kind


def interpreter_binds() -> list[Path]:
    """The Python that runs repoloop, when it lives outside the system directories the sandbox
    shows (a pyenv under the home directory, a venv beside the checkout): bound read-only so
    detected test commands can use it."""
    from repoloop.sandbox.bwrap import SYSTEM_DIRS

    shown = [Path(d) for d in SYSTEM_DIRS]
    out = []
    for prefix in {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}:
        if not any(prefix == d or d in prefix.parents for d in shown):
            out.append(prefix)
    return sorted(out)


def project_env_binds(repo: Path) -> list[Path]:
    """The user's project virtualenv (untracked, so absent from the worktree) and the interpreter it
    points to, bound read-only so the detected `.venv/bin/python -m pytest` runs in the sandbox."""
    out: list[Path] = []
    for name in (".venv", "venv"):
        venv = Path(repo) / name
        cfg = venv / "pyvenv.cfg"
        if not cfg.is_file():
            continue
        out.append(venv.resolve())
        try:
            for line in cfg.read_text(errors="replace").splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "home" and value.strip():
                    home = Path(value.strip()).resolve()  # .../bin of the base interpreter
                    out.append(home.parent if home.name == "bin" else home)
        except OSError:
            pass
    return out
