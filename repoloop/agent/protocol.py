"""How tool calls travel between the loop and the model: natively (`tools` in the request, `tool_calls`
in the reply, results as `tool` messages) or as text (tools described in the system prompt, one action
block per reply, results as user messages: repoloop.agent.textmode). The loop talks to one
`ToolProtocol`; `--tool-mode auto` starts native and switches to text once (see ModelTurn._switch_to_text).

`wire()` is what is sent: consecutive user messages are joined into one, since many chat templates
(Gemma's, for one) refuse two user turns in a row; the join only ever touches the newest messages, so
each request stays a byte-identical extension of the previous one.
"""

from __future__ import annotations

from typing import Any, Protocol

from repoloop.agent.llm import LLMReply, ToolCall
from repoloop.agent.textmode import Decoded, decode_text, observation, protocol_text, render_call
from repoloop.agent.tools import TOOL_NAMES, TOOL_SCHEMAS

TOOL_MODES = ("native", "text", "auto")


class ToolProtocol(Protocol):
    mode: str  # native | text

    def request_tools(self) -> list[dict] | None:
        """What goes in the request's `tools` (None: nothing)."""
        ...

    def system_text(self) -> str:
        """What the system prompt must say about calling tools ("" when the request carries them)."""
        ...

    def decode(self, reply: LLMReply, step: int) -> Decoded:
        """The calls a reply asks for, how it was read, and the correction when there are none."""
        ...

    def assistant_message(self, reply: LLMReply) -> dict[str, Any]: ...

    def result_message(self, call: ToolCall, output: str) -> dict[str, Any]: ...


class NativeProtocol:
    mode = "native"

    def request_tools(self) -> list[dict] | None:
        return TOOL_SCHEMAS

    def system_text(self) -> str:
        return ""

    def decode(self, reply: LLMReply, step: int) -> Decoded:
        if reply.tool_calls:
            return Decoded(list(reply.tool_calls), outcome="native")
        if not (reply.content or "").strip():
            return Decoded(outcome="empty", detail="empty reply",
                           correction="Your reply was empty. Call a tool, or finish with a summary if the task is done.")
        if reply.finish_reason == "length":
            return Decoded(outcome="cut", detail="cut at the output limit with no tool call",
                           correction="Your reply was cut off at the output limit before any tool call; keep it "
                                      "short and call a tool.")
        return Decoded(outcome="prose", detail="no tool call",
                       correction="You replied without calling a tool. Continue with the tools (read, edit, run) "
                                  "or call finish with a summary if the task is done.")

    def assistant_message(self, reply: LLMReply) -> dict[str, Any]:
        return reply.message()

    def result_message(self, call: ToolCall, output: str) -> dict[str, Any]:
        return {"role": "tool", "tool_call_id": call.id, "content": output}


class TextProtocol:
    mode = "text"

    def request_tools(self) -> list[dict] | None:
        return None

    def system_text(self) -> str:
        return protocol_text(TOOL_SCHEMAS)

    def decode(self, reply: LLMReply, step: int) -> Decoded:
        content = reply.content
        if reply.tool_calls and not decode_text(content, step=step, tool_names=TOOL_NAMES).calls:
            # A server that parses calls itself even so: take the first one, as a text action.
            tc = reply.tool_calls[0]
            return Decoded([ToolCall(f"text_{step}", tc.name, tc.arguments)], outcome="native")
        return decode_text(content, step=step, cut=reply.finish_reason == "length", tool_names=TOOL_NAMES)

    def assistant_message(self, reply: LLMReply) -> dict[str, Any]:
        content = reply.content or ""
        if reply.tool_calls and not content.strip():
            content = "\n".join(render_call(t.name, t.arguments) for t in reply.tool_calls[:1])
        return {"role": "assistant", "content": content}

    def result_message(self, call: ToolCall, output: str) -> dict[str, Any]:
        return {"role": "user", "content": observation(call.name, output)}


def make_protocol(mode: str) -> ToolProtocol:
    return TextProtocol() if mode == "text" else NativeProtocol()


def to_text_history(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A native conversation as text mode would have had it, message for message (same count): tool
    calls become action blocks in the assistant's text, tool results become user messages."""
    names: dict[str, str] = {}
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role == "assistant" and m.get("tool_calls"):
            blocks = []
            for tc in m["tool_calls"]:
                fn = tc.get("function") or {}
                names[tc.get("id", "")] = fn.get("name", "")
                blocks.append(render_call(fn.get("name", ""), fn.get("arguments") or ""))
            text = "\n".join(x for x in [(m.get("content") or "").strip(), *blocks] if x)
            out.append({"role": "assistant", "content": text})
        elif role == "tool":
            out.append({"role": "user", "content": observation(names.get(m.get("tool_call_id", ""), "the tool"),
                                                                m.get("content") or "")})
        else:
            out.append(m)
    return out


def wire(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as sent: consecutive user messages with text content joined by a blank line."""
    out: list[dict[str, Any]] = []
    for m in messages:
        prev = out[-1] if out else None
        if (prev is not None and m.get("role") == "user" and prev.get("role") == "user"
                and isinstance(m.get("content"), str) and isinstance(prev.get("content"), str)):
            out[-1] = {**prev, "content": prev["content"] + "\n\n" + m["content"]}
        else:
            out.append(m)
    return out
