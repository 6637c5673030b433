"""OpenAI-compatible chat-completions client: retries with backoff, streaming, usage and cost.

Any server that speaks the protocol works (OpenAI, vLLM, Ollama, llama.cpp server). The SDK's own
retries are off so that this module decides what is retried (429, 5xx, timeouts, dropped
connections, malformed 200 replies) and how long it waits, and can record every attempt.

The server is not trusted: the SDK sends the request, but the body is read here, at most
MAX_REPLY_BYTES of it, and checked field by field (a 200 with HTML, invalid JSON, `message: null`,
`content: 42` or no choices is a malformed reply, never an exception from deep inside the loop).
Each attempt runs under a whole-request deadline of `timeout` seconds, connect to last byte
(asyncio cancellation): a server that trickles its reply a byte at a time cannot hold it longer.
The requests run on one background event loop per process (`_background_loop`), where each
LLMClient keeps its AsyncOpenAI client, so connections are kept alive between calls as before;
`chat()` itself stays synchronous.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repoloop.agent.trajectory import Redactor
from repoloop.errors import RepoloopError

MAX_REPLY_BYTES = 64 * 1024 * 1024  # a reply body larger than this is refused (not read on)

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
    finish_reason: str | None = None  # "length": the server cut the reply at the output limit
    timings: dict[str, float] | None = None  # the server's own timings where it sends them (llama.cpp)

    def message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation."""
        m: dict[str, Any] = {"role": "assistant", "content": self.content or ""}
        if self.tool_calls:
            m["tool_calls"] = [{"id": t.id, "type": "function",
                                "function": {"name": t.name, "arguments": t.arguments}} for t in self.tool_calls]
        return m


class LLMError(RepoloopError):
    """The model endpoint failed for good (after retries) or refused the request."""

    def __init__(self, message: str, *, attempts: int = 1, errors: list[str] | None = None,
                 seconds: float = 0.0, unreachable: bool = False, tools_rejected: bool = False,
                 context_window: int | None = None) -> None:
        super().__init__(message)
        # The server's context window in tokens, where its refusal says it (llama.cpp's `n_ctx`,
        # OpenAI's "maximum context length is N tokens"): the loop compacts to fit it.
        self.context_window = context_window
        self.attempts = attempts
        # The server refused the request because it carried `tools` (no function calling there): the
        # loop's `auto` tool mode switches to text-mode tool calls instead of ending the run.
        self.tools_rejected = tools_rejected
        self.errors = list(errors or [])
        self.seconds = seconds
        # No connection could ever be made to the endpoint (a wrong URL, a server not started): an
        # environment error for the user to fix (exit 2), not a run that gave up.
        self.unreachable = unreachable


class MalformedReply(Exception):
    """A 200 reply that is not a chat completion (retried like a 5xx)."""


class ReplyTooLarge(Exception):
    """A reply over MAX_REPLY_BYTES (not retried: the model would likely do it again, at a price)."""


class DeadlineExceeded(Exception):
    """No complete reply within the whole-request deadline (retried like a timeout)."""


class PriceTable:
    """Per-model prices in USD per 1M tokens; unknown models cost 0 and are reported as unknown."""

    def __init__(self, prices: dict[str, tuple[float, float, float | None]] | None = None) -> None:
        self.prices = dict(DEFAULT_PRICES if prices is None else prices)

    @classmethod
    def load(cls, spec: str | None = None) -> PriceTable:
        """Defaults, overridden by `spec`: a JSON object or a path to one (the CLI passes --prices, else
        $REPOLOOP_PRICES). Format: {"model": {"input": 1.0, "output": 2.0, "cached_input": 0.5}} (USD per 1M
        tokens)."""
        table = cls()
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
    max_output_tokens: int | None = None  # sent as `max_tokens` when set (a local model can ramble to its window)


class LLMClient:
    """One endpoint; `chat()` sends a request and returns the parsed reply."""

    def __init__(self, config: LLMConfig, prices: PriceTable | None = None) -> None:
        import openai

        self.config = config
        self.prices = prices or PriceTable()
        self._openai = openai
        self.reached = False  # the endpoint has answered once (anything, even an error status)
        self.max_reply_bytes = MAX_REPLY_BYTES
        self._redact = Redactor.from_env([config.api_key] if config.api_key else [])
        self._loop: asyncio.AbstractEventLoop | None = None
        self._aclient: Any = None  # AsyncOpenAI, made on the background loop at first use

    def close(self) -> None:
        """Close the connections (the client is usable again afterwards: it reconnects)."""
        client, loop, self._aclient = self._aclient, self._loop, None
        if client is not None and loop is not None and not loop.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(client.close(), loop).result(timeout=5)
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    def chat(self, messages: list[dict], tools: list[dict] | None = None, *, model: str | None = None,
             tool_choice: str | None = None, tools_optional: bool = False) -> LLMReply:
        """One chat completion. `tools_optional`: the caller can do without `tools`, so an error that
        says the server cannot take them ends this call at once (LLMError.tools_rejected), unretried."""
        model = model or self.config.model
        kwargs: dict[str, Any] = {"model": model, "messages": messages}
        if tools:
            kwargs["tools"] = tools
            if tool_choice:
                kwargs["tool_choice"] = tool_choice
        if self.config.temperature is not None:
            kwargs["temperature"] = self.config.temperature
        if self.config.max_output_tokens:
            kwargs["max_tokens"] = self.config.max_output_tokens
        oa = self._openai
        retryable = (oa.RateLimitError, oa.InternalServerError, oa.APIConnectionError, MalformedReply,
                     DeadlineExceeded)
        errors: list[str] = []
        t0 = time.perf_counter()

        def fail(message: str, attempt: int, unreachable: bool = False, tools_rejected: bool = False,
                 context_window: int | None = None) -> LLMError:
            return LLMError(self._redact(message), attempts=attempt, errors=[self._redact(x) for x in errors],
                            seconds=time.perf_counter() - t0, unreachable=unreachable, tools_rejected=tools_rejected,
                            context_window=context_window)

        for attempt in range(1, self.config.max_retries + 2):
            try:
                content, calls, usage, meta = self._call(kwargs)
            except retryable as e:
                errors.append(self._describe(e))
                if tools and tools_optional and _rejects_tools(e):  # no function calling there: not worth retrying
                    self.reached = True
                    raise fail(f"model endpoint refused the tools: {errors[-1]}", attempt, tools_rejected=True) \
                        from None
                refused = isinstance(e, oa.APIConnectionError) and not isinstance(e, oa.APITimeoutError)
                if refused and not self.reached and attempt > min(1, self.config.max_retries):
                    # Never reached at all: one retry tells a server's hiccup from a wrong URL or a
                    # server that is not running; backing off for half a minute would only hide that.
                    raise fail(f"model endpoint unreachable after {attempt} attempt{'s' if attempt > 1 else ''}: "
                               f"{errors[-1]}; is the server running at that address? (--base-url or "
                               "OPENAI_BASE_URL)", attempt, unreachable=True) from None
                if not refused:
                    self.reached = self.reached or isinstance(e, (oa.APIStatusError, MalformedReply))
                if attempt > self.config.max_retries:
                    raise fail(f"model endpoint failed after {attempt} attempt{'s' if attempt > 1 else ''}: "
                               f"{errors[-1]}", attempt, tools_rejected=bool(tools) and _rejects_tools(e)) from None
                time.sleep(self._delay(attempt, e))
                continue
            except ReplyTooLarge as e:
                self.reached = True
                errors.append(str(e))
                raise fail(f"model endpoint sent an unusable reply: {e}", attempt) from None
            except oa.APIStatusError as e:  # 4xx other than 429: retrying will not help
                self.reached = True
                errors.append(self._describe(e))
                raise fail(f"model endpoint refused the request: {errors[-1]}", attempt,
                           tools_rejected=bool(tools) and _rejects_tools(e), context_window=_window(e)) from None
            except oa.OpenAIError as e:  # anything else the SDK raises: one clear line, no traceback
                errors.append(self._describe(e))
                raise fail(f"model endpoint failed: {errors[-1]}", attempt) from None
            self.reached = True
            return LLMReply(content=content, tool_calls=calls, usage=usage, cost=self.prices.cost(model, usage),
                            model=model, seconds=time.perf_counter() - t0, attempts=attempt,
                            errors=[self._redact(x) for x in errors], finish_reason=meta.get("finish_reason"),
                            timings=meta.get("timings"))
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
        if retry_after is not None and retry_after == retry_after:  # not NaN
            delay = max(delay, min(max(retry_after, 0.0), 60.0))
        return delay

    def _describe(self, e: BaseException) -> str:
        oa = self._openai
        if isinstance(e, DeadlineExceeded):
            return f"Timeout: {e}"
        if isinstance(e, (MalformedReply, ReplyTooLarge)):
            return f"{type(e).__name__}: {first_line(str(e), 400)}"
        if isinstance(e, oa.APITimeoutError):
            return f"APITimeoutError: no reply within {self.config.timeout:g}s (--timeout)"
        if isinstance(e, oa.APIConnectionError):
            cause = e.__cause__ or e.__context__
            why = first_line(str(cause)) if cause is not None and str(cause) else type(cause).__name__ if cause else ""
            where = self.config.base_url or "the OpenAI API"
            return f"APIConnectionError: connection to {where} failed" + (f" ({why})" if why else "")
        return _describe(e)

    # -- one attempt -----------------------------------------------------------------------------------
    def _call(self, kwargs: dict) -> tuple[str | None, list[ToolCall], Usage, dict[str, Any]]:
        """One request under the whole-request deadline, run on the background loop; this thread waits.
        An interrupt (Ctrl-C, SIGTERM as KeyboardInterrupt) while waiting cancels the request."""
        loop = _background_loop()
        if loop is not self._loop:  # first call, or a forked child: a client for this loop
            self._loop, self._aclient = loop, None
        fut = asyncio.run_coroutine_threadsafe(self._attempt(kwargs), loop)
        try:
            return fut.result()
        except BaseException:
            fut.cancel()
            raise

    async def _attempt(self, kwargs: dict) -> tuple[str | None, list[ToolCall], Usage, dict[str, Any]]:
        cfg = self.config
        extra: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}} if cfg.stream else {}
        if self._aclient is None:
            self._aclient = self._openai.AsyncOpenAI(base_url=cfg.base_url, api_key=cfg.api_key or "none",
                                                     timeout=cfg.timeout, max_retries=0)
        deadline = asyncio.timeout(cfg.timeout)
        try:
            async with deadline:
                async with self._aclient.chat.completions.with_streaming_response.create(**kwargs, **extra) as resp:
                    ctype = resp.headers.get("content-type", "")
                    data = await self._read(resp)
        except TimeoutError:
            if deadline.expired():
                raise DeadlineExceeded(f"no complete reply within the {cfg.timeout:g}s deadline (--timeout)") \
                    from None
            raise
        try:
            return parse_reply_meta(data, ctype)
        except (RecursionError, ValueError, TypeError, AttributeError) as e:  # a shape nobody foresaw
            raise MalformedReply(f"a reply that could not be read ({type(e).__name__}: {first_line(str(e))})") \
                from None

    async def _read(self, resp: Any) -> bytes:
        cap = self.max_reply_bytes
        try:
            announced = int(resp.headers.get("content-length") or 0)
        except ValueError:
            announced = 0
        if announced > cap:
            raise ReplyTooLarge(f"the reply is {announced:,} bytes, over the {cap:,}-byte limit")
        buf = bytearray()
        async for chunk in resp.iter_bytes():
            buf += chunk
            if len(buf) > cap:
                raise ReplyTooLarge(f"the reply is over the {cap:,}-byte limit; stopped reading it")
        return bytes(buf)


_LOOP: tuple[int, asyncio.AbstractEventLoop] | None = None
_LOOP_LOCK = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    """The process's event loop for model requests, running in a daemon thread (made at first use,
    and again in a forked child, which does not inherit the thread)."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None or _LOOP[0] != os.getpid() or _LOOP[1].is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="repoloop-llm", daemon=True).start()
            _LOOP = (os.getpid(), loop)
        return _LOOP[1]


# -- parsing what the server sent (never trusted) -----------------------------------------------------------
def parse_reply(data: bytes, content_type: str = "") -> tuple[str | None, list[ToolCall], Usage]:
    """(content, tool calls, usage) of a chat-completion body, JSON or server-sent events; a body that is
    not one raises MalformedReply saying what it is instead."""
    return parse_reply_meta(data, content_type)[:3]  # type: ignore[return-value]


def parse_reply_meta(data: bytes, content_type: str = "") -> tuple[str | None, list[ToolCall], Usage, dict[str, Any]]:
    """parse_reply, and what else the server said: `finish_reason`, and `timings` (llama.cpp's)."""
    text = data.decode("utf-8", errors="replace")
    head = text.lstrip()
    if not head:
        raise MalformedReply("an empty reply (HTTP 200 with no body)")
    if "text/event-stream" in content_type.lower() or head.startswith(("data:", "event:", ":")):
        return _parse_sse(text)
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as e:
        if head.startswith("<") or "html" in content_type.lower():
            raise MalformedReply("an HTML page instead of a chat completion (is the base URL right? it usually "
                                 f"ends in /v1): {_snippet(head, 80)}") from None
        raise MalformedReply(f"a reply that is not valid JSON ({first_line(str(e))}): {_snippet(head)}") from None
    return _parse_completion(obj)


def _parse_completion(obj: Any) -> tuple[str | None, list[ToolCall], Usage, dict[str, Any]]:
    if not isinstance(obj, dict):
        raise MalformedReply(f"{_kind(obj)} instead of a chat-completion object")
    if obj.get("error"):
        raise MalformedReply(f"an error inside a 200 reply: {_error_text(obj['error'])}")
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedReply(f"a reply with no choices (choices: {_snippet(_dump(choices))})")
    choice = choices[0]
    if not isinstance(choice, dict):
        raise MalformedReply(f"choices[0] is {_kind(choice)}, not an object")
    msg = choice.get("message")
    if not isinstance(msg, dict):
        raise MalformedReply(f"choices[0].message is {_kind(msg)}, not an object")
    content = _content(msg.get("content"), "choices[0].message.content")
    if content is None and isinstance(msg.get("refusal"), str):
        content = msg["refusal"]
    tcs = msg.get("tool_calls")
    if tcs is not None and not isinstance(tcs, list):
        raise MalformedReply(f"choices[0].message.tool_calls is {_kind(tcs)}, not a list")
    calls = []
    for i, tc in enumerate(tcs or []):
        if not isinstance(tc, dict):
            raise MalformedReply(f"tool_calls[{i}] is {_kind(tc)}, not an object")
        fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
        calls.append(ToolCall(id=_call_id(tc.get("id"), i), name=_name(fn.get("name")),
                              arguments=_arguments(fn.get("arguments"))))
    timings = _timings(obj.get("timings"))
    meta = {"finish_reason": _finish(choice.get("finish_reason")), "timings": timings}
    return content, calls, _usage(obj.get("usage"), timings), meta


def _parse_sse(text: str) -> tuple[str | None, list[ToolCall], Usage, dict[str, Any]]:
    parts: list[str] = []
    slots: dict[int, dict[str, str]] = {}
    usage = Usage()
    events = 0
    meta: dict[str, Any] = {"finish_reason": None, "timings": None}
    for data in _sse_events(text):
        if data.strip() == "[DONE]":
            break
        events += 1
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise MalformedReply(f"a streamed chunk that is not valid JSON ({first_line(str(e))}): "
                                 f"{_snippet(data)}") from None
        if not isinstance(chunk, dict):
            raise MalformedReply(f"a streamed chunk that is {_kind(chunk)}, not an object")
        if chunk.get("error"):
            raise MalformedReply(f"an error in the stream: {_error_text(chunk['error'])}")
        if chunk.get("timings") is not None:
            meta["timings"] = _timings(chunk["timings"])
        if chunk.get("usage") is not None:
            usage = _usage(chunk["usage"], meta["timings"])
        choices = chunk.get("choices")
        if choices is not None and not isinstance(choices, list):
            raise MalformedReply(f"a streamed chunk whose choices is {_kind(choices)}, not a list")
        for ch in choices or []:
            delta = ch.get("delta") if isinstance(ch, dict) else None
            if isinstance(ch, dict) and _finish(ch.get("finish_reason")):
                meta["finish_reason"] = _finish(ch.get("finish_reason"))
            if delta is None:
                continue
            if not isinstance(delta, dict):
                raise MalformedReply(f"a streamed delta that is {_kind(delta)}, not an object")
            piece = _content(delta.get("content"), "a streamed delta's content")
            if piece:
                parts.append(piece)
            tcs = delta.get("tool_calls")
            if tcs is not None and not isinstance(tcs, list):
                raise MalformedReply(f"a streamed delta whose tool_calls is {_kind(tcs)}, not a list")
            for j, tc in enumerate(tcs or []):
                if not isinstance(tc, dict):
                    raise MalformedReply(f"a streamed tool call that is {_kind(tc)}, not an object")
                idx = tc.get("index")
                idx = idx if isinstance(idx, int) and not isinstance(idx, bool) and 0 <= idx < 10_000 else j
                slot = slots.setdefault(idx, {"id": "", "name": "", "arguments": ""})
                if isinstance(tc.get("id"), str) and tc["id"]:
                    slot["id"] = tc["id"]
                fn = tc.get("function") if isinstance(tc.get("function"), dict) else {}
                if fn.get("name") is not None:
                    slot["name"] += _name(fn["name"])
                if fn.get("arguments") is not None:
                    slot["arguments"] += _arguments(fn["arguments"])
    if not events:
        raise MalformedReply("a stream with no chunks")
    calls = [ToolCall(id=_call_id(c["id"], i), name=c["name"], arguments=c["arguments"])
             for i, (_, c) in enumerate(sorted(slots.items()))]
    if meta["timings"] and not usage.cached:
        usage.cached = _count(meta["timings"].get("cache_n"))
    return ("".join(parts) or None), calls, usage, meta


def _sse_events(text: str) -> list[str]:
    """The data of each server-sent event (its `data:` lines joined); other fields are ignored."""
    out: list[str] = []
    cur: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            if cur:
                out.append("\n".join(cur))
                cur = []
        elif line.startswith("data:"):
            cur.append(line[5:].removeprefix(" "))
    if cur:
        out.append("\n".join(cur))
    return out


def _content(v: Any, where: str) -> str | None:
    """Text content: a string, null, or a list of text parts (joined); anything else is malformed."""
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, list) and all(isinstance(p, (str, dict)) for p in v):
        texts = [p if isinstance(p, str) else p.get("text") for p in v]
        return "".join(t for t in texts if isinstance(t, str))
    raise MalformedReply(f"{where} is {_kind(v)} ({_snippet(_dump(v))}), not text")


def _name(v: Any) -> str:
    if isinstance(v, str):
        return v
    return "" if v is None else _dump(v)[:200]  # not a tool name: the model is told it is unknown


def _arguments(v: Any) -> str:
    if isinstance(v, str):
        return v
    return "" if v is None else _dump(v)  # an object where a JSON string belongs


def _call_id(v: Any, i: int) -> str:
    return v if isinstance(v, str) and 0 < len(v) <= 256 else f"call_{i}"


def _usage(u: Any, timings: dict[str, float] | None = None) -> Usage:
    """Token counts; cached prompt tokens from `prompt_tokens_details.cached_tokens` (OpenAI, vLLM) or,
    where only the server's timings say it, llama.cpp's `cache_n`."""
    if not isinstance(u, dict):
        u = {}
    details = u.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    if not _count(cached) and timings:
        cached = timings.get("cache_n")
    return Usage(prompt=_count(u.get("prompt_tokens")), completion=_count(u.get("completion_tokens")),
                 cached=_count(cached))


_TIMING_KEYS = ("cache_n", "prompt_n", "prompt_ms", "prompt_per_second", "predicted_n", "predicted_ms",
                "predicted_per_second")


def _timings(t: Any) -> dict[str, float] | None:
    """llama.cpp's per-request `timings` (tokens and milliseconds), numbers only; None when absent."""
    if not isinstance(t, dict):
        return None
    out = {k: float(t[k]) for k in _TIMING_KEYS
           if isinstance(t.get(k), (int, float)) and not isinstance(t.get(k), bool) and 0 <= t[k] < 1e12}
    if "cache_n" in out:
        out["cache_n"] = int(out["cache_n"])
    return out or None


def _finish(v: Any) -> str | None:
    return v[:40] if isinstance(v, str) and v else None


def _window(e: BaseException) -> int | None:
    """The context window an error status names: llama.cpp's `n_ctx` in the error object, or the
    "maximum context length is N tokens" of OpenAI and vLLM."""
    import re

    body = getattr(e, "body", None)
    err = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(err, dict) and _count(err.get("n_ctx")) > 0:
        return _count(err.get("n_ctx"))
    m = re.search(r"maximum context length is (\d{3,9}) tokens", str(e))
    return int(m.group(1)) if m else None


def _rejects_tools(e: BaseException) -> bool:
    """An error status whose message says the server cannot take `tools` (llama.cpp without --jinja,
    Ollama for a model without tool support, an old vLLM without --enable-auto-tool-choice)."""
    if getattr(e, "status_code", None) in (None, 401, 403, 404, 408, 429):
        return False
    m = str(e).lower()
    return any(w in m for w in ("tool", "function call", "function_call", "jinja"))


def _count(v: Any) -> int:
    """A token count as the server reported it; nonsense (negative, fractional, huge, text) is 0."""
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 10**12:
        return 0
    return v


def _kind(v: Any) -> str:
    return {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


def _error_text(err: Any) -> str:
    msg = err.get("message") if isinstance(err, dict) else err
    return _snippet(msg if isinstance(msg, str) else _dump(msg), 300)


def _dump(v: Any) -> str:
    try:
        return json.dumps(v, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return "(unprintable)"


def _snippet(text: str, n: int = 120) -> str:
    t = " ".join(str(text).split())
    return repr(t if len(t) <= n else t[:n] + "...")


def first_line(text: str, n: int = 200) -> str:
    """The first line of `text`, at most `n` characters (an error message in one line)."""
    lines = str(text).strip().splitlines()
    return lines[0][:n] if lines else ""


def _describe(e: Exception) -> str:
    status = getattr(e, "status_code", None)
    name = type(e).__name__
    msg = str(e).splitlines()[0][:200] if str(e) else ""
    return f"{name} {status}: {msg}" if status else f"{name}: {msg}"
