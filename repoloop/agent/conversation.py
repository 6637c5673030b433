"""The message list sent to the model, kept under the context limit.

The first messages (system, task, and the plan exchange) are the stable prefix and are never touched. When the
estimate nears the limit, the oldest turns after the prefix are replaced by one summary message
written locally (what was called, what came back, in one line each); the newest turns stay whole.
Cuts happen only before an assistant message, so tool calls and their results stay paired.

What the model said is kept to MAX_REPLY_KEEP characters (its text, and each tool call's
arguments): a reply of megabytes is run in full by the tools but is not sent back on every later
request (compaction never shortens the newest turn, so it has to be bounded when it is added).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PREFIX = 2  # system, task
SUMMARY_HEAD = "Summary of earlier steps (compacted to fit the context window):"
OBSERVATION_PREFIX = "Output of "  # a text-mode tool result (repoloop.agent.textmode.observation)
MAX_REPLY_KEEP = 20_000  # characters of an assistant message's text, and of each call's arguments


def estimate_tokens(messages: list[dict]) -> int:
    """An over-estimate (about 3.5 characters a token) - cheap, and errs on the safe side."""
    chars = 0
    for m in messages:
        c = m.get("content") or ""
        chars += len(c) if isinstance(c, str) else len(json.dumps(c))
        for tc in m.get("tool_calls") or []:
            chars += len(tc["function"]["name"]) + len(tc["function"]["arguments"] or "")
        chars += 16
    return int(chars / 3.5) + 1


@dataclass
class Conversation:
    context_limit: int = 128_000
    reserve: int = 8_000  # room for the reply and the tool schemas
    keep_recent: int = 6  # messages kept whole at the end
    messages: list[dict[str, Any]] = field(default_factory=list)
    sent: int = 0  # messages already logged to the trajectory
    compactions: int = 0
    prefix: int = PREFIX  # leading messages never compacted (the loop extends it over the plan)

    def add(self, message: dict[str, Any]) -> None:
        if message.get("role") == "assistant":
            message = _bounded_reply(message)
        self.messages.append(message)

    def new_since_last(self) -> list[dict]:
        out = self.messages[self.sent:]
        self.sent = len(self.messages)
        return out

    def tokens(self) -> int:
        return estimate_tokens(self.messages)

    def compact_if_needed(self, tools_tokens: int = 0) -> str | None:
        """Summarise old turns (and shorten old tool outputs) when over the limit; returns what was
        done (None when nothing was)."""
        reserve = min(self.reserve, self.context_limit // 4)
        limit = max(self.context_limit - reserve - tools_tokens, 2_000)
        if self.tokens() <= limit:
            return None
        keep = self.prefix
        done = None
        # The last turns stay whole; a window too small for even those (a server that said so) keeps
        # only the newest turn.
        for recent in (self.keep_recent, 2):
            if done is not None and self.tokens() <= limit:
                break
            cut = len(self.messages) - recent
            while cut > keep and self.messages[cut].get("role") != "assistant":
                cut -= 1  # never separate tool results from their call
            if cut > keep + 1:
                old = self.messages[keep:cut]
                done = summarize(old)
                self.messages[keep:cut] = [{"role": "user", "content": done}]
                self.sent = max(keep + 1, self.sent - len(old) + 1)
                self.compactions += 1
        if self.tokens() > limit:  # huge recent outputs: shorten all but the newest
            shortened = 0
            for m in self.messages[keep:-1]:
                # tool results: `tool` messages (native) or the user messages that carry them (text mode);
                # and what the model said (a text-mode action holds its arguments there)
                long = len(m.get("content") or "") > 2_000
                if long and (m.get("role") in ("tool", "assistant") or _is_observation(m)):
                    m["content"] = m["content"][:1_000] + "\n[... shortened to fit the context limit ...]"
                    shortened += 1
                for tc in m.get("tool_calls") or []:
                    if len(tc["function"].get("arguments") or "") > 2_000:
                        tc["function"]["arguments"] = _shorten_args(tc["function"]["arguments"])
                        shortened += 1
            if shortened:
                self.compactions += 1
                done = (done + "\n" if done else "") + f"shortened {shortened} earlier tool outputs"
        return done


def _is_observation(m: dict[str, Any]) -> bool:
    c = m.get("content")
    return m.get("role") == "user" and isinstance(c, str) and c.startswith(OBSERVATION_PREFIX)


def summarize(messages: list[dict]) -> str:
    """One line per earlier action, so the model remembers what it did without the bulk."""
    lines = [SUMMARY_HEAD]
    results = {m.get("tool_call_id"): (m.get("content") or "") for m in messages if m.get("role") == "tool"}
    for m in messages:
        role = m.get("role")
        if role == "assistant":
            if m.get("content"):
                lines.append(f"- you said: {_one_line(m['content'], 200)}")
            for tc in m.get("tool_calls") or []:
                res = results.get(tc.get("id"), "")
                lines.append(f"- {tc['function']['name']}({_one_line(tc['function']['arguments'], 160)})"
                             f" -> {_one_line(res, 160)}")
        elif role == "user":
            lines.append(f"- observation: {_one_line(m.get('content') or '', 300)}")
    return "\n".join(lines)


def _one_line(text: str, n: int) -> str:
    t = " ".join(str(text).split())
    return t if len(t) <= n else t[: n - 3] + "..."


def _bounded_reply(message: dict[str, Any]) -> dict[str, Any]:
    """An assistant message with its text and each call's arguments within MAX_REPLY_KEEP."""
    content = message.get("content")
    calls = message.get("tool_calls") or []
    long_args = any(len(tc["function"].get("arguments") or "") > MAX_REPLY_KEEP for tc in calls)
    if not (isinstance(content, str) and len(content) > MAX_REPLY_KEEP) and not long_args:
        return message
    out = dict(message)
    if isinstance(content, str) and len(content) > MAX_REPLY_KEEP:
        head, tail = content[: MAX_REPLY_KEEP * 3 // 4], content[-(MAX_REPLY_KEEP // 4):]
        out["content"] = (f"{head}\n[... {len(content) - len(head) - len(tail):,} characters of this reply cut "
                          f"(it was {len(content):,}) ...]\n{tail}")
    if long_args:
        out["tool_calls"] = [
            {**tc, "function": {**tc["function"], "arguments": _shorten_args(tc["function"]["arguments"])}}
            if len(tc["function"].get("arguments") or "") > MAX_REPLY_KEEP else tc
            for tc in calls]
    return out


def _shorten_args(raw: str) -> str:
    """Tool-call arguments with long string values elided, still valid JSON (providers check)."""
    try:
        args = json.loads(raw)
    except (ValueError, RecursionError):
        return json.dumps({"elided": raw[:200]})
    if not isinstance(args, dict):
        return json.dumps({"elided": raw[:200]})
    out = {k: (v[:200] + f"...[{len(v) - 200} chars elided]" if isinstance(v, str) and len(v) > 500 else v)
           for k, v in args.items()}
    text = json.dumps(out)
    return text if len(text) <= MAX_REPLY_KEEP else json.dumps({"elided": raw[:200]})
