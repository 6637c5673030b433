"""The agent loop: observe (retrieve), plan (optionally approved by a person), then steps of act
(tools) and verify (tests in the sandbox) until the work is submitted or a limit ends it. Every
step is written to the trajectory with its timing split into model, sandbox and repoloop's own time.

The user's checkout is never written: edits happen in a git worktree on branch `repoloop/<id>`;
only `apply=True` with a verified result copies the final diff back.

One step is `query` (one model call, its reply read into tool calls), `dispatch` (run the calls;
`finish` verifies and submits), `verify` (tests after edits). Its ends are exceptions: `Submitted`
(finish accepted) and `LimitsExceeded` (steps, tokens, cost, or a repetition `RepeatGuard` caught)
end the loop at the end of the step; `FormatError` (a reply with nothing to run) sends the model a
correction and the loop goes on.

Talking to the model is repoloop.agent.model_turn (`ModelTurn`: the request and its records, the
server's refusals and errors, compaction, the switch to text mode). Every reply is read into at most
a few calls and an outcome (native, action, bash, prose, empty, cut, format_error), written to the
trajectory as a `parse` record; a reply with nothing to run gets a precise correction, and repeats
(the same prose, empty replies, the same action again and again) end the run with a reason instead
of using up every step (repoloop.agent.repeats).

Whatever the model or its server does, a run ends with a status (RunResult.status) and a `run_end`
record, its worktree removed and its lock released, its branch kept: `Agent.run` turns any
exception raised once the trajectory exists into status "error" with a one-line reason (and the
traceback in the trajectory's `error` record), after the known cases (the model endpoint failed,
a user error) have had their own clear messages.
"""

from __future__ import annotations

import json
import secrets
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repoloop.agent import prompts
from repoloop.agent.config import RunConfig
from repoloop.agent.conversation import Conversation
from repoloop.agent.interfaces import Model, PlanDecision, QuietReporter, Reporter, Runner, RunnerFactory
from repoloop.agent.llm import LLMClient, LLMError, PriceTable, ToolCall, Usage, first_line
from repoloop.agent.model_turn import ModelTurn
from repoloop.agent.observe import Observer, project_instructions
from repoloop.agent.repeats import RepeatGuard
from repoloop.agent.textmode import Decoded
from repoloop.agent.tools import Toolbox, truncate
from repoloop.agent.trajectory import Redactor, Trajectory, runs_dir
from repoloop.agent.verify import Verification, detect_test_command, failure_digest, failure_query
from repoloop.agent.workspace import Workspace, ensure_state_dir
from repoloop.errors import RepoloopError

if TYPE_CHECKING:
    from repoloop.retrieval.api import Retriever

MUTATING = {"edit_file", "write_file", "run_command"}
MAX_CALLS_PER_TURN = 32  # tool calls run from one reply; the rest are dropped and the model is told


@dataclass
class RunResult:
    status: str  # success | failed (gave up) | rejected (plan) | error (model endpoint or internal failure)
    run_id: str
    branch: str | None
    diff: str
    steps: int
    usage: Usage
    cost: float
    cost_known: bool
    trajectory: Path
    reason: str = ""
    summary: str = ""
    wall_s: float = 0.0
    unreachable: bool = False  # the model endpoint could never be reached (status "error")
    tool_mode: str = "native"  # the mode the run ended in
    model_calls: int = 0

    @property
    def exit_code(self) -> int:
        """0 success; 2 an endpoint never reached (an environment error to fix, README's exit codes);
        1 every other end (gave up, rejected, an endpoint that failed mid-run, an internal error)."""
        if self.status == "success":
            return 0
        return 2 if self.unreachable and self.status == "error" else 1

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "run_id": self.run_id, "branch": self.branch, "diff": self.diff,
                "steps": self.steps, "tokens": {"prompt": self.usage.prompt, "completion": self.usage.completion,
                                                "total": self.usage.total},
                "cost": round(self.cost, 6), "cost_known": self.cost_known,
                "trajectory": str(self.trajectory), "reason": self.reason, "summary": self.summary,
                "wall_s": round(self.wall_s, 3), "tool_mode": self.tool_mode, "model_calls": self.model_calls,
                "cached_tokens": self.usage.cached}


# -- how the act loop ends ---------------------------------------------------------------------------------
class Ended(Exception):
    """Ends the act loop: the run's status and the reason it gives."""

    status = "failed"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Submitted(Ended):
    """The model called finish and the work was accepted (the tests pass, or there are none)."""

    status = "success"


class LimitsExceeded(Ended):
    """A budget is spent (steps, tokens, cost) or the model is repeating itself (RepeatGuard)."""


class FormatError(Exception):
    """A reply with nothing to run (prose, empty, cut, a malformed action): the model is told what
    was wrong and the loop goes on, unless the repetition rules say it is time to stop."""

    def __init__(self, turn: Decoded, content: str | None) -> None:
        super().__init__(turn.outcome)
        self.turn = turn
        self.content = content


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


@dataclass
class _State:
    """What the run has spent and reached so far."""

    steps: int = 0
    verified_tree: str | None = None  # tree hash at the last passing verification
    last_failed_tree: str | None = None
    summary: str = ""
    outcomes: dict[str, int] = field(default_factory=dict)  # how replies were read (parse outcome -> count)


@dataclass
class _Session:
    """What the act loop works with once the worktree and its sandbox exist."""

    ws: Workspace
    runner: Runner
    toolbox: Toolbox
    observer: Observer
    test_cmd: str | None


@dataclass
class _Step:
    """One step's bookkeeping: where its time went and what its calls did."""

    number: int
    t0: float
    retrieval0: float  # the observer's and the worktree's time counters at the start
    git0: float
    outcome: str = ""  # how the reply was read
    tools: list[str] = field(default_factory=list)  # the calls run (names)
    model_s: float = 0.0
    sandbox_s: float = 0.0
    finished: bool = False  # finish was called and accepted
    stop: str = ""  # why the run ends after this step (a repetition), "" to go on
    note: str = ""  # said to the model after the calls' results (the same action again)
    dropped: int = 0  # calls over MAX_CALLS_PER_TURN, not run
    mutated: bool = False
    edited: list[str] = field(default_factory=list)


class Agent:
    """One run. Build with a config and, where the defaults will not do, the collaborators: `model`
    (an OpenAI-protocol client), `sandbox` (opens a Runner over the worktree), `retriever` (an open
    repoloop.retrieval.api.Retriever, which its caller closes; by default one is opened over the
    index). `run()` returns the result and never raises for model trouble."""

    def __init__(self, config: RunConfig, *, reporter: Reporter | None = None, model: Model | None = None,
                 sandbox: RunnerFactory | None = None, retriever: Retriever | None = None) -> None:
        self.cfg = config
        self.ui: Reporter = reporter or QuietReporter()
        self.repo = Path(config.repo).resolve()
        self.run_id = new_run_id()
        self.state_dir = self.repo / ".repoloop"  # created in run(), once the repo is known to be fit
        self.traj_path = runs_dir(self.state_dir) / f"{self.run_id}.jsonl"
        mc = config.model
        self.llm: Model = model or LLMClient(mc.client(), PriceTable.load(mc.prices))
        self.open_runner = sandbox
        self.retriever = retriever
        self.sandbox_kind = config.sandbox.kind  # what preflight settles on, in run()
        self.redact = Redactor.from_env([mc.api_key] if mc.api_key else [])
        self.st = _State()
        self.repeats = RepeatGuard(config.budget.repeat_limit, config.budget.stall_limit)
        self.unreachable = False  # set when the run ends because the endpoint was never reached
        self.conv = Conversation(context_limit=mc.context_limit)
        self._base_tree_cache: str | None = None
        # the model's side of each step: requests, replies, spending, the switch to text mode
        self.model_turn = ModelTurn(self.llm, self.conv, model=mc.name, tool_mode=mc.tool_mode,
                                    max_cost=config.budget.max_cost,
                                    write=lambda type, **f: self.traj.write(type, **f), emit=self._emit)

    # -- entry ---------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        t0 = time.perf_counter()
        cfg = self.cfg
        Workspace.check(self.repo)  # a user error (not a git repository) ends here, before any record
        ensure_state_dir(self.repo)
        if self.open_runner is None:
            from repoloop.agent.sandboxing import preflight

            self.sandbox_kind = preflight(cfg.sandbox.kind)  # no sandbox: stop before paying for a model call
        self.traj = Trajectory(self.traj_path, self.redact)
        self.traj.write("run_start", id=self.run_id, task=cfg.task, model=cfg.model.name,
                        plan_model=cfg.model.plan_model or cfg.model.name, base_url=cfg.model.base_url,
                        repo=str(self.repo), sandbox=self.sandbox_kind, max_steps=cfg.budget.max_steps,
                        tool_mode=cfg.model.tool_mode, started=time.time())
        ws: Workspace | None = None
        runner: Runner | None = None
        observer: Observer | None = None
        status, reason = "failed", ""
        try:
            if Workspace.user_changes(self.repo):
                self._emit("note", text="your checkout has uncommitted changes; the agent starts from HEAD and "
                                        "does not see them")
            observer = self._open_observer()
            test_cmd = cfg.test_cmd or detect_test_command(self.repo)
            self._observe(observer, test_cmd)
            decision = self._plan()
            if decision.action == "reject":
                return self._close(None, None, observer, "rejected", "plan rejected by the user", t0)
            ws = Workspace.create(self.repo, self.run_id, self.state_dir)
            self.traj.write("workspace", path=str(ws.path), branch=ws.branch, base=ws.base)
            runner = (self.open_runner or self._default_runner)(self.sandbox_kind, ws.path)
            self.traj.write("sandbox", kind=getattr(runner, "kind", self.sandbox_kind))
            toolbox = Toolbox(ws.path, runner, observer, command_timeout=cfg.sandbox.command_timeout,
                              git_dir=ws.gitdir)
            status, reason = self._act(_Session(ws, runner, toolbox, observer, test_cmd))
        except LLMError as e:
            status, reason = "error", str(e)
            self.unreachable = e.unreachable
        except RepoloopError as e:
            status, reason = "error", str(e)
        except KeyboardInterrupt:
            status, reason = "failed", "interrupted"
            self._close(ws, runner, observer, status, reason, t0)
            raise
        except Exception as e:  # noqa: BLE001 - anything else still ends the run cleanly, with its reason
            status, reason = "error", f"internal error: {_one_line_error(e)}"
            self._record("error", error=_one_line_error(e), traceback=traceback.format_exc())
        return self._close(ws, runner, observer, status, reason, t0)

    def _open_observer(self) -> Observer:
        if self.retriever is not None:
            return Observer(retriever=self.retriever)
        from repoloop.retrieval.api import RetrievalOptions

        r = self.cfg.retrieval
        return Observer.open(self.repo, r.index_dir, lexical_only=r.lexical_only, rerank=r.rerank,
                             options=r.options or RetrievalOptions(), log=lambda m: self.ui.event("note", {"text": m}))

    def _default_runner(self, kind: str | None, workspace: Path) -> Runner:
        from repoloop.agent.sandboxing import SandboxRunner, project_env_binds

        return SandboxRunner.open(kind, workspace, image=self.cfg.sandbox.image,
                                  ro_binds=tuple(project_env_binds(self.repo)))

    def _emit(self, type: str, show: dict[str, Any] | None = None, **fields: Any) -> None:
        """One event, recorded once: its trajectory record, and the same fields (plus `show`, what
        a person watching needs beside them) for the reporter."""
        self.traj.write(type, **fields)
        self.ui.event(type, {**fields, **show} if show else fields)

    def _record(self, type: str, **fields: Any) -> None:
        """A trajectory record that must not itself end the run (a full disk, say)."""
        try:
            self.traj.write(type, **fields)
        except Exception:  # noqa: BLE001
            pass

    # -- observe / plan --------------------------------------------------------------------------------
    def _observe(self, observer: Observer, test_cmd: str | None) -> None:
        cfg = self.cfg
        instructions = project_instructions(self.repo)
        repo_map = observer.repo_map(cfg.retrieval.map_budget)
        context, items = observer.context(cfg.task, cfg.retrieval.context_budget)
        system = prompts.system_message(instructions=instructions, repo_map=repo_map, test_cmd=test_cmd,
                                        tool_protocol=self.model_turn.proto.system_text())
        self.conv.add({"role": "system", "content": system})
        self.conv.add({"role": "user", "content": prompts.task_message(cfg.task, context)})
        self._emit("observe", show={"items": len(items)}, query=cfg.task, context_items=items,
                   repo_map_chars=len(repo_map), instructions_chars=len(instructions), test_cmd=test_cmd,
                   notes=list(observer.notes), retrieval_s=round(observer.seconds, 4), located=list(observer.located))

    def _plan(self) -> PlanDecision:
        cfg = self.cfg
        self.conv.add({"role": "user", "content": prompts.PLAN_REQUEST})
        # The plan request carries the same tools as every later one (tool_choice "none"), so that the
        # tool schemas at the head of the prompt are cached from the first request on.
        reply = self.model_turn.ask(self.st.steps, model=cfg.model.plan_model or cfg.model.name, phase="plan",
                                    tool_choice="none")
        plan = (reply.content or "").strip()
        self.conv.add({"role": "assistant", "content": plan})
        decision = self.ui.approve_plan(plan) if cfg.approve_plan else PlanDecision("approve")
        self.traj.write("plan", text=plan, decision=decision.action, edited=decision.plan or None)
        if decision.action == "edit" and decision.plan.strip():
            self.conv.add({"role": "user", "content": prompts.plan_feedback(decision.plan) + "\n\n" + prompts.EXECUTE})
        elif decision.action != "reject":
            self.conv.add({"role": "user", "content": prompts.EXECUTE})
        self.conv.prefix = len(self.conv.messages)  # system, task and plan stay whole
        return decision

    # -- act / verify ------------------------------------------------------------------------------------
    def _act(self, s: _Session) -> tuple[str, str]:
        """Steps until one of them ends the run: (status, reason)."""
        try:
            while True:
                self._step(s)
        except Ended as e:
            return e.status, e.reason

    def _step(self, s: _Session) -> None:
        """query -> dispatch -> verify; a reply with nothing to run is corrected instead of dispatched."""
        step = self._begin_step(s)
        try:
            self._dispatch(step, self._query(step), s)
        except FormatError as e:
            self._correct(step, e)
        self._tell_after_results(step)
        self._verify_step(step, s)
        self._end_step(step, s)

    def _begin_step(self, s: _Session) -> _Step:
        budget = self.cfg.budget
        if self.st.steps >= budget.max_steps:
            raise LimitsExceeded(f"max steps reached ({budget.max_steps})")
        self.st.steps += 1
        return _Step(self.st.steps, time.perf_counter(), s.observer.seconds, s.ws.git_s)

    def _query(self, step: _Step) -> list[ToolCall]:
        """One model call, read into the calls to run (FormatError when there are none)."""
        mt = self.model_turn
        reply = mt.ask(step.number)
        turn = mt.read(reply, step.number)
        calls = turn.calls[:MAX_CALLS_PER_TURN]
        step.dropped = len(turn.calls) - len(calls)
        if step.dropped:  # the model sent hundreds: run the first ones, tell it about the rest
            reply.tool_calls = reply.tool_calls[:MAX_CALLS_PER_TURN]
        self.conv.add(mt.proto.assistant_message(reply))
        self.st.outcomes[turn.outcome] = self.st.outcomes.get(turn.outcome, 0) + 1
        self.traj.write("parse", step=step.number, tool_mode=mt.proto.mode, outcome=turn.outcome,
                        detail=turn.detail, calls=len(turn.calls), finish_reason=reply.finish_reason)
        step.model_s, step.outcome = reply.seconds, turn.outcome
        if not calls:
            raise FormatError(turn, reply.content)
        step.tools = [c.name for c in calls]
        step.note, step.stop = self.repeats.acted(calls)
        return calls

    def _correct(self, step: _Step, e: FormatError) -> None:
        """Tell the model what was wrong with its reply; the same mistake again and again ends the run."""
        if e.turn.correction:
            self.conv.add({"role": "user", "content": e.turn.correction})
        step.stop = self.repeats.unusable(e.turn.outcome, e.content)

    def _dispatch(self, step: _Step, calls: list[ToolCall], s: _Session) -> None:
        """Run the calls in order; every call gets a result message, even those after an accepted finish."""
        for call in calls:
            if step.finished:
                self._tool_message(call, "ignored: finish was already called in this turn")
            elif call.name == "finish":
                self._finish_call(step, call, s)
            else:
                self._tool_call(step, call, s)

    def _tool_call(self, step: _Step, call: ToolCall, s: _Session) -> None:
        t0 = time.perf_counter()
        res = s.toolbox.call(call.name, call.arguments)
        step.sandbox_s += res.sandbox_s
        step.mutated |= call.name in MUTATING
        if res.edited:
            step.edited.append(_path_arg(call.arguments))
        self._tool_message(call, res.output)
        self._log_tool(call, res.output, res.ok, time.perf_counter() - t0, res.sandbox_s)
        if not res.ok:
            step.stop = self.repeats.failed_call(call) or step.stop

    def _finish_call(self, step: _Step, call: ToolCall, s: _Session) -> None:
        """`finish` is accepted when the tests pass on the worktree (or there are none): the work is
        committed and the step submits; refused, the failure goes back to the model."""
        t0 = time.perf_counter()
        res = s.toolbox.call(call.name, call.arguments)
        if not res.finish:  # malformed finish arguments
            self._tool_message(call, res.output)
            self._log_tool(call, res.output, False, time.perf_counter() - t0, 0.0)
            return
        self.st.summary = res.output
        ver, tree = self._verify_if_changed(s)
        if ver is not None:
            step.sandbox_s += ver.seconds
        if ver is None or ver.passed:
            self._commit(s.ws, f"repoloop: {_first_line(self.st.summary) or 'finish'}", tree)
            msg = "accepted: " + ("tests passed" if ver else "no test command; not verified")
            step.finished = True
        else:
            msg = "finish refused: the tests fail (details follow)"
        self._tool_message(call, msg)
        self._log_tool(call, msg, step.finished, time.perf_counter() - t0, 0.0)
        if ver is not None and not ver.passed:
            self._failure_observation(ver, s.observer)
            step.stop = self.repeats.refused_finish(tree) or step.stop

    def _tell_after_results(self, step: _Step) -> None:
        """What the model hears once the turn's results are in: the same action again, the switch to
        text mode, calls over the limit."""
        if step.note and not step.finished:
            self.conv.add({"role": "user", "content": step.note})
        for note in self.model_turn.take_pending():
            self.conv.add({"role": "user", "content": note})
        if step.dropped:
            self.conv.add({"role": "user", "content": f"note: you sent {step.dropped + MAX_CALLS_PER_TURN} "
                           f"tool calls in one reply; only the first {MAX_CALLS_PER_TURN} were run."})
            self.traj.write("note", step=step.number, text=f"{step.dropped} tool calls over the "
                            f"{MAX_CALLS_PER_TURN}-call limit of one turn were not run")

    def _verify_step(self, step: _Step, s: _Session) -> None:
        """After edits (not after a finish, nor on a step that stops the run): run the tests; a pass is
        committed, a failure becomes an observation."""
        if step.finished or not step.mutated or step.stop:
            return
        ver, tree = self._verify_if_changed(s, edits_only=True)
        if ver is None:
            return
        step.sandbox_s += ver.seconds
        if ver.passed:
            what = ", ".join(dict.fromkeys(p for p in step.edited if p)) or "changes from a command"
            self._commit(s.ws, f"repoloop step {step.number}: {what[:100]} (tests pass)", tree)
        else:
            self._failure_observation(ver, s.observer)

    def _end_step(self, step: _Step, s: _Session) -> None:
        """The step's record; then its end, if it is one: Submitted, or LimitsExceeded."""
        mt, budget = self.model_turn, self.cfg.budget
        wall = time.perf_counter() - step.t0
        own = max(wall - step.model_s - step.sandbox_s, 0)
        self._emit("step", show={"max_steps": budget.max_steps, "tokens": mt.usage.total, "cost": mt.cost,
                                 "tools": step.tools},
                   step=step.number, wall_s=round(wall, 4), model_s=round(step.model_s, 4),
                   sandbox_s=round(step.sandbox_s, 4), repoloop_s=round(own, 4),
                   retrieval_s=round(s.observer.seconds - step.retrieval0, 4), git_s=round(s.ws.git_s - step.git0, 4),
                   tokens=mt.usage.to_json(), cost=round(mt.cost, 6), tool_mode=mt.proto.mode, parse=step.outcome)
        if step.finished:
            raise Submitted("verified" if s.test_cmd else "finished (no test command)")
        if step.stop:
            raise LimitsExceeded(step.stop)
        if budget.max_tokens is not None and mt.usage.total >= budget.max_tokens:
            raise LimitsExceeded(f"token budget exhausted ({mt.usage.total} >= {budget.max_tokens})")
        if budget.max_cost is not None and mt.cost >= budget.max_cost:
            raise LimitsExceeded(f"cost budget exhausted (${mt.cost:.4f} >= ${budget.max_cost})")

    def _verify_if_changed(self, s: _Session, *, edits_only: bool = False) -> tuple[Verification | None, str]:
        """Run the tests when the worktree differs from the last verified state."""
        ws, test_cmd = s.ws, s.test_cmd
        tree = ws.tree()
        if tree == self.st.verified_tree:
            return Verification(test_cmd or "", True, 0, "(unchanged since the last passing run)", 0.0), tree
        if edits_only and (tree == self.st.last_failed_tree
                           or (self.st.verified_tree is None and tree == self._base_tree(ws))):
            return None, tree  # nothing edited since the last run (or at all)
        if not test_cmd:
            return None, tree
        t0 = time.perf_counter()
        res = s.runner.run(test_cmd, timeout=self.cfg.sandbox.verify_timeout)
        secs = time.perf_counter() - t0
        out = (res.stdout or "") + (("\n" + res.stderr) if res.stderr else "")
        ver = Verification(test_cmd, res.exit_code == 0 and not res.timed_out, res.exit_code, out, secs,
                           bool(res.timed_out))
        self._emit("verify", show={"seconds": secs}, step=self.st.steps, command=test_cmd, passed=ver.passed,
                   exit_code=ver.exit_code, timed_out=ver.timed_out, seconds=round(secs, 4),
                   output=truncate(out, 20_000))
        if ver.passed:
            self.st.verified_tree = tree
        else:
            self.st.last_failed_tree = tree
        return ver, tree

    def _base_tree(self, ws: Workspace) -> str:
        if self._base_tree_cache is None:
            self._base_tree_cache = ws.base_tree()
        return self._base_tree_cache

    def _failure_observation(self, ver: Verification, observer: Observer) -> None:
        digest = failure_digest(ver.output)
        query = failure_query(ver.output)
        context, items = observer.snippets(query, self.cfg.retrieval.failure_budget) if query else ("", [])
        self.traj.write("observe", step=self.st.steps, query=query, context_items=items, after="failed verification")
        self.conv.add({"role": "user", "content": prompts.failure_message(
            ver.command, ver.exit_code, digest, truncate(ver.output, 8_000), context)})

    def _commit(self, ws: Workspace, message: str, tree: str) -> None:
        sha = ws.commit(message, tree)
        if sha:
            self.traj.write("commit", step=self.st.steps, sha=sha, message=message, tree=tree)

    def _tool_message(self, call: ToolCall, content: str) -> None:
        self.conv.add(self.model_turn.proto.result_message(call, content))

    def _log_tool(self, call: ToolCall, output: str, ok: bool, seconds: float, sandbox_s: float) -> None:
        self._emit("tool", step=self.st.steps, id=call.id, name=call.name, arguments=call.arguments, ok=ok,
                   output=truncate(output, 20_000), seconds=round(seconds, 4), sandbox_s=round(sandbox_s, 4))

    # -- end -------------------------------------------------------------------------------------------------
    def _close(self, ws: Workspace | None, runner: Runner | None, observer: Observer | None, status: str,
               reason: str, t0: float) -> RunResult:
        """Stop the sandbox, keep the work on the branch, remove the worktree (releasing the run's lock)
        and write `run_end` - each step on its own, so that one failing does not skip the others."""
        diff = ""
        branch = None
        try:
            if runner is not None:
                runner.stop()
        except Exception:  # noqa: BLE001
            pass
        try:
            if observer is not None and self.retriever is None:  # an injected retriever is its owner's to close
                observer.close()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.llm.close()
        except Exception:  # noqa: BLE001
            pass
        if ws is not None:
            branch = ws.branch
            try:
                sha = ws.commit(f"repoloop: unverified work at stop ({first_line(reason, 80)})") \
                    if status != "success" else None
                if sha:
                    self._record("commit", step=self.st.steps, sha=sha, message="unverified work at stop",
                                 verified=False)
                diff = ws.branch_diff()
                if status == "success" and self.cfg.apply and diff:
                    ws.apply(diff)
                    self._record("apply", ok=True)
            except Exception as e:  # noqa: BLE001 - a RepoloopError, or anything else: still clean up
                why = str(e) if isinstance(e, RepoloopError) else f"internal error: {_one_line_error(e)}"
                reason = f"{reason}; {why}" if reason else why
                if status == "success":
                    status = "error"
            finally:
                try:
                    ws.remove()
                except Exception as e:  # noqa: BLE001
                    reason = f"{reason}; the worktree could not be removed: {_one_line_error(e)}"
        return self._finish(status, reason, branch, t0, diff)

    def _finish(self, status: str, reason: str, branch: str | None, t0: float, diff: str = "") -> RunResult:
        wall = time.perf_counter() - t0
        reason = self.redact(reason)
        mt = self.model_turn
        result = RunResult(status=status, run_id=self.run_id, branch=branch, diff=diff, steps=self.st.steps,
                           usage=mt.usage, cost=mt.cost, cost_known=mt.cost_known,
                           trajectory=self.traj_path, reason=reason, summary=self.redact(self.st.summary),
                           wall_s=wall, unreachable=self.unreachable, tool_mode=mt.proto.mode,
                           model_calls=mt.model_calls)
        end = dict(status=status, reason=reason, branch=branch, steps=self.st.steps, tokens=mt.usage.to_json(),
                   cost=round(mt.cost, 6), cost_known=mt.cost_known, model=self.cfg.model.name,
                   wall_s=round(wall, 3), diff_lines=diff.count("\n"), summary=self.st.summary, diff=diff,
                   tool_mode=mt.proto.mode, model_calls=mt.model_calls, parse_outcomes=self.st.outcomes)
        self._record("run_end", **end)  # not _emit: a record that fails to be written must not stop the end
        try:
            self.traj.close()
        except OSError:
            pass
        self.ui.event("run_end", {**end, "summary": result.summary})  # redacted, as the record is when written
        return result


def _path_arg(raw: str) -> str:
    try:
        path = json.loads(raw).get("path", "")
    except (ValueError, TypeError, AttributeError, RecursionError):
        return ""
    return path[:200] if isinstance(path, str) else ""


def _one_line_error(e: BaseException) -> str:
    """`TypeName: first line of the message` (at most 300 characters)."""
    msg = first_line(str(e), 300)
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0][:72] if (text or "").strip() else ""
