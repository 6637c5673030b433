"""`repoloop serve`: the real server as a subprocess, driven by the official `mcp` client library
over stdio and over streamable HTTP on 127.0.0.1, against a really indexed sample repository."""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from tests.fixtures_service import (
    child_env,
    free_port,
    index,
    repoloop_cmd,
    stop,
    wait_for_port,
    write_sample,
)

TOOLS = {"search_code", "get_symbol", "get_context", "repo_map", "outline"}


@pytest.fixture(scope="module")
def indexed_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mcp")
    repo = write_sample(root / "repo")
    (root / "outside.py").write_text("def secret_outside():\n    return 42\n")
    index(repo)
    return repo


def _stdio(repo: Path, *extra: str) -> StdioServerParameters:
    cmd = repoloop_cmd()
    return StdioServerParameters(command=cmd[0], args=[*cmd[1:], "serve", "--repo", str(repo), "--lexical", *extra],
                                 env=child_env(), cwd=str(repo))


def _payload(result: Any) -> Any:
    """A tool result's data: the structured content, or the text parsed as JSON when it is JSON."""
    assert not result.is_error, _text(result)
    if result.structured_content is not None:
        sc = result.structured_content
        return sc["result"] if set(sc) == {"result"} else sc
    text = _text(result)
    try:
        return json.loads(text)
    except ValueError:
        return text


def _text(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


async def _exercise(client: Client, repo: Path) -> None:
    """Everything a client sees: the tools with schemas, each tool answering, bad arguments as
    tool errors with the server still serving afterwards."""
    listed = {t.name: t for t in (await client.list_tools()).tools}
    assert set(listed) == TOOLS
    for t in listed.values():
        assert t.description, t.name
        assert t.input_schema["type"] == "object"
    search = listed["search_code"].input_schema
    assert search["required"] == ["query"]
    assert search["properties"]["query"]["type"] == "string"
    assert search["properties"]["k"]["type"] == "integer"
    assert listed["get_symbol"].input_schema["required"] == ["name"]
    assert listed["outline"].input_schema["required"] == ["path"]
    assert listed["get_context"].input_schema["properties"]["budget"]["type"] == "integer"
    assert listed["repo_map"].input_schema["properties"]["focus"]["type"] == "array"

    for name in ("search_code", "get_symbol", "get_context", "outline"):  # typed results
        assert listed[name].output_schema is not None and listed[name].output_schema["type"] == "object", name
    assert "results" in listed["search_code"].output_schema["properties"]

    # each tool answers on the indexed sample
    raw = await client.call_tool("search_code", {"query": "parse JSON configuration document", "k": 5})
    text = _text(raw)  # what a model reads: locations and code in fences, not escaped JSON
    assert text.startswith("1. pkg/config.py:") and "\n```\ndef parse_config(text: str) -> dict:" in text, text
    found = _payload(raw)
    assert 1 <= len(found["results"]) <= 5
    assert found["results"][0]["path"] == "pkg/config.py", found
    hit = found["results"][0]
    assert {"path", "start_line", "end_line", "symbol", "kind", "score", "text"} <= set(hit)
    assert 1 <= hit["start_line"] <= hit["end_line"]

    raw = await client.call_tool("get_symbol", {"name": "parse_config"})
    assert "pkg/config.py:" in _text(raw) and "def parse_config(text: str) -> dict" in _text(raw)
    sym = _payload(raw)
    d = sym["definitions"][0]
    assert d["path"] == "pkg/config.py"
    assert d["kind"] == "function"
    assert d["qualname"].endswith("parse_config")
    lines = (repo / "pkg/config.py").read_text().splitlines()
    assert lines[d["start_line"] - 1].startswith("def parse_config")

    ctx = _payload(await client.call_tool("get_context", {"task": "how is the configuration file parsed at start?", "budget": 400}))
    assert ctx["budget"] == 400
    assert 0 < ctx["tokens"] <= 400
    assert ctx["items"], ctx
    assert any(i["path"] == "pkg/config.py" for i in ctx["items"])

    rmap = _payload(await client.call_tool("repo_map", {"budget": 300}))
    assert isinstance(rmap, str) and "pkg/config.py" in rmap

    out = _payload(await client.call_tool("outline", {"path": "pkg/config.py"}))
    assert out["path"] == "pkg/config.py"
    names = [s["name"] for s in out["symbols"]]
    assert names.index("ConfigError") < names.index("parse_config") < names.index("Settings")
    assert "Settings.timeout" in names

    # bad arguments: tool errors (isError), never a crash
    bad = [
        ("search_code", {"query": "config", "k": "many"}, "k"),  # wrong type
        ("search_code", {"k": 3}, "query"),  # missing
        ("search_code", {"query": "config", "k": 0}, "k"),  # out of range
        ("get_symbol", {"name": "no_such_symbol_anywhere"}, "no_such_symbol_anywhere"),  # unknown symbol
        ("outline", {"path": "../outside.py"}, "outside the repository"),  # path outside repo
        ("outline", {"path": "/etc/passwd"}, "outside the repository"),
        ("outline", {"path": "pkg/missing.py"}, "no such file"),
        ("get_context", {"task": "x", "budget": "big"}, "budget"),
        ("no_such_tool", {"x": 1}, "no_such_tool"),  # unknown tool
    ]
    for name, args, needle in bad:
        res = await client.call_tool(name, args)
        assert res.is_error, (name, args, _text(res))
        assert needle in _text(res), (name, args, _text(res))
        # ... and the server keeps serving
        again = _payload(await client.call_tool("get_symbol", {"name": "slugify"}))
        assert again["definitions"][0]["path"] == "pkg/util/strings.py"


def test_stdio_tools_answer_and_bad_arguments_are_tool_errors(indexed_repo: Path) -> None:
    async def main() -> None:
        async with Client(_stdio(indexed_repo), read_timeout_seconds=60) as client:
            await _exercise(client, indexed_repo)

    asyncio.run(main())


def test_http_tools_answer_and_bad_arguments_are_tool_errors(indexed_repo: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([*repoloop_cmd(), "serve", "--repo", str(indexed_repo), "--lexical", "--http", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
    try:
        wait_for_port(port, proc)

        async def main() -> None:
            async with Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=60) as client:
                await _exercise(client, indexed_repo)
            # a second client, after the first left: the server is still there
            async with Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=60) as client:
                res = await client.call_tool("search_code", {"query": "slugify", "k": 3})
                assert not res.is_error and "pkg/util/strings.py" in _text(res)

        asyncio.run(main())
        # DNS-rebinding protection: a request naming another host is refused
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", "/mcp", body=b"{}", headers={"Host": "evil.example", "Content-Type": "application/json",
                                                         "Accept": "application/json, text/event-stream"})
        assert 400 <= conn.getresponse().status < 500
        conn.close()
        assert proc.poll() is None
    finally:
        stop(proc)
    assert proc.stdout is not None and proc.stdout.read() == ""  # nothing but logs, on stderr


def test_stdio_hybrid_with_the_embedding_model(tmp_path: Path) -> None:
    """Without --lexical, on an index with embeddings: the model loads in the server's retriever
    thread, and a query phrased in other words than the code finds the right file."""
    from repoloop.indexer.pipeline import index_repo

    repo = write_sample(tmp_path / "repo")
    report = index_repo(repo, embed=True, progress=False, jobs=1)
    assert report.embedded, report

    async def main() -> None:
        cmd = repoloop_cmd()
        params = StdioServerParameters(command=cmd[0], args=[*cmd[1:], "serve", "--repo", str(repo)],
                                       env=child_env(), cwd=str(repo))
        async with Client(params, read_timeout_seconds=120) as client:
            res = _payload(await client.call_tool("search_code", {"query": "make a URL slug out of a title", "k": 3}))
            assert res["results"][0]["path"] == "pkg/util/strings.py", res
            for _ in range(3):  # warm: repeated calls keep answering
                again = _payload(await client.call_tool("search_code", {"query": "read settings from a file", "k": 3}))
                assert again["results"]

    asyncio.run(main())


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*repoloop_cmd(), *args], capture_output=True, text=True, timeout=120,
                          env=child_env(), cwd=cwd)


def test_serve_usage_errors_are_one_line_exit_2(indexed_repo: Path, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = busy.getsockname()[1]
        cases = [
            ("serve", "--repo", str(indexed_repo), "--http", "70000"),
            ("serve", "--repo", str(indexed_repo), "--http", str(taken)),
            ("serve", "--repo", str(tmp_path / "nope")),
            ("serve", "--repo", str(indexed_repo), "--http", "x"),
            ("watch", "--repo", str(indexed_repo), "--debounce", "-1"),
        ]
        for args in cases:
            r = _run(*args)
            assert r.returncode == 2, (args, r.stderr)
            assert len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
            assert "Traceback" not in r.stderr
            assert r.stdout == ""


def test_serve_without_an_index_says_so(tmp_path: Path) -> None:
    repo = write_sample(tmp_path / "fresh")
    r = _run("serve", "--repo", str(repo), "--lexical", "--http", "0")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "index" in r.stderr.lower()


def test_serve_watch_sees_fresh_index(tmp_path: Path) -> None:
    """serve --watch: an edit on disk shows in search_code answers of the running server."""
    repo = write_sample(tmp_path / "repo")
    shutil.rmtree(repo / "pkg" / "util")  # index nothing yet: serve --watch catches up on start

    async def main() -> None:
        params = _stdio(repo, "--watch", "--no-embed", "--debounce", "0.2")
        async with Client(params, read_timeout_seconds=60) as client:
            first = _payload(await client.call_tool("get_symbol", {"name": "start_server"}))
            assert first["definitions"][0]["path"] == "pkg/server.py"

            (repo / "pkg" / "billing.py").write_text(
                "def compute_invoice_total(lines):\n    \"\"\"Sum invoice lines.\"\"\"\n    return sum(lines)\n")

            async def seen() -> bool:
                res = await client.call_tool("search_code", {"query": "compute_invoice_total", "k": 3})
                return not res.is_error and any(
                    h["path"] == "pkg/billing.py" for h in _payload(res)["results"])

            await _poll_async(seen, what="new file visible through MCP")
            (repo / "pkg" / "billing.py").unlink()

            async def gone() -> bool:
                res = await client.call_tool("get_symbol", {"name": "compute_invoice_total"})
                return res.is_error

            await _poll_async(gone, what="deleted file gone from the server's answers")

        # changed while nobody watched: a new serve --watch answers at once and catches up behind
        (repo / "pkg" / "late.py").write_text("def written_while_offline():\n    return 2\n")
        async with Client(params, read_timeout_seconds=60) as client:
            async def caught_up() -> bool:
                res = await client.call_tool("get_symbol", {"name": "written_while_offline"})
                return not res.is_error and _payload(res)["definitions"][0]["path"] == "pkg/late.py"

            await _poll_async(caught_up, what="offline change caught up")

    asyncio.run(main())


async def _poll_async(check: Any, *, timeout: float = 120.0, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")

