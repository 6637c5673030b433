"""Issue 14 replayed: hostile queries against the real CLI, the real MCP server over stdio, the
retriever's host and the agent's retrieval, on a sample repository indexed by `repoloop index
--no-embed`.

Each attack test failed before the fix (0d76bd6): query analysis was cubic in the query's length (a
long query hung search, 1 MB never ended), one slow call held the MCP server's only retriever thread
for every client, and a stdio server outlived its client while a call ran. Slow calls here are real:
long queries, and an OpenAI-compatible embeddings endpoint on 127.0.0.1 that stops answering on
demand (the query-time re-rank of `serve --rerank` embeds through it). Bounds are generous upper
limits for a busy 2-core machine; what they separate is seconds from minutes or never.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil
import pytest
from mcp import Client, StdioServerParameters

from tests.fixtures_service import child_env, poll, repoloop_cmd, write_sample

MB = 1_000_000
PATHY = "a/b.c-d@e+f\\"  # path characters: the old file:line pattern backtracked over runs of these


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample repository, indexed by the CLI without embeddings."""
    r = write_sample(tmp_path_factory.mktemp("hostile") / "repo")
    out = subprocess.run([*repoloop_cmd(), "index", "--no-embed", str(r)], capture_output=True, text=True,
                         timeout=180, env=_env())
    assert out.returncode == 0, out.stderr
    return r


def _env(**extra: str) -> dict[str, str]:
    env = child_env()
    env.pop("REPOLOOP_VECTOR_CACHE", None)  # the re-rank's vectors stay beside the test's index
    env.update(extra)
    return env


def _vec(text: str, dim: int = 32) -> list[float]:
    v = [0.0] * dim
    for w in re.findall(r"[a-z]+", text.lower()):
        v[int(hashlib.md5(w.encode()).hexdigest(), 16) % dim] += 1.0
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


class Endpoint:
    """An OpenAI-compatible /v1/embeddings server on 127.0.0.1 (hashed bag-of-words vectors) whose
    answers can be held back: `stall()` makes every request wait until `answer()`."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.requests = 0
        gate, outer = self.gate, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests += 1
                gate.wait(120)
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                raw = json.dumps({"object": "list", "model": body["model"],
                                  "usage": {"prompt_tokens": 1, "total_tokens": 1},
                                  "data": [{"object": "embedding", "index": i, "embedding": _vec(t)}
                                           for i, t in enumerate(inputs)]}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:  # the server that asked is gone
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def stall(self) -> None:
        self.gate.clear()

    def answer(self) -> None:
        self.gate.set()

    def close(self) -> None:
        self.gate.set()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture()
def endpoint() -> Iterator[Endpoint]:
    ep = Endpoint()
    try:
        yield ep
    finally:
        ep.close()


def _serve_args(repo: Path, *extra: str) -> list[str]:
    return [*repoloop_cmd(), "serve", "--repo", str(repo), *extra]


def _rerank_env(ep: Endpoint) -> dict[str, str]:
    """`serve --rerank` on the --no-embed index embeds at query time, through `ep`."""
    return _env(REPOLOOP_EMBED_BASE_URL=ep.url, OPENAI_API_KEY="none")


class Wire:
    """A raw MCP client over a server's stdin/stdout pipes (JSON-RPC lines), for what the SDK
    client cannot do: leave a call running, close stdin under it, die without closing."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.next_id = 0
        self.answers: dict[int, dict] = {}

    def send(self, obj: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def start(self, method: str, params: dict | None = None) -> int:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params or {}})
        return self.next_id

    def wait(self, rid: int, timeout: float = 60.0) -> dict:
        assert self.proc.stdout is not None
        end = time.monotonic() + timeout
        while rid not in self.answers:
            ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, end - time.monotonic()))
            if not ready:
                raise AssertionError(f"no answer to request {rid} within {timeout} s")
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"the server closed its stdout (exit {self.proc.poll()})")
            msg = json.loads(line)
            if "id" in msg and ("result" in msg or "error" in msg):
                self.answers[msg["id"]] = msg
        return self.answers.pop(rid)

    def request(self, method: str, params: dict | None = None, timeout: float = 60.0) -> dict:
        return self.wait(self.start(method, params), timeout)

    def handshake(self) -> None:
        got = self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                          "clientInfo": {"name": "hostile", "version": "0"}}, timeout=120)
        assert "result" in got, got
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def search(self, query: str, timeout: float = 60.0) -> dict:
        return self.request("tools/call", {"name": "search_code", "arguments": {"query": query, "k": 3}}, timeout)


def _text(result: Any) -> str:
    if isinstance(result, dict):  # a raw JSON-RPC result
        return "\n".join(c.get("text", "") for c in result.get("content", []))
    return "\n".join(getattr(c, "text", "") for c in result.content)


def _gone(pid: int) -> bool:
    """Whether a process has exited (a zombie nobody reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def _stdio_server(repo: Path, *extra: str, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, Wire]]:
    proc = subprocess.Popen(_serve_args(repo, *extra), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=str(repo))
    try:
        wire = Wire(proc)
        wire.handshake()
        yield proc, wire
    finally:
        _kill(proc.pid)
        proc.wait(30)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f is not None:
                f.close()


def _cli(*args: str, timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([*repoloop_cmd(), *args], capture_output=True, text=True, timeout=timeout, env=_env())
    except subprocess.TimeoutExpired:
        pytest.fail(f"`repoloop {args[0]}` did not answer within {timeout} s")


# -- query analysis ---------------------------------------------------------------------------
ANALYSIS = r"""
import json, sys, time
from repoloop.indexer.lexical_tokens import code_tokens
from repoloop.retrieval import query as q

shapes = {"path characters": %(pathy)r, "a": "a", "a.": "a.", "/": "/", "x:": "x:", "digits": "1",
          "a.py:": "a.py:", "a.py-": "a.py-", "JS at": "at a(", "Rust frame": "0: a\n", "Go call": "f(",
          "blank lines": "\n", "backticks": "`a", "C:": "C:"}
out = {}
for name, unit in shapes.items():
    text = (unit * (%(n)d // len(unit) + 1))[:%(n)d]
    t = time.perf_counter()
    q.analyze(text)
    code_tokens(text, stop=True)
    # the scanners themselves, on all of it (analyze reads a bounded prefix)
    q._frames(text), list(q._file_lines(text)), list(q._bare_paths(text))
    out[name] = time.perf_counter() - t
    print(json.dumps({name: out[name]}), flush=True)
"""


@pytest.mark.hostile("5a: 1 MB pathological texts through query analysis")
@pytest.mark.timeout(300)
def test_query_analysis_of_a_megabyte_is_linear() -> None:
    """Each shape of 1 MB (runs of path characters, 'a'*N, 'a.'*N, '/'*N, 'x:'*N, digits, frames,
    ...) is analysed, tokenised and scanned in seconds; before, the first one never ended."""
    code = ANALYSIS % {"pathy": PATHY, "n": MB}
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=200, env=_env())
    except subprocess.TimeoutExpired as e:
        done = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"analysis of 1 MB did not end within 200 s; finished: {done.strip() or 'none'}")
    assert out.returncode == 0, out.stderr[-2000:]
    times = {k: v for line in out.stdout.splitlines() for k, v in json.loads(line).items()}
    assert len(times) == 14
    slow = {k: round(v, 2) for k, v in times.items() if v > 20}
    assert not slow, f"over 20 s for 1 MB (linear is ~1 s): {slow}"


def test_analysis_of_a_long_text_reads_a_bounded_prefix() -> None:
    from repoloop.retrieval.limits import MAX_QUERY_CHARS
    from repoloop.retrieval.query import analyze

    head = "fix parse_config in pkg/config.py:12\n"
    qa = analyze(head + "x " * MB + " tail_identifier")
    assert qa.locations == [("pkg/config.py", 12)] and "parse_config" in qa.identifiers
    assert "tail_identifier" not in qa.identifiers and len(qa.text) <= MAX_QUERY_CHARS


# -- the CLI ----------------------------------------------------------------------------------------
@pytest.mark.hostile("5b: 100k-character query to `repoloop search`")
@pytest.mark.timeout(120)
def test_cli_search_refuses_an_overlong_query_naming_the_limit(repo: Path) -> None:
    """100k characters (the most one argv string may hold is 128 KiB): a clear error, exit 2."""
    query = (PATHY * (100_000 // len(PATHY) + 1))[:100_000]
    out = _cli("search", query, "--repo", str(repo), timeout=60)
    from repoloop.retrieval.limits import MAX_QUERY_CHARS

    assert out.returncode == 2, (out.returncode, out.stderr[-500:])
    assert "100,000 characters" in out.stderr and f"{MAX_QUERY_CHARS:,}" in out.stderr, out.stderr
    assert len(out.stderr) < 1000 and "Traceback" not in out.stderr  # one line, not the query echoed back
    assert out.stdout == ""


@pytest.mark.hostile("5c: 5,000 characters of 'a' plus a name, under the cap, to `repoloop search`")
@pytest.mark.timeout(120)
def test_cli_search_of_a_long_pathological_query_under_the_cap_answers(repo: Path) -> None:
    """Before: the file:line pattern took minutes on 5,000 'a's (1,000 took 2 s, cubic)."""
    out = _cli("search", "parse_config " + "a" * 5000, "--repo", str(repo), "--json", "-k", "3", timeout=60)
    assert out.returncode == 0, out.stderr[-500:]
    hits = json.loads(out.stdout)["results"]
    assert hits and hits[0]["path"] == "pkg/config.py", hits


@pytest.mark.hostile("5d: 100k-character task to `repoloop context`")
@pytest.mark.timeout(120)
def test_cli_context_of_an_overlong_task_packs_its_first_part(repo: Path) -> None:
    task = "the configuration parser parse_config fails\n" + (PATHY * 9000)[:100_000]
    out = _cli("context", task, "--repo", str(repo), "--budget", "500", "--json", timeout=60)
    assert out.returncode == 0, out.stderr[-500:]
    pack = json.loads(out.stdout)
    assert 0 < pack["tokens"] <= 500
    assert any(i["path"] == "pkg/config.py" and i["kind"] == "code" for i in pack["items"]), pack["items"]


# -- the MCP server ---------------------------------------------------------------------------------
def _sdk_params(repo: Path, *extra: str, env: dict[str, str] | None = None) -> StdioServerParameters:
    args = _serve_args(repo, *extra)
    return StdioServerParameters(command=args[0], args=args[1:], env=env or _env(), cwd=str(repo))


@pytest.mark.hostile("5e: 1 MB query to MCP search_code")
@pytest.mark.timeout(180)
def test_mcp_search_of_a_megabyte_is_a_tool_error_and_the_server_keeps_serving(repo: Path) -> None:
    async def main() -> None:
        async with Client(_sdk_params(repo, "--lexical"), read_timeout_seconds=60) as client:
            t0 = time.monotonic()
            res = await asyncio.wait_for(client.call_tool("search_code", {"query": (PATHY * 90_000)[:MB]}), 90)
            took = time.monotonic() - t0
            from repoloop.retrieval.limits import MAX_QUERY_CHARS

            assert res.is_error, _text(res)[:300]
            assert f"{MAX_QUERY_CHARS:,}" in _text(res) and "1,000,000 characters" in _text(res), _text(res)
            assert len(_text(res)) < 1000 and took < 30, took
            ok = await asyncio.wait_for(client.call_tool("search_code", {"query": "slugify", "k": 3}), 30)
            assert not ok.is_error and "pkg/util/strings.py" in _text(ok)

    asyncio.run(main())


@pytest.mark.hostile("5f: 1 MB task to MCP get_context")
@pytest.mark.timeout(180)
def test_mcp_context_of_a_megabyte_packs_its_first_part(repo: Path) -> None:
    async def main() -> None:
        async with Client(_sdk_params(repo, "--lexical"), read_timeout_seconds=60) as client:
            task = "how does parse_config read the configuration?\n" + (PATHY * 90_000)[:MB]
            res = await asyncio.wait_for(client.call_tool("get_context", {"task": task, "budget": 500}), 90)
            assert not res.is_error, _text(res)[:300]
            data = res.structured_content
            assert data is not None and 0 < data["tokens"] <= 500
            assert any(i["path"] == "pkg/config.py" for i in data["items"]), data["items"]

    asyncio.run(main())


@pytest.mark.hostile("5g: a long call holds the retriever thread; the deadline stops it")
@pytest.mark.timeout(120)
def test_a_call_past_its_deadline_stops_itself_and_the_next_one_answers(repo: Path) -> None:
    """The host's one retriever thread runs a call that would never end (real searches, one after
    another): it stops at its deadline, from inside the ranking, and frees the thread."""
    from repoloop.retrieval.api import RetrievalOptions, Retriever
    from repoloop.retrieval.retriever import open_retriever
    from repoloop.service.host import RetrieverHost

    host = RetrieverHost(lambda: open_retriever(repo, options=RetrievalOptions(lexical_only=True)))
    host.start()
    rounds = {"n": 0}

    def endless(r: Retriever) -> None:
        while True:
            r.search("parse the configuration settings and start the server", 5)
            rounds["n"] += 1

    async def main() -> tuple[BaseException | None, float, list[str], float]:
        # Warm first (the retriever opens lazily): on a busy machine the first search alone can take
        # longer than the deadline, and the endless call must be seen running before it is stopped.
        await asyncio.wait_for(host.call(lambda r: r.search("configuration", 3), timeout=60), 120)
        t0 = time.monotonic()
        try:
            await host.call(endless, timeout=2)
            err = None
        except Exception as e:  # noqa: BLE001 - checked below
            err = e
        stopped = time.monotonic() - t0
        t1 = time.monotonic()
        hits = await asyncio.wait_for(host.call(lambda r: [h.path for h in r.search("slugify", 3)], timeout=5), 30)
        return err, stopped, hits, time.monotonic() - t1

    try:
        err, stopped, hits, next_took = asyncio.run(main())
    finally:
        host.close()
    from repoloop.retrieval.limits import QueryTimeoutError

    assert isinstance(err, QueryTimeoutError) and "2 s per-query deadline" in str(err), err
    assert rounds["n"] >= 1  # it really ran, then stopped
    assert stopped < 10, stopped
    assert hits and hits[0] == "pkg/util/strings.py" and next_took < 10, (hits, next_took)


@pytest.mark.hostile("5h: an embeddings endpoint that stops answering holds an MCP call past its deadline")
@pytest.mark.timeout(300)
def test_mcp_call_past_the_deadline_is_a_tool_error_and_the_next_call_answers(repo: Path, endpoint: Endpoint) -> None:
    """`serve --rerank --query-timeout 5` embeds at query time; the endpoint stalls mid-call. The
    caller gets a tool error naming the deadline within seconds, and once the endpoint answers
    again the next call is answered at once (the stuck call stopped itself)."""
    async def main() -> None:
        params = _sdk_params(repo, "--rerank", "--query-timeout", "5", env=_rerank_env(endpoint))
        async with Client(params, read_timeout_seconds=120) as client:
            for _ in range(5):  # the first call imports the endpoint's client and embeds every chunk
                warm = await asyncio.wait_for(client.call_tool("search_code", {"query": "parse_config", "k": 3}), 120)
                if not warm.is_error:
                    break
                assert "deadline" in _text(warm), _text(warm)[:300]
            assert not warm.is_error, _text(warm)[:300]
            endpoint.stall()
            t0 = time.monotonic()
            res = await asyncio.wait_for(client.call_tool("search_code", {"query": "read the settings file", "k": 3}), 60)
            took = time.monotonic() - t0
            assert res.is_error and "5 s per-query deadline" in _text(res), _text(res)[:300]
            assert 4 < took < 40, took
            endpoint.answer()
            t1 = time.monotonic()
            ok = await asyncio.wait_for(client.call_tool("search_code", {"query": "slugify text", "k": 3}), 60)
            assert not ok.is_error and "pkg/util/strings.py" in _text(ok), _text(ok)[:300]
            assert time.monotonic() - t1 < 20

    asyncio.run(main())


def _stalled_call_running(wire: Wire, endpoint: Endpoint) -> None:
    """Leave a search_code running on the server, stuck in the stalled endpoint: warm first, then
    stall, send the search and a ping; the ping's answer shows the search was read and dispatched."""
    warm = wire.search("parse_config", timeout=120)
    assert not warm["result"].get("isError"), warm
    endpoint.stall()
    seen = endpoint.requests
    wire.start("tools/call", {"name": "search_code", "arguments": {"query": "read the settings file", "k": 3}})
    assert "result" in wire.request("ping", timeout=30)
    poll(lambda: endpoint.requests > seen, timeout=30, what="the search waiting on the endpoint")


@pytest.mark.hostile("5i: the client closes stdin while its call runs")
@pytest.mark.timeout(240)
def test_stdio_server_exits_at_stdin_eof_while_a_call_runs(repo: Path, endpoint: Endpoint) -> None:
    with _stdio_server(repo, "--rerank", env=_rerank_env(endpoint)) as (proc, wire):
        _stalled_call_running(wire, endpoint)
        assert proc.stdin is not None
        proc.stdin.close()
        poll(lambda: proc.poll() is not None, timeout=25, what="the server's exit after stdin closed")
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read().decode(errors="replace")


CLIENT = r"""
import subprocess, sys, time
sys.path.insert(0, %(root)r)
from tests.test_hostile_query import Wire
server = subprocess.Popen(%(args)r, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          env=%(env)r, cwd=%(cwd)r)
# another process holds the server's stdin open: killing this client does not close it
holder = subprocess.Popen(["sleep", "600"], pass_fds=[server.stdin.fileno()])
wire = Wire(server)
wire.handshake()
print(server.pid, holder.pid, flush=True)
sys.stdin.readline()  # the test is ready to stall the endpoint
warm = wire.search("parse_config", timeout=120)
assert not warm["result"].get("isError"), warm
print("warm", flush=True)
sys.stdin.readline()  # stalled
wire.start("tools/call", {"name": "search_code", "arguments": {"query": "read the settings file", "k": 3}})
assert "result" in wire.request("ping", timeout=30)
print("running", flush=True)
time.sleep(600)
"""


@pytest.mark.hostile("5j: the client dies while its call runs; its stdin stays open elsewhere")
@pytest.mark.timeout(240)
def test_stdio_server_exits_when_its_client_dies_while_a_call_runs(repo: Path, endpoint: Endpoint) -> None:
    """The orphan of the review: the client (the server's parent) is killed, a process it started
    still holds the server's stdin, so no EOF comes; the server sees its parent gone and exits."""
    code = CLIENT % {"root": str(Path(__file__).resolve().parents[1]), "args": _serve_args(repo, "--rerank"),
                     "env": _rerank_env(endpoint), "cwd": str(repo)}
    client = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_env())
    server_pid = holder_pid = 0
    try:
        assert client.stdin is not None and client.stdout is not None
        first = _read_line(client, 120)
        server_pid, holder_pid = map(int, first.split())
        client.stdin.write("go\n")
        client.stdin.flush()
        assert _read_line(client, 120) == "warm"
        seen = endpoint.requests
        endpoint.stall()
        client.stdin.write("go\n")
        client.stdin.flush()
        assert _read_line(client, 60) == "running"
        poll(lambda: endpoint.requests > seen, timeout=30, what="the search waiting on the endpoint")
        client.kill()
        client.wait(30)
        poll(lambda: _gone(server_pid), timeout=25, what="the orphaned server's exit")
    finally:
        client.kill()
        for pid in (server_pid, holder_pid):
            if pid:
                _kill(pid)
        client.wait(30)


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line:
        err = proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        raise AssertionError(f"the client said nothing within {timeout} s (exit {proc.poll()}): {err[-2000:]}")
    return line.strip()


# -- the agent --------------------------------------------------------------------------------------
AGENT = r"""
import json, sys
from pathlib import Path
from repoloop.agent.observe import Observer
from repoloop.agent.tools import Toolbox
from repoloop.retrieval.api import RetrievalOptions

junk = (%(pathy)r * 90_000)[:1_000_000]
obs = Observer.open(Path(%(repo)r), None, options=RetrievalOptions(), lexical_only=True, build=False,
                    rerank=False)
task = "parse_config cannot read the configuration file\n" + junk
text, items = obs.context(task, 2000)
found = obs.search(junk, 5)


class NoCommands:
    def run(self, *a, **k):
        raise AssertionError("search_code runs no command")


tool = Toolbox(Path(%(repo)r), NoCommands(), search=obs).call("search_code", json.dumps({"query": junk}))
print(json.dumps({"items": items, "search": found, "notes": obs.notes, "tool_chars": len(tool.output)}))
"""


@pytest.mark.hostile("5k: 1 MB task text and search_code query through the agent's retrieval")
@pytest.mark.timeout(240)
def test_agent_task_text_and_search_of_a_megabyte_answer(repo: Path) -> None:
    """The agent is unchanged: its task text is packed from its first part, its search of 1 MB is
    refused by the retriever (a note names the limit) and its search_code tool still answers."""
    code = AGENT % {"repo": str(repo), "pathy": PATHY}
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=_env())
    except subprocess.TimeoutExpired:
        pytest.fail("the agent's retrieval of a 1 MB task did not answer within 180 s")
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.splitlines()[-1])
    assert any(i["path"] == "pkg/config.py" for i in got["items"]), got["items"]
    assert got["search"] is None
    assert any("characters" in n and "limit" in n for n in got["notes"]), got["notes"]
    assert 0 < got["tool_chars"] < 100_000
