"""OpenAI-compatible chat-completions client: retries with backoff, streaming, usage and cost.

Any server that speaks the protocol works (OpenAI, vLLM, Ollama, llama.cpp server). The SDK's own
retries are off so that this module decides what is retried (429, 5xx, timeouts, dropped
connections) and how long it waits, and can record every attempt.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repoloop.errors import RepoloopError

# USD per 1M tokens: (input, output, cached input). Overridable with --prices / REPOLOOP_PRICES.
DEFAULT_PRICES: dict[str, tuple[float, float, float | None]] = {
    "gpt-4o": (2.50, 10.00, 1.25),
    "gpt-4o-mini": (0.15, 0.60, 0.075),
    "gpt-4.1": (2.00, 8.00, 0.50),
    "gpt-4.1-mini": (0.40, 1.60, 0.10),
    "gpt-4.1-nano": (0.10, 0.40, 0.025),
    "gpt-5": (1.25, 10.00, 0.125),
    "gpt-5-mini": (0.25, 2.00, 0.025),
    "gpt-5-nano": (0.05, 0.40, 0.005),
    "o3": (2.00, 8.00, 0.50),
    "o4-mini": (1.10, 4.40, 0.275),
    "deepseek-chat": (0.27, 1.10, 0.07),
}


@dataclass(slots=True)
class Usage:
    prompt: int = 0
    completion: int = 0
    cached: int = 0

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    def add(self, other: Usage) -> None:
        self.prompt += other.prompt
        self.completion += other.completion
        self.cached += other.cached

    def to_json(self) -> dict[str, int]:
        return {"prompt": self.prompt, "completion": self.completion, "total": self.total,
                "cached": self.cached}


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model sent it (may be malformed)


@dataclass(slots=True)
class LLMReply:
    content: str | None
    tool_calls: list[ToolCall]
    usage: Usage
    cost: float | None  # None: the model has no price entry
    model: str
    seconds: float  # wall time in the model, retries and backoff included
    attempts: int = 1
    errors: list[str] = field(default_factory=list)  # what failed before the attempt that worked

    def message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation."""
        m: dict[str, Any] = {"role": "assistant", "content": self.content or ""}
        if self.tool_calls:
            m["tool_calls"] = [{"id": t.id, "type": "function",
                                "function": {"name": t.name, "arguments": t.arguments}} for t in self.tool_calls]
        return m


class LLMError(RepoloopError):
    """The model endpoint failed for good (after retries) or refused the request."""


class PriceTable:
    """Per-model prices in USD per 1M tokens; unknown models cost 0 and are reported as unknown."""

    def __init__(self, prices: dict[str, tuple[float, float, float | None]] | None = None) -> None:
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)

    @classmethod
    def load(cls, spec: str | None = None) -> PriceTable:
        """Defaults, overridden by `spec` or REPOLOOP_PRICES: a JSON object or a path to one.
        Format: {"model": {"input": 1.0, "output": 2.0, "cached_input": 0.5}} (USD per 1M tokens)."""
        table = cls()
        spec = spec or os.environ.get("REPOLOOP_PRICES")
        if not spec:
            return table
        try:
            text = Path(spec).read_text() if not spec.lstrip().startswith("{") else spec
            data = json.loads(text)
            for model, p in data.items():
                table.prices[model] = (float(p["input"]), float(p["output"]),
                                       float(p["cached_input"]) if p.get("cached_input") is not None else None)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise RepoloopError(f"bad price table {spec[:80]!r}: {e}") from None
        return table

    def lookup(self, model: str) -> tuple[float, float, float | None] | None:
        if model in self.prices:
            return self.prices[model]
        base = model.rsplit("/", 1)[-1]  # "openai/gpt-4o" -> "gpt-4o"
        if base in self.prices:
            return self.prices[base]
        # dated snapshots: "gpt-4o-2024-08-06" -> the longest known prefix
        best = max((m for m in self.prices if base.startswith(m + "-")), key=len, default=None)
        return self.prices[best] if best else None

    def cost(self, model: str, usage: Usage) -> float | None:
        p = self.lookup(model)
        if p is None:
            return None
        inp, out, cached = p
        cached_price = inp if cached is None else cached
        fresh = max(usage.prompt - usage.cached, 0)
        return (fresh * inp + usage.cached * cached_price + usage.completion * out) / 1_000_000


@dataclass(slots=True)
class LLMConfig:
    model: str
    base_url: str | None = None
    api_key: str | None = None
    timeout: float = 120.0
    max_retries: int = 4
    backoff: float = 1.0  # seconds before the first retry; doubles each time
    stream: bool = False
    temperature: float | None = None


class LLMClient:
    """One endpoint; `chat()` sends a request and returns the parsed reply."""

    def __init__(self, config: LLMConfig, prices: PriceTable | None = None) -> None:
        import openai

        self.config = config
        self.prices = prices or PriceTable()
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=config.base_url, api_key=config.api_key or "none",
            timeout=config.timeout, max_retries=0,
        )

    def chat(self, messages: list[dict], tools: list[dict] | None = None, *, model: str | None = None,
             tool_choice: str | None = None) -> LLMReply:
        model = model or self.config.model
        kwargs: dict[str, Any] = {"model": model, "messages": messages}
        if tools:
            kwargs["tools"] = tools
            if tool_choice:
                kwargs["tool_choice"] = tool_choice
        if self.config.temperature is not None:
            kwargs["temperature"] = self.config.temperature
        oa = self._openai
        retryable = (oa.RateLimitError, oa.InternalServerError, oa.APITimeoutError, oa.APIConnectionError)
        errors: list[str] = []
        t0 = time.perf_counter()
        for attempt in range(1, self.config.max_retries + 2):
            try:
                content, calls, usage = (self._stream(kwargs) if self.config.stream else self._once(kwargs))
            except retryable as e:
                errors.append(_describe(e))
                if attempt > self.config.max_retries:
                    raise LLMError(f"model endpoint failed after {attempt} attempts: {errors[-1]}") from None
                time.sleep(self._delay(attempt, e))
                continue
            except oa.APIStatusError as e:  # 4xx other than 429: retrying will not help
                raise LLMError(f"model endpoint refused the request: {_describe(e)}") from None
            return LLMReply(content=content, tool_calls=calls, usage=usage, cost=self.prices.cost(model, usage),
                            model=model, seconds=time.perf_counter() - t0, attempts=attempt, errors=errors)
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, err: Exception) -> float:
        retry_after = None
        resp = getattr(err, "response", None)
        if resp is not None:
            try:
                retry_after = float(resp.headers.get("retry-after", ""))
            except (TypeError, ValueError):
                retry_after = None
        base = self.config.backoff * (2 ** (attempt - 1))
        delay = base * (0.5 + random.random() / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, 60.0))
        return delay

    def _once(self, kwargs: dict) -> tuple[str | None, list[ToolCall], Usage]:
        resp = self._client.chat.completions.create(**kwargs)
        if not resp.choices:
            raise LLMError("model endpoint returned no choices")
        msg = resp.choices[0].message
        calls = [ToolCall(id=tc.id or f"call_{i}", name=tc.function.name or "", arguments=tc.function.arguments or "")
                 for i, tc in enumerate(msg.tool_calls or [])]
        return msg.content, calls, _usage(resp.usage)

    def _stream(self, kwargs: dict) -> tuple[str | None, list[ToolCall], Usage]:
        stream = self._client.chat.completions.create(**kwargs, stream=True,
                                                      stream_options={"include_usage": True})
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage = Usage()
        for chunk in stream:
            if chunk.usage:
                usage = _usage(chunk.usage)
            for choice in chunk.choices or []:
                d = choice.delta
                if d is None:
                    continue
                if d.content:
                    text.append(d.content)
                for tc in d.tool_calls or []:
                    slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                    if tc.id:
                        slot["id"] = tc.id
                    if tc.function and tc.function.name:
                        slot["name"] += tc.function.name
                    if tc.function and tc.function.arguments:
                        slot["arguments"] += tc.function.arguments
        out = [ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["arguments"])
               for i, c in sorted(calls.items())]
        return ("".join(text) or None), out, usage


def _usage(u: Any) -> Usage:
    if u is None:
        return Usage()
    details = getattr(u, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", 0) if details is not None else 0
    return Usage(prompt=u.prompt_tokens or 0, completion=u.completion_tokens or 0, cached=cached or 0)


def _describe(e: Exception) -> str:
    status = getattr(e, "status_code", None)
    name = type(e).__name__
    msg = str(e).splitlines()[0][:200] if str(e) else ""
    return f"{name} {status}: {msg}" if status else f"{name}: {msg}"
