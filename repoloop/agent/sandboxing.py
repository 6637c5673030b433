"""The agent's view of a sandbox: one started `repoloop.sandbox` backend over the worktree."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

# No bytecode or cache droppings in the worktree (they would end up in the diff).
COMMAND_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "CI": "1", "NO_COLOR": "1"}


@dataclass
class SandboxRunner:
    sandbox: Any  # repoloop.sandbox.Sandbox

    @classmethod
    def open(cls, kind: str | None, workspace: Path, *, network: bool = False, image: str | None = None
             ) -> SandboxRunner:
        from repoloop.sandbox import open_sandbox

        sb = open_sandbox(kind, workspace, network=network, image=image)
        sb.start()
        return cls(sb)

    @property
    def kind(self) -> str:
        return str(getattr(self.sandbox, "kind", "?"))

    def run(self, command: str, timeout: float) -> Any:
        return self.sandbox.run(command, timeout=timeout, env=COMMAND_ENV)

    def stop(self) -> None:
        self.sandbox.stop()
