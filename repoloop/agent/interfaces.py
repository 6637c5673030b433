"""The agent's collaborators as small protocols, so that a caller (or a test) can hand the loop its
own model, sandbox or reporter: `Agent(config, model=..., sandbox=..., reporter=...)`.

The real ones: `repoloop.agent.llm.LLMClient` (Model), `repoloop.agent.sandboxing.SandboxRunner`
(Runner, opened by `open_runner`), the CLI's console reporter (Reporter). Retrieval is reached
through `repoloop.agent.observe.Observer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from repoloop.agent.llm import LLMReply
from repoloop.agent.tools import CommandResult


class Model(Protocol):
    """An OpenAI-protocol chat endpoint: one request, one parsed reply (or an LLMError)."""

    def chat(self, messages: list[dict], tools: list[dict] | None = None, *, model: str | None = None,
             tool_choice: str | None = None, tools_optional: bool = False) -> LLMReply: ...

    def close(self) -> None: ...


class Runner(Protocol):
    """A started sandbox over the run's worktree: where commands and the tests run."""

    kind: str

    def run(self, command: str, timeout: float) -> CommandResult: ...

    def stop(self) -> None: ...


class RunnerFactory(Protocol):
    """Opens (and starts) a sandbox of `kind` (None: chosen automatically) over `workspace`."""

    def __call__(self, kind: str | None, workspace: Path) -> Runner: ...


@dataclass(frozen=True)
class PlanDecision:
    action: str  # approve | reject | edit
    plan: str = ""


class Reporter(Protocol):
    """How the loop talks to a person (the CLI gives a rich one; tests and programs a quiet one).
    `event` gets what the trajectory records for the event, plus what a person needs beside it."""

    def event(self, name: str, data: dict[str, Any]) -> None: ...

    def approve_plan(self, plan: str) -> PlanDecision: ...


class QuietReporter:
    def event(self, name: str, data: dict[str, Any]) -> None:
        pass

    def approve_plan(self, plan: str) -> PlanDecision:
        return PlanDecision("approve")
