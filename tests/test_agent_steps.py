"""The loop's seams: `Agent(config, model=..., sandbox=..., retriever=...)` with in-process
collaborators, over a real git repository and worktree. What the steps do with each kind of reply
(a format error continues the loop and is reported to the model; the step limit ends the run with a
status and a reason; each event is recorded once) and the repetition rules in one place.

The end-to-end behaviour (real HTTP, real sandbox) is tests/test_agent_loop.py and
tests/test_tool_modes.py; these tests pin the structure those rely on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from repoloop.agent.config import BudgetConfig, ModelConfig, RunConfig, SandboxConfig
from repoloop.agent.interfaces import PlanDecision
from repoloop.agent.llm import LLMReply, ToolCall, Usage
from repoloop.agent.loop import Agent
from repoloop.agent.repeats import RepeatGuard
from repoloop.agent.trajectory import read
from repoloop.sandbox.base import RunResult as CommandRun
from tests.fake_llm import make_bug_repo


class ScriptedModel:
    """Replies in order; keeps every request's messages (as sent) to check what the model was told."""

    def __init__(self, *replies: LLMReply) -> None:
        self.replies = list(replies)
        self.requests: list[list[dict]] = []
        self.closed = False

    def chat(self, messages: list[dict], tools: list[dict] | None = None, *, model: str | None = None,
             tool_choice: str | None = None, tools_optional: bool = False) -> LLMReply:
        self.requests.append(json.loads(json.dumps(messages)))
        return self.replies.pop(0)

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeRunner:
    """A sandbox that records commands; every command (the tests included) succeeds."""

    kind: str = "fake"
    commands: list[str] = field(default_factory=list)
    stopped: bool = False

    def run(self, command: str, timeout: float) -> CommandRun:
        self.commands.append(command)
        return CommandRun(exit_code=0, stdout="ok\n", stderr="")

    def stop(self) -> None:
        self.stopped = True


@dataclass
class _Pack:
    text: str = ""
    items: list[Any] = field(default_factory=list)


class NoRetrieval:
    """A retriever with nothing indexed (the Observer's calls, answered empty)."""

    closed = False

    def repo_map(self, budget: int) -> str:
        return ""

    def context(self, query: str, budget: int) -> _Pack:
        return _Pack()

    def search(self, query: str, k: int, **kw: Any) -> list[Any]:
        return []

    def definitions(self, name: str, **kw: Any) -> list[Any]:
        return []

    def close(self) -> None:
        self.closed = True


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def event(self, name: str, data: dict[str, Any]) -> None:
        self.events.append((name, data))

    def approve_plan(self, plan: str) -> PlanDecision:
        return PlanDecision("approve")


def prose(text: str) -> LLMReply:
    return LLMReply(content=text, tool_calls=[], usage=Usage(100, 10), cost=None, model="m", seconds=0.001)


def tool(name: str, args: dict[str, Any], n: int = 0) -> LLMReply:
    return LLMReply(content="", tool_calls=[ToolCall(f"call_{name}_{n}", name, json.dumps(args))],
                    usage=Usage(100, 10), cost=None, model="m", seconds=0.001)


def agent(repo: Path, model: ScriptedModel, *, max_steps: int = 30, reporter: Recorder | None = None,
          retriever: NoRetrieval | None = None) -> tuple[Agent, FakeRunner]:
    runner = FakeRunner()
    cfg = RunConfig(task="Fix add", repo=repo, test_cmd="check", model=ModelConfig("m", tool_mode="native"),
                    sandbox=SandboxConfig(kind="local"), budget=BudgetConfig(max_steps=max_steps))
    return Agent(cfg, model=model, sandbox=lambda kind, path: runner, retriever=retriever or NoRetrieval(),
                 reporter=reporter), runner


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_bug_repo(tmp_path / "repo")


def test_a_format_error_is_reported_to_the_model_and_the_loop_goes_on(repo: Path) -> None:
    model = ScriptedModel(prose("Plan: fix add."), prose("I would change add() now."),
                          tool("finish", {"summary": "done"}))
    retriever = NoRetrieval()
    a, runner = agent(repo, model, retriever=retriever)
    result = a.run()
    assert result.status == "success" and result.reason == "verified" and result.steps == 2
    # The request after the prose carries the prose and then the correction, as a user message.
    after = model.requests[2]
    assert after[-2] == {"role": "assistant", "content": "I would change add() now."}
    assert after[-1]["role"] == "user" and "tool" in after[-1]["content"].lower()
    recs = list(read(result.trajectory))
    assert [r["outcome"] for r in recs if r["type"] == "parse"] == ["prose", "native"]
    assert [r["parse"] for r in recs if r["type"] == "step"] == ["prose", "native"]
    assert runner.commands == ["check"] and runner.stopped and model.closed
    assert not retriever.closed  # the caller's retriever is the caller's to close


def test_the_step_limit_ends_the_run_with_its_status_and_reason(repo: Path) -> None:
    model = ScriptedModel(prose("Plan: look around."), tool("list_dir", {"path": "."}, 1),
                          tool("list_dir", {"path": "calc"}, 2))
    a, _ = agent(repo, model, max_steps=2)
    result = a.run()
    assert (result.status, result.reason, result.steps) == ("failed", "max steps reached (2)", 2)
    assert len(model.replies) == 0 and len(model.requests) == 3  # the plan and two steps, no third
    end = list(read(result.trajectory))[-1]
    assert end["type"] == "run_end" and end["status"] == "failed" and end["reason"] == "max steps reached (2)"


def test_each_event_is_recorded_once_for_the_trajectory_and_the_reporter(repo: Path) -> None:
    model = ScriptedModel(prose("Plan: fix add."),
                          tool("edit_file", {"path": "calc/__init__.py", "old_str": "return a - b",
                                             "new_str": "return a + b"}),
                          tool("finish", {"summary": "add() adds"}))
    rec = Recorder()
    a, _ = agent(repo, model, reporter=rec)
    result = a.run()
    assert result.status == "success", result.reason
    recs = list(read(result.trajectory))
    for kind in ("observe", "tool", "verify", "step", "run_end"):
        records = [r for r in recs if r["type"] == kind]
        events = [d for n, d in rec.events if n == kind]
        assert records and len(events) == len(records), kind
        for r, d in zip(records, events, strict=True):  # the reporter sees what was recorded
            shown = {k: v for k, v in r.items() if k not in ("type", "t")}
            assert {k: d[k] for k in shown if k in d and k not in ("tokens", "seconds", "wall_s")} == \
                {k: v for k, v in shown.items() if k in d and k not in ("tokens", "seconds", "wall_s")}
    step = next(d for n, d in rec.events if n == "step")
    assert step["max_steps"] == 30 and step["tools"] == ["edit_file"] and isinstance(step["tokens"], int)


def test_repeat_rules_live_in_one_place() -> None:
    g = RepeatGuard(repeat_limit=3, stall_limit=5)
    bad = ToolCall("1", "read_file", '{"path": "x"}')
    assert g.failed_call(bad) == g.failed_call(ToolCall("2", "read_file", '{ "path":"x" }')) == ""
    assert g.failed_call(bad) == "the model repeated the same failing call 3 times (read_file)"
    assert g.refused_finish("t1") == g.refused_finish("t2") == g.refused_finish("t1") == ""
    assert g.refused_finish("t1") == "the model called finish 3 times with the tests failing"

    g = RepeatGuard(repeat_limit=3, stall_limit=5)
    assert g.acted([bad]) == ("", "")
    note, stop = g.acted([bad])
    assert "same action as your previous reply (2 times" in note and stop == ""
    g.acted([bad]), g.acted([bad])
    assert g.acted([bad]) == ("", "the model repeated the same action 5 times in a row (read_file)")

    g = RepeatGuard(repeat_limit=3, stall_limit=5)
    assert g.unusable("empty", "") == g.unusable("empty", None) == ""
    assert g.unusable("empty", "") == "the model sent 3 empty replies in a row"
    g = RepeatGuard(repeat_limit=3, stall_limit=5)
    assert [g.unusable("prose", f"words {i}") for i in range(4)] == [""] * 4
    assert g.unusable("cut", "x") == "the model sent 5 replies in a row without a usable tool call (last: cut)"
    g.acted([bad])  # a reply that acts resets the no-action counts
    assert g.no_action == 0 and g.unusable("prose", "same") == g.unusable("prose", "same") == ""
    assert g.unusable("prose", "same") == "the model repeated the same reply 3 times without acting"
