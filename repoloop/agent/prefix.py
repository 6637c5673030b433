"""How much of each request repeats the previous one from its first byte: what a provider's prompt
cache (OpenAI, Anthropic, vLLM's prefix caching, llama.cpp's slot cache) can reuse.

A request is measured as the text the server turns into the prompt, in the order chat templates put
it: the tool schemas, then each message (role, content, tool calls). The share is the length of the
common prefix with the previous request over the length of this one, in characters (tokens are
estimated from characters throughout repoloop, so the share in tokens is the same ratio).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

CHARS_PER_TOKEN = 3.5


def request_text(messages: list[dict[str, Any]], tools: list[dict] | None) -> str:
    parts = [json.dumps(tools, sort_keys=True) if tools else ""]
    for m in messages:
        parts.append(f"\x1e{m.get('role')}\x1f")
        c = m.get("content")
        parts.append(c if isinstance(c, str) else json.dumps(c, sort_keys=True))
        if m.get("tool_calls"):
            parts.append(json.dumps(m["tool_calls"], sort_keys=True))
        if m.get("tool_call_id"):
            parts.append(f"\x1f{m['tool_call_id']}")
    return "".join(parts)


def common_prefix_len(a: str, b: str) -> int:
    """Length of the common prefix of a and b (compared in slices, so it costs little on long texts)."""
    n = min(len(a), len(b))
    i, step = 0, 4096
    while i < n:
        j = min(i + step, n)
        if a[i:j] == b[i:j]:
            i = j
            continue
        while i < j and a[i] == b[i]:
            i += 1
        return i
    return n


@dataclass
class PrefixMeter:
    """Remembers the previous request and measures each new one against it."""

    previous: str = ""

    def measure(self, messages: list[dict[str, Any]], tools: list[dict] | None) -> dict[str, Any]:
        text = request_text(messages, tools)
        common = common_prefix_len(self.previous, text) if self.previous else 0
        self.previous = text
        return {"prefix_share": round(common / len(text), 4) if text else 0.0,
                "prefix_tokens_est": int(common / CHARS_PER_TOKEN),
                "request_tokens_est": int(len(text) / CHARS_PER_TOKEN) + 1}
