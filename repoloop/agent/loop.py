"""The agent loop: observe (retrieve), plan (optionally approved by a person), act (tools), verify
(tests in the sandbox), stop. Every step is written to the trajectory with its timing split into
model, sandbox and repoloop's own time.

The user's checkout is never written: edits happen in a git worktree on branch `repoloop/<id>`;
only `apply=True` with a verified result copies the final diff back.

Tool calls go natively or as text (`tool_mode`, repoloop.agent.protocol): `auto` starts native and
switches to text-mode action blocks once, when the server refuses `tools` or the model keeps answering
in prose. Every reply is read into at most a few calls and an outcome (native, action, bash, prose,
empty, cut, format_error), written to the trajectory as a `parse` record; a reply with nothing to run
gets a precise correction, and repeats (the same prose, empty replies, the same action again and
again) end the run with a reason instead of using up every step.

Each request is meant to extend the previous one byte for byte (system prompt, tool schemas and
repository context first; history only appended; compaction only when the window is full): the
`request` record carries the share that repeats the previous request's prefix (repoloop.agent.prefix),
the `reply` record the server's `cached` tokens where it reports them.

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
from typing import Any, Protocol

from repoloop.agent import prompts
from repoloop.agent.conversation import Conversation, estimate_tokens
from repoloop.agent.llm import LLMClient, LLMConfig, LLMError, LLMReply, PriceTable, ToolCall, Usage
from repoloop.agent.observe import Observer, project_instructions
from repoloop.agent.prefix import PrefixMeter
from repoloop.agent.protocol import TextProtocol, make_protocol, to_text_history, wire
from repoloop.agent.textmode import Decoded, decode_text, protocol_text
from repoloop.agent.tools import TOOL_NAMES, TOOL_SCHEMAS, CommandRunner, Toolbox, truncate
from repoloop.agent.trajectory import Redactor, Trajectory, runs_dir
from repoloop.agent.verify import Verification, detect_test_command, failure_digest, failure_query
from repoloop.agent.workspace import Workspace, ensure_state_dir
from repoloop.errors import RepoloopError

MUTATING = {"edit_file", "write_file", "run_command"}
MAX_CALLS_PER_TURN = 32  # tool calls run from one reply; the rest are dropped and the model is told
PROSE_SWITCH = 2  # auto mode: replies in a row without a native call before switching to text mode


@dataclass
class RunConfig:
    task: str
    repo: Path
    model: str
    index_dir: Path | None = None
    plan_model: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    sandbox: str | None = None
    image: str | None = None  # docker sandbox image
    test_cmd: str | None = None
    max_steps: int = 30
    max_tokens: int | None = None  # total tokens (prompt + completion) over the run
    max_cost: float | None = None  # USD
    approve_plan: bool = False
    apply: bool = False
    context_limit: int = 128_000
    context_budget: int = 6_000  # tokens of retrieved code for the task
    failure_budget: int = 2_000  # tokens of retrieved code after each failed verification
    map_budget: int = 1_024
    lexical_only: bool = False
    # Dense re-rank of retrieved files where the index has no vectors (repoloop.retrieval.rerank): the
    # top candidates' chunks are embedded at query time, seconds once per new file on a CPU (an agent
    # step waits longer for its model), for +13.6 file Acc@1 on SWE-bench dev (RESULTS.md).
    rerank: bool = True
    stream: bool = False
    timeout: float = 120.0  # seconds per model request attempt, as a whole (connect to last byte)
    retries: int = 4
    backoff: float = 1.0
    prices: str | None = None
    tool_mode: str = "auto"  # native | text | auto (repoloop.agent.protocol)
    max_output_tokens: int | None = None  # per reply, sent as max_tokens when set
    repeat_limit: int = 3  # identical failing tool calls (or empty replies) before giving up
    stall_limit: int = 5  # the same action (or no usable action) this many replies in a row: give up
    command_timeout: float = 120.0
    verify_timeout: float = 900.0


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
        """0 success; 2 an endpoint never reached (an environment error to fix, DESIGN's exit codes);
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


@dataclass
class PlanDecision:
    action: str  # approve | reject | edit
    plan: str = ""


class Reporter(Protocol):
    """How the loop talks to a person (the CLI gives a rich one; tests and programs a quiet one)."""

    def event(self, name: str, data: dict[str, Any]) -> None: ...

    def approve_plan(self, plan: str) -> PlanDecision: ...


class QuietReporter:
    def event(self, name: str, data: dict[str, Any]) -> None:
        pass

    def approve_plan(self, plan: str) -> PlanDecision:
        return PlanDecision("approve")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


@dataclass
class _State:
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    cost_known: bool = True
    failing: dict[str, int] = field(default_factory=dict)
    verified_tree: str | None = None  # tree hash at the last passing verification
    last_failed_tree: str | None = None
    summary: str = ""
    model_calls: int = 0  # chat requests that got a reply (retries inside one are not counted again)
    outcomes: dict[str, int] = field(default_factory=dict)  # how replies were read (parse outcome -> count)
    no_action: int = 0  # replies in a row with nothing to run
    empty: int = 0  # empty replies in a row
    same_action: int = 0  # replies in a row asking for the same action as the one before
    last_action: str = ""
    prose_native: int = 0  # auto mode: native replies in a row without a call


class Agent:
    """One run. Build with a config; `run()` returns the result (never raises for model trouble)."""

    def __init__(self, config: RunConfig, *, reporter: Reporter | None = None,
                 runner_factory: Any = None, llm: LLMClient | None = None) -> None:
        self.cfg = config
        self.ui = reporter or QuietReporter()
        self.repo = Path(config.repo).resolve()
        self.run_id = new_run_id()
        self.state_dir = self.repo / ".repoloop"  # created in run(), once the repo is known to be fit
        self.traj_path = runs_dir(self.state_dir) / f"{self.run_id}.jsonl"
        self.prices = PriceTable.load(config.prices)
        self.llm = llm or LLMClient(LLMConfig(
            model=config.model, base_url=config.base_url, api_key=config.api_key, timeout=config.timeout,
            max_retries=config.retries, backoff=config.backoff, stream=config.stream,
            max_output_tokens=config.max_output_tokens), self.prices)
        self.runner_factory = runner_factory
        self.redact = Redactor.from_env([config.api_key] if config.api_key else [])
        self.st = _State()
        self.unreachable = False  # set when the run ends because the endpoint was never reached
        self.conv = Conversation(context_limit=config.context_limit)
        self._base_tree_cache: str | None = None
        self.auto = config.tool_mode == "auto"
        self.proto = make_protocol(config.tool_mode)
        self.prefix = PrefixMeter()
        self._pending: list[str] = []  # user messages to add once this turn's results are in
        self.tools_tokens = self._tools_tokens()

    def _tools_tokens(self) -> int:
        tools = self.proto.request_tools()
        return estimate_tokens([{"content": json.dumps(tools)}]) if tools else 0

    # -- entry ---------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        t0 = time.perf_counter()
        cfg = self.cfg
        Workspace.check(self.repo)  # a user error (not a git repository) ends here, before any record
        ensure_state_dir(self.repo)
        if self.runner_factory is None:
            from repoloop.agent.sandboxing import preflight

            cfg.sandbox = preflight(cfg.sandbox)  # no sandbox: stop before paying for a model call
        self.traj = Trajectory(self.traj_path, self.redact)
        self.traj.write("run_start", id=self.run_id, task=cfg.task, model=cfg.model,
                        plan_model=cfg.plan_model or cfg.model, base_url=cfg.base_url, repo=str(self.repo),
                        sandbox=cfg.sandbox, max_steps=cfg.max_steps, tool_mode=cfg.tool_mode, started=time.time())
        ws: Workspace | None = None
        runner: Any = None
        observer: Observer | None = None
        status, reason = "failed", ""
        try:
            if Workspace.user_changes(self.repo):
                note = "your checkout has uncommitted changes; the agent starts from HEAD and does not see them"
                self.ui.event("note", {"text": note})
                self.traj.write("note", text=note)
            observer = Observer.open(self.repo, cfg.index_dir, lexical_only=cfg.lexical_only, rerank=cfg.rerank,
                                     log=lambda m: self.ui.event("note", {"text": m}))
            test_cmd = cfg.test_cmd or detect_test_command(self.repo)
            self._observe(observer, test_cmd)
            decision = self._plan()
            if decision.action == "reject":
                return self._close(None, None, observer, "rejected", "plan rejected by the user", t0)
            ws = Workspace.create(self.repo, self.run_id, self.state_dir)
            self.traj.write("workspace", path=str(ws.path), branch=ws.branch, base=ws.base)
            if self.runner_factory:
                runner = self.runner_factory(cfg.sandbox, ws.path)
            else:
                runner = _default_runner(cfg.sandbox, ws.path, cfg.image, self.repo)
            self.traj.write("sandbox", kind=getattr(runner, "kind", cfg.sandbox))
            toolbox = Toolbox(ws.path, runner, observer, command_timeout=cfg.command_timeout, git_dir=ws.gitdir)
            status, reason = self._act(ws, toolbox, runner, observer, test_cmd)
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
        repo_map = observer.repo_map(cfg.map_budget)
        context, items = observer.context(cfg.task, cfg.context_budget)
        system = prompts.system_message(instructions=instructions, repo_map=repo_map, test_cmd=test_cmd,
                                        tool_protocol=self.proto.system_text())
        self.conv.add({"role": "system", "content": system})
        self.conv.add({"role": "user", "content": prompts.task_message(cfg.task, context)})
        self.traj.write("observe", query=cfg.task, context_items=items, repo_map_chars=len(repo_map),
                        instructions_chars=len(instructions), test_cmd=test_cmd, notes=list(observer.notes),
                        retrieval_s=round(observer.seconds, 4), located=list(observer.located))
        self.ui.event("observe", {"items": len(items), "test_cmd": test_cmd, "notes": observer.notes})

    def _plan(self) -> PlanDecision:
        cfg = self.cfg
        self.conv.add({"role": "user", "content": prompts.PLAN_REQUEST})
        # The plan request carries the same tools as every later one (tool_choice "none"), so that the
        # tool schemas at the head of the prompt are cached from the first request on.
        reply = self._model(model=cfg.plan_model or cfg.model, phase="plan", tool_choice="none")
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

    # -- the model ---------------------------------------------------------------------------------------
    def _model(self, *, model: str | None = None, phase: str = "act", tool_choice: str | None = None) -> LLMReply:
        """One model call under the current tool protocol."""
        model = model or self.cfg.model
        try:
            reply = self._send_adapting(model, phase, tool_choice)
        except LLMError as e:
            self._request_failed(e, phase, model)
            raise
        self.st.model_calls += 1
        self.st.usage.add(reply.usage)
        if reply.cost is None:
            if self.st.cost_known and self.cfg.max_cost is not None:
                note = f"no price known for {model}: --max-cost cannot be enforced (give --prices)"
                self.ui.event("note", {"text": note})
                self.traj.write("note", text=note)
            self.st.cost_known = False
        else:
            self.st.cost += reply.cost
        self.traj.write("reply", step=self.st.steps, phase=phase, model=model, content=reply.content,
                        tool_calls=[{"id": t.id, "name": t.name, "arguments": t.arguments} for t in reply.tool_calls],
                        usage=reply.usage.to_json(), cost=reply.cost, model_s=round(reply.seconds, 4),
                        attempts=reply.attempts, errors=reply.errors, finish_reason=reply.finish_reason,
                        timings=reply.timings)
        return reply

    def _send_adapting(self, model: str, phase: str, tool_choice: str | None) -> LLMReply:
        """Send; a server that refuses `tool_choice` gets the request again without it, and in auto mode
        a server that refuses `tools` switches the run to text mode (the request is sent again without
        them). Each refusal is on record with how the run went on."""
        try:
            return self._send(model, phase, tool_choice)
        except LLMError as e:
            if tool_choice and "tool_choice" in str(e).lower():
                self._request_failed(e, phase, model, recovered="sent again without tool_choice")
                return self._send_adapting(model, phase, None)
            if not (e.tools_rejected and self.auto and self.proto.mode == "native"):
                raise
            self._request_failed(e, phase, model, recovered="switched to text-mode tool calls")
            self._switch_to_text(f"the server refused the tools: {_one_line(str(e))[:300]}")
            return self._send(model, phase, tool_choice)

    def _request_failed(self, e: LLMError, phase: str, model: str, recovered: str = "") -> None:
        """Every request ends in a `reply` or a `model_error` record; `recovered` says how the run went on."""
        self.traj.write("model_error", step=self.st.steps, phase=phase, model=model, error=str(e),
                        attempts=e.attempts, errors=e.errors, model_s=round(e.seconds, 4), tool_mode=self.proto.mode,
                        **({"recovered": recovered} if recovered else {}))

    def _send(self, model: str, phase: str, tool_choice: str | None) -> LLMReply:
        """Compact if the window is full, log the request, send it; a server whose window turns out
        smaller than --context-limit said gets the conversation shrunk to fit, once."""
        summary = self.conv.compact_if_needed(self.tools_tokens)
        if summary is not None:
            self.traj.write("compaction", summary=summary, messages=len(self.conv.messages))
        try:
            return self._chat(model, phase, tool_choice)
        except LLMError as e:
            if not _context_overflow(str(e)):
                raise
            self._request_failed(e, phase, model, recovered="compacted the conversation and sent it again")
            # The server's own window where it says it (what the model wrote since is room to spare),
            # else 60% of what was refused.
            told = e.context_window
            self.conv.context_limit = (max(told, 1_024) if told and told < self.conv.context_limit
                                       else max(int(self.conv.tokens() * 0.6), 4_000))
            summary = self.conv.compact_if_needed(self.tools_tokens)
            self.traj.write("compaction", summary=summary, messages=len(self.conv.messages), reason=str(e)[:300])
            return self._chat(model, phase, tool_choice)

    def _chat(self, model: str, phase: str, tool_choice: str | None) -> LLMReply:
        tools = self.proto.request_tools()
        messages = wire(self.conv.messages)
        share = self.prefix.measure(messages, tools)
        self.traj.write("request", step=self.st.steps, phase=phase, model=model,
                        messages=self.conv.new_since_last(), n_messages=len(self.conv.messages),
                        est_tokens=self.conv.tokens(), tools=bool(tools), tool_mode=self.proto.mode, **share)
        return self.llm.chat(messages, tools, model=model, tool_choice=tool_choice if tools else None,
                             tools_optional=self.auto and tools is not None)

    def _switch_to_text(self, reason: str, *, announce_now: bool = True) -> None:
        """Auto mode gives up on native calls, once: the history is rewritten as text mode would have
        had it and the action-block format is explained in a user message (the system prompt, and so
        the cached head of every request, stays as it was)."""
        self.proto = TextProtocol()
        self.auto = False
        self.tools_tokens = 0
        self.conv.messages[:] = to_text_history(self.conv.messages)
        note = prompts.text_mode_switch(protocol_text(TOOL_SCHEMAS))
        if announce_now:
            self.conv.add({"role": "user", "content": note})
        else:  # after the reply that made the switch, and its results
            self._pending.append(note)
        self.traj.write("tool_mode", step=self.st.steps, mode="text", reason=reason)
        self.ui.event("note", {"text": f"switching to text-mode tool calls: {reason}"})

    def _read_reply(self, reply: LLMReply) -> Decoded:
        """The calls a reply asks for. Auto mode, still native: a reply with no native call that holds
        an action block (the model writes them anyway), or the PROSE_SWITCH-th reply in a row without a
        call, switches the run to text mode."""
        turn = self.proto.decode(reply, self.st.steps)
        if not (self.auto and self.proto.mode == "native") or turn.calls or turn.outcome == "empty":
            self.st.prose_native = 0
            return turn
        as_text = decode_text(reply.content, step=self.st.steps, cut=reply.finish_reason == "length",
                              tool_names=TOOL_NAMES)
        self.st.prose_native += 1
        if as_text.calls:
            self._switch_to_text("the model writes its tool calls as text", announce_now=False)
            return as_text
        if self.st.prose_native >= PROSE_SWITCH:
            self._switch_to_text(f"{self.st.prose_native} replies in a row without a tool call", announce_now=False)
            turn.correction = ""  # the switch message says what to do
        return turn

    # -- act / verify ------------------------------------------------------------------------------------
    def _act(self, ws: Workspace, toolbox: Toolbox, runner: CommandRunner, observer: Observer,
             test_cmd: str | None) -> tuple[str, str]:
        cfg, st = self.cfg, self.st
        no_tool_replies: dict[str, int] = {}
        while st.steps < cfg.max_steps:
            st.steps += 1
            t_step = time.perf_counter()
            retr0, git0 = observer.seconds, ws.git_s
            reply = self._model()
            turn = self._read_reply(reply)
            calls, extra_calls = turn.calls[:MAX_CALLS_PER_TURN], turn.calls[MAX_CALLS_PER_TURN:]
            if extra_calls:  # the model sent hundreds: run the first ones, tell it about the rest
                reply.tool_calls = reply.tool_calls[:MAX_CALLS_PER_TURN]
            self.conv.add(self.proto.assistant_message(reply))
            st.outcomes[turn.outcome] = st.outcomes.get(turn.outcome, 0) + 1
            self.traj.write("parse", step=st.steps, tool_mode=self.proto.mode, outcome=turn.outcome,
                            detail=turn.detail, calls=len(turn.calls), finish_reason=reply.finish_reason)
            model_s, sandbox_s = reply.seconds, 0.0
            finished, stop_reason = False, ""
            mutated = False
            edited: list[str] = []
            repeat_note = ""
            if not calls:
                stop_reason = self._no_action(turn, reply, no_tool_replies)
            else:
                st.no_action = st.empty = 0
                repeat_note, stop_reason = self._same_action(calls)
            for call in calls:
                if finished:
                    self._tool_message(call, "ignored: finish was already called in this turn")
                    continue
                t_tool = time.perf_counter()
                if call.name == "finish":
                    res = toolbox.call(call.name, call.arguments)
                    if not res.finish:  # malformed finish arguments
                        self._tool_message(call, res.output)
                        self._log_tool(call, res.output, False, time.perf_counter() - t_tool, 0.0)
                        continue
                    st.summary = res.output
                    ver, tree = self._verify_if_changed(ws, runner, test_cmd)
                    if ver is not None:
                        sandbox_s += ver.seconds
                    if ver is None or ver.passed:
                        self._commit(ws, f"repoloop: {_first_line(st.summary) or 'finish'}", tree)
                        msg = "accepted: " + ("tests passed" if ver else "no test command; not verified")
                        self._tool_message(call, msg)
                        self._log_tool(call, msg, True, time.perf_counter() - t_tool, 0.0)
                        finished = True
                    else:
                        msg = "finish refused: the tests fail (details follow)"
                        self._tool_message(call, msg)
                        self._log_tool(call, msg, False, time.perf_counter() - t_tool, 0.0)
                        self._failure_observation(ver, observer)
                        sig = f"finish@{tree}"  # finishing again on the same failing state
                        st.failing[sig] = st.failing.get(sig, 0) + 1
                        if st.failing[sig] >= cfg.repeat_limit:
                            stop_reason = f"the model called finish {cfg.repeat_limit} times with the tests failing"
                    continue
                res = toolbox.call(call.name, call.arguments)
                sandbox_s += res.sandbox_s
                mutated |= call.name in MUTATING
                if res.edited:
                    edited.append(_path_arg(call.arguments))
                self._tool_message(call, res.output)
                self._log_tool(call, res.output, res.ok, time.perf_counter() - t_tool, res.sandbox_s)
                self.ui.event("tool", {"step": st.steps, "name": call.name, "ok": res.ok})
                if not res.ok:
                    sig = f"{call.name}:{_normalize_args(call.arguments)}"
                    st.failing[sig] = st.failing.get(sig, 0) + 1
                    if st.failing[sig] >= cfg.repeat_limit:
                        stop_reason = (f"the model repeated the same failing call {cfg.repeat_limit} times "
                                       f"({call.name})")
            if repeat_note and not finished:
                self.conv.add({"role": "user", "content": repeat_note})
            for note in self._pending:
                self.conv.add({"role": "user", "content": note})
            self._pending.clear()
            if extra_calls:
                self.conv.add({"role": "user", "content": f"note: you sent {len(extra_calls) + MAX_CALLS_PER_TURN} "
                               f"tool calls in one reply; only the first {MAX_CALLS_PER_TURN} were run."})
                self.traj.write("note", step=st.steps, text=f"{len(extra_calls)} tool calls over the "
                                f"{MAX_CALLS_PER_TURN}-call limit of one turn were not run")
            if not finished and mutated and not stop_reason:
                ver, tree = self._verify_if_changed(ws, runner, test_cmd, edits_only=True)
                if ver is not None:
                    sandbox_s += ver.seconds
                    if ver.passed:
                        what = ", ".join(dict.fromkeys(p for p in edited if p)) or "changes from a command"
                        self._commit(ws, f"repoloop step {st.steps}: {what[:100]} (tests pass)", tree)
                    else:
                        self._failure_observation(ver, observer)
            wall = time.perf_counter() - t_step
            self.traj.write("step", step=st.steps, wall_s=round(wall, 4), model_s=round(model_s, 4),
                            sandbox_s=round(sandbox_s, 4), repoloop_s=round(max(wall - model_s - sandbox_s, 0), 4),
                            retrieval_s=round(observer.seconds - retr0, 4), git_s=round(ws.git_s - git0, 4),
                            tokens=st.usage.to_json(), cost=round(st.cost, 6), tool_mode=self.proto.mode,
                            parse=turn.outcome)
            self.ui.event("step", {"step": st.steps, "max_steps": cfg.max_steps, "tokens": st.usage.total,
                                   "cost": st.cost, "wall_s": wall, "model_s": model_s, "sandbox_s": sandbox_s,
                                   "tools": [c.name for c in calls]})
            if finished:
                return "success", "verified" if test_cmd else "finished (no test command)"
            if stop_reason:
                return "failed", stop_reason
            if cfg.max_tokens is not None and st.usage.total >= cfg.max_tokens:
                return "failed", f"token budget exhausted ({st.usage.total} >= {cfg.max_tokens})"
            if cfg.max_cost is not None and st.cost >= cfg.max_cost:
                return "failed", f"cost budget exhausted (${st.cost:.4f} >= ${cfg.max_cost})"
        return "failed", f"max steps reached ({cfg.max_steps})"

    def _no_action(self, turn: Decoded, reply: LLMReply, seen: dict[str, int]) -> str:
        """A reply with nothing to run: tell the model what was wrong; the reason to stop, if it is time."""
        cfg, st = self.cfg, self.st
        if turn.correction:
            self.conv.add({"role": "user", "content": turn.correction})
        st.no_action += 1
        st.empty = st.empty + 1 if turn.outcome == "empty" else 0
        if st.empty >= cfg.repeat_limit:
            return f"the model sent {st.empty} empty replies in a row"
        key = f"{turn.outcome}:{(reply.content or '').strip()}"
        seen[key] = seen.get(key, 0) + 1 if turn.outcome != "empty" else 0
        if seen[key] >= cfg.repeat_limit:
            what = "the same reply" if turn.outcome in ("prose", "native") else f"the same unusable reply ({turn.outcome})"
            return f"the model repeated {what} {cfg.repeat_limit} times without acting"
        if st.no_action >= cfg.stall_limit:
            return f"the model sent {st.no_action} replies in a row without a usable tool call (last: {turn.outcome})"
        return ""

    def _same_action(self, calls: list[ToolCall]) -> tuple[str, str]:
        """(a note for the model, a reason to stop) when this reply asks for exactly what the previous
        one did: a weak model can loop on one read until its steps run out."""
        st = self.st
        sig = json.dumps([[c.name, _normalize_args(c.arguments)] for c in calls])
        st.same_action = st.same_action + 1 if sig == st.last_action else 1
        st.last_action = sig
        if st.same_action >= self.cfg.stall_limit:
            return "", f"the model repeated the same action {st.same_action} times in a row ({calls[0].name})"
        if st.same_action >= 2:
            return (f"Note: this is the same action as your previous reply ({st.same_action} times in a row); it "
                    "will most likely give the same result. Do something else, or finish if the task is done."), ""
        return "", ""

    def _verify_if_changed(self, ws: Workspace, runner: CommandRunner, test_cmd: str | None,
                           *, edits_only: bool = False) -> tuple[Verification | None, str]:
        """Run the tests when the worktree differs from the last verified state."""
        tree = ws.tree()
        if tree == self.st.verified_tree:
            return Verification(test_cmd or "", True, 0, "(unchanged since the last passing run)", 0.0), tree
        if edits_only and (tree == self.st.last_failed_tree
                           or (self.st.verified_tree is None and tree == self._base_tree(ws))):
            return None, tree  # nothing edited since the last run (or at all)
        if not test_cmd:
            return None, tree
        t0 = time.perf_counter()
        res = runner.run(test_cmd, timeout=self.cfg.verify_timeout)
        secs = time.perf_counter() - t0
        out = (res.stdout or "") + (("\n" + res.stderr) if res.stderr else "")
        ver = Verification(test_cmd, res.exit_code == 0 and not res.timed_out, res.exit_code, out, secs,
                           bool(res.timed_out))
        self.traj.write("verify", step=self.st.steps, command=test_cmd, passed=ver.passed, exit_code=ver.exit_code,
                        timed_out=ver.timed_out, seconds=round(secs, 4), output=truncate(out, 20_000))
        self.ui.event("verify", {"step": self.st.steps, "passed": ver.passed, "seconds": secs})
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
        context, items = observer.snippets(query, self.cfg.failure_budget) if query else ("", [])
        self.traj.write("observe", step=self.st.steps, query=query, context_items=items, after="failed verification")
        self.conv.add({"role": "user", "content": prompts.failure_message(
            ver.command, ver.exit_code, digest, truncate(ver.output, 8_000), context)})

    def _commit(self, ws: Workspace, message: str, tree: str) -> None:
        sha = ws.commit(message, tree)
        if sha:
            self.traj.write("commit", step=self.st.steps, sha=sha, message=message, tree=tree)

    def _tool_message(self, call: ToolCall, content: str) -> None:
        self.conv.add(self.proto.result_message(call, content))

    def _log_tool(self, call: Any, output: str, ok: bool, seconds: float, sandbox_s: float) -> None:
        self.traj.write("tool", step=self.st.steps, id=call.id, name=call.name, arguments=call.arguments,
                        ok=ok, output=truncate(output, 20_000), seconds=round(seconds, 4),
                        sandbox_s=round(sandbox_s, 4))

    # -- end -------------------------------------------------------------------------------------------------
    def _close(self, ws: Workspace | None, runner: Any, observer: Observer | None, status: str, reason: str,
               t0: float) -> RunResult:
        """Stop the sandbox, keep the work on the branch, remove the worktree (releasing the run's lock)
        and write `run_end` - each step on its own, so that one failing does not skip the others."""
        diff = ""
        branch = None
        try:
            if runner is not None and hasattr(runner, "stop"):
                runner.stop()
        except Exception:  # noqa: BLE001
            pass
        try:
            if observer is not None:
                observer.close()
        except Exception:  # noqa: BLE001
            pass
        try:
            if hasattr(self.llm, "close"):
                self.llm.close()
        except Exception:  # noqa: BLE001
            pass
        if ws is not None:
            branch = ws.branch
            try:
                sha = ws.commit(f"repoloop: unverified work at stop ({_one_line(reason)[:80]})") \
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
        result = RunResult(status=status, run_id=self.run_id, branch=branch, diff=diff, steps=self.st.steps,
                           usage=self.st.usage, cost=self.st.cost, cost_known=self.st.cost_known,
                           trajectory=self.traj_path, reason=reason, summary=self.redact(self.st.summary),
                           wall_s=wall, unreachable=self.unreachable, tool_mode=self.proto.mode,
                           model_calls=self.st.model_calls)
        self._record("run_end", status=status, reason=reason, branch=branch, steps=self.st.steps,
                     tokens=self.st.usage.to_json(), cost=round(self.st.cost, 6), cost_known=self.st.cost_known,
                     model=self.cfg.model, wall_s=round(wall, 3), diff_lines=diff.count("\n"),
                     summary=self.st.summary, diff=diff, tool_mode=self.proto.mode, model_calls=self.st.model_calls,
                     parse_outcomes=self.st.outcomes)
        try:
            self.traj.close()
        except OSError:
            pass
        self.ui.event("end", result.to_json())
        return result


def _default_runner(kind: str | None, workspace: Path, image: str | None, repo: Path) -> Any:
    from repoloop.agent.sandboxing import SandboxRunner, project_env_binds

    return SandboxRunner.open(kind, workspace, image=image, ro_binds=tuple(project_env_binds(repo)))


def _normalize_args(raw: str) -> str:
    try:
        return json.dumps(json.loads(raw), sort_keys=True)
    except (ValueError, TypeError, RecursionError):
        return (raw or "").strip() if isinstance(raw, str) else repr(raw)


def _context_overflow(message: str) -> bool:
    m = message.lower()
    return "context" in m and any(w in m for w in ("length", "too long", "maximum", "exceed", "window"))


def _path_arg(raw: str) -> str:
    try:
        path = json.loads(raw).get("path", "")
    except (ValueError, TypeError, AttributeError, RecursionError):
        return ""
    return path[:200] if isinstance(path, str) else ""


def _one_line(text: str) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def _one_line_error(e: BaseException) -> str:
    """`TypeName: first line of the message` (at most 300 characters)."""
    msg = _one_line(str(e))[:300]
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _first_line(text: str) -> str:
    return (text or "").strip().splitlines()[0][:72] if (text or "").strip() else ""
