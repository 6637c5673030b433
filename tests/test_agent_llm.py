"""The OpenAI-compatible client against the scripted server: replies, streaming, retries, costs."""

from __future__ import annotations

import pytest

from repoloop.agent.llm import LLMClient, LLMConfig, LLMError, PriceTable, Usage
from repoloop.errors import RepoloopError
from tests.fake_llm import Reply, call, calls, error, text

MSGS = [{"role": "user", "content": "hi"}]


def client(fake, **kw) -> LLMClient:
    cfg = LLMConfig(model=kw.pop("model", "gpt-4o-mini"), base_url=fake.base_url, api_key="k", backoff=0.01,
                    timeout=kw.pop("timeout", 10), **kw)
    return LLMClient(cfg)


@pytest.mark.parametrize("stream", [False, True])
def test_text_and_tool_calls_round_trip(fake_llm, stream):
    fake_llm.add(text("hello there"), calls(("read_file", {"path": "a.py"}), ("list_dir", '{"path": "."}')))
    c = client(fake_llm, stream=stream)
    r1 = c.chat(MSGS)
    assert r1.content == "hello there" and r1.tool_calls == []
    assert r1.usage.prompt == 100 and r1.usage.completion == 20
    r2 = c.chat(MSGS, tools=[{"type": "function", "function": {"name": "read_file", "parameters": {}}}])
    assert [(t.name, t.arguments) for t in r2.tool_calls] == [("read_file", '{"path": "a.py"}'),
                                                              ("list_dir", '{"path": "."}')]
    assert all(t.id for t in r2.tool_calls)
    assert fake_llm.requests[1]["tools"][0]["function"]["name"] == "read_file"
    assert bool(fake_llm.requests[0].get("stream")) is stream
    # The assistant message echoes the calls back for the next request.
    assert r2.message()["tool_calls"][1]["function"]["arguments"] == '{"path": "."}'


def test_retries_on_429_and_5xx_then_succeeds(fake_llm):
    fake_llm.add(error(429), error(502), error(500), text("ok"))
    r = client(fake_llm, max_retries=4).chat(MSGS)
    assert r.content == "ok" and r.attempts == 4
    assert len(r.errors) == 3 and "429" in r.errors[0] and "502" in r.errors[1]


def test_timeouts_are_retried(fake_llm):
    # a deadline the fast reply meets even on a busy machine, far below the slow reply's delay (at
    # 0.5 s vs 1.5 s the fast reply's own attempt could time out under load, and the queue ran dry)
    fake_llm.add(Reply(content="slow", delay=20), text("fast"))
    r = client(fake_llm, timeout=4).chat(MSGS)
    assert r.content == "fast" and r.attempts == 2 and "Timeout" in r.errors[0]


def test_gives_up_after_max_retries_and_does_not_retry_4xx(fake_llm):
    fake_llm.default = error(503)
    with pytest.raises(LLMError, match="after 3 attempts"):
        client(fake_llm, max_retries=2).chat(MSGS)
    assert len(fake_llm.requests) == 3
    fake_llm.default = None
    fake_llm.add(error(400), text("never"))
    with pytest.raises(LLMError, match="refused"):
        client(fake_llm).chat(MSGS)
    assert len(fake_llm.requests) == 4


def test_cost_per_request_and_unknown_models(fake_llm):
    fake_llm.add(Reply(content="x", prompt_tokens=1_000_000, completion_tokens=500_000), call("finish"))
    known = client(fake_llm, model="gpt-4o-mini").chat(MSGS)
    assert known.cost == pytest.approx(0.15 + 0.30)
    unknown = client(fake_llm, model="my-local-llama").chat(MSGS)
    assert unknown.cost is None


def test_price_table_overrides_and_prefixes(tmp_path):
    t = PriceTable.load('{"mine": {"input": 2, "output": 4, "cached_input": 1}}')
    assert t.cost("mine", Usage(prompt=1_000_000, completion=1_000_000, cached=500_000)) == pytest.approx(0.5 * 2 + 0.5 + 4)
    assert t.lookup("gpt-4o-2024-08-06") == t.lookup("gpt-4o")
    assert t.lookup("openai/gpt-4.1-mini") == t.lookup("gpt-4.1-mini")
    f = tmp_path / "prices.json"
    f.write_text('{"x": {"input": 1, "output": 1}}')
    assert PriceTable.load(str(f)).lookup("x") == (1.0, 1.0, None)
    with pytest.raises(RepoloopError, match="bad price table"):
        PriceTable.load('{"x": {"input": "cheap"}}')


def test_api_key_is_sent_as_bearer(fake_llm):
    fake_llm.add(text("ok"))
    client(fake_llm).chat(MSGS)
    assert fake_llm.headers[0]["authorization"] == "Bearer k"
