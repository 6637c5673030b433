"""The `local` backend: runs on the host with only a timeout and an output cap. Unsafe; it is
never chosen automatically and says so on stderr when started."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from repoloop.sandbox.base import Command, RunResult, SandboxBase, shell_argv
from repoloop.sandbox.process import run_process

WARNING = (
    "repoloop: warning: the 'local' sandbox runs commands directly on this machine with no isolation "
    "(only a timeout and an output cap)"
)


class LocalSandbox(SandboxBase):
    kind = "local"

    def start(self) -> None:
        if not self.started:
            print(WARNING, file=sys.stderr)
        super().start()

    def run(
        self,
        command: Command,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> RunResult:
        full_env = dict(os.environ)
        full_env.update(env or {})
        return run_process(
            shell_argv(command, "bash" if _has_bash() else "sh"),
            timeout=self._timeout(timeout),
            limits=self.limits,
            env=full_env,
            cwd=self._workdir(cwd),
        )


def _has_bash() -> bool:
    import shutil

    return shutil.which("bash") is not None
