"""The model's side of a step: send one request and read its reply into tool calls.

Kept apart from the loop (repoloop.agent.loop) so that the loop reads as run -> step -> query /
dispatch / verify, while everything about talking to a server lives here: compacting the
conversation when the window is full, the `request`, `reply` and `model_error` records, what the run
has spent, and adapting to the server - sending again without `tool_choice` when it is refused, and
shrinking the conversation once when the server's window is smaller than --context-limit said.

Tool calls go natively or as text (`tool_mode`, repoloop.agent.protocol): `auto` starts native and
switches to text-mode action blocks (repoloop.agent.textmode) once, when the server refuses `tools`
or the model keeps answering in prose.

Each request is meant to extend the previous one byte for byte (system prompt, tool schemas and
repository context first; history only appended; compaction only when the window is full): the
`request` record carries the share that repeats the previous request's prefix (repoloop.agent.prefix),
the `reply` record the server's `cached` tokens where it reports them.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from repoloop.agent import prompts
from repoloop.agent.conversation import Conversation, estimate_tokens
from repoloop.agent.interfaces import Model
from repoloop.agent.llm import LLMError, LLMReply, Usage, first_line
from repoloop.agent.prefix import PrefixMeter
from repoloop.agent.protocol import TextProtocol, make_protocol, to_text_history, wire
from repoloop.agent.textmode import Decoded, decode_text, protocol_text
from repoloop.agent.tools import TOOL_NAMES, TOOL_SCHEMAS

PROSE_SWITCH = 2  # auto mode: replies in a row without a native call before switching to text mode


class ModelTurn:
    """Talks to `llm` over `conv` under the run's tool protocol (`proto`, which auto mode may switch to
    text once). `write` writes a trajectory record, `emit` an event also shown to the reporter.
    Spent so far: `usage`, `cost` (`cost_known` false once a reply had no price), `model_calls`."""

    def __init__(self, llm: Model, conv: Conversation, *, model: str, tool_mode: str, max_cost: float | None,
                 write: Callable[..., None], emit: Callable[..., None]) -> None:
        self.llm = llm
        self.conv = conv
        self.default_model = model
        self.max_cost = max_cost
        self.write = write
        self.emit = emit
        self.auto = tool_mode == "auto"
        self.proto = make_protocol(tool_mode)
        self.prefix = PrefixMeter()
        self.tools_tokens = self._tools_tokens()
        self._pending: list[str] = []  # user messages to add once this turn's results are in
        self.usage = Usage()
        self.cost = 0.0
        self.cost_known = True
        self.model_calls = 0  # chat requests that got a reply (retries inside one are not counted again)
        self._prose_native = 0  # auto mode: native replies in a row without a call
        self._step = 0  # the step the records are written for

    def _tools_tokens(self) -> int:
        tools = self.proto.request_tools()
        return estimate_tokens([{"content": json.dumps(tools)}]) if tools else 0

    # -- one request ---------------------------------------------------------------------------------
    def ask(self, step: int, *, model: str | None = None, phase: str = "act",
            tool_choice: str | None = None) -> LLMReply:
        """One model call under the current tool protocol, its spending counted and its reply recorded."""
        self._step = step
        model = model or self.default_model
        try:
            reply = self._send_adapting(model, phase, tool_choice)
        except LLMError as e:
            self._request_failed(e, phase, model)
            raise
        self.model_calls += 1
        self.usage.add(reply.usage)
        if reply.cost is None:
            if self.cost_known and self.max_cost is not None:
                self.emit("note", text=f"no price known for {model}: --max-cost cannot be enforced (give --prices)")
            self.cost_known = False
        else:
            self.cost += reply.cost
        self.write("reply", step=step, phase=phase, model=model, content=reply.content,
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
            self._switch_to_text(f"the server refused the tools: {first_line(str(e), 300)}")
            return self._send(model, phase, tool_choice)

    def _request_failed(self, e: LLMError, phase: str, model: str, recovered: str = "") -> None:
        """Every request ends in a `reply` or a `model_error` record; `recovered` says how the run went on."""
        self.write("model_error", step=self._step, phase=phase, model=model, error=str(e),
                   attempts=e.attempts, errors=e.errors, model_s=round(e.seconds, 4), tool_mode=self.proto.mode,
                   **({"recovered": recovered} if recovered else {}))

    def _send(self, model: str, phase: str, tool_choice: str | None) -> LLMReply:
        """Compact if the window is full, log the request, send it; a server whose window turns out
        smaller than --context-limit said gets the conversation shrunk to fit, once."""
        summary = self.conv.compact_if_needed(self.tools_tokens)
        if summary is not None:
            self.write("compaction", summary=summary, messages=len(self.conv.messages))
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
            self.write("compaction", summary=summary, messages=len(self.conv.messages), reason=str(e)[:300])
            return self._chat(model, phase, tool_choice)

    def _chat(self, model: str, phase: str, tool_choice: str | None) -> LLMReply:
        tools = self.proto.request_tools()
        messages = wire(self.conv.messages)
        share = self.prefix.measure(messages, tools)
        self.write("request", step=self._step, phase=phase, model=model,
                   messages=self.conv.new_since_last(), n_messages=len(self.conv.messages),
                   est_tokens=self.conv.tokens(), tools=bool(tools), tool_mode=self.proto.mode, **share)
        return self.llm.chat(messages, tools, model=model, tool_choice=tool_choice if tools else None,
                             tools_optional=self.auto and tools is not None)

    # -- its reply -----------------------------------------------------------------------------------
    def read(self, reply: LLMReply, step: int) -> Decoded:
        """The calls a reply asks for. Auto mode, still native: a reply with no native call that holds
        an action block (the model writes them anyway), or the PROSE_SWITCH-th reply in a row without a
        call, switches the run to text mode."""
        self._step = step
        turn = self.proto.decode(reply, step)
        if not (self.auto and self.proto.mode == "native") or turn.calls or turn.outcome == "empty":
            self._prose_native = 0
            return turn
        as_text = decode_text(reply.content, step=step, cut=reply.finish_reason == "length",
                              tool_names=TOOL_NAMES)
        self._prose_native += 1
        if as_text.calls:
            self._switch_to_text("the model writes its tool calls as text", announce_now=False)
            return as_text
        if self._prose_native >= PROSE_SWITCH:
            self._switch_to_text(f"{self._prose_native} replies in a row without a tool call", announce_now=False)
            turn.correction = ""  # the switch message says what to do
        return turn

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
        self.emit("tool_mode", step=self._step, mode="text", reason=reason)

    def take_pending(self) -> list[str]:
        """The notes held back for after this turn's results (the switch to text mode), once."""
        notes, self._pending = self._pending, []
        return notes


def _context_overflow(message: str) -> bool:
    m = message.lower()
    return "context" in m and any(w in m for w in ("length", "too long", "maximum", "exceed", "window"))
