"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 (the only fake in the agent tests).

It speaks the real protocol (JSON and server-sent-event streaming, tool calls, usage) so the agent
is driven through the real `openai` client. Each request pops the next scripted reply; every request
body and header is recorded so tests can check what the model saw. Also a pytest plugin: the
`fake_llm` fixture starts one server per test.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Reply:
    """One scripted answer: text, tool calls, or an HTTP error status - or, for hostile tests, a
    body that is not a chat completion, a server that trickles its reply, or one that hangs up."""

    content: str | None = None
    tool_calls: list[tuple[str, Any]] = field(default_factory=list)  # (name, dict args or raw str)
    status: int = 200
    message: str | None = None  # error message for a non-200 status
    prompt_tokens: int = 100
    completion_tokens: int = 20
    delay: float = 0.0
    body: Any = None  # a JSON value sent as the whole body instead of a completion (with `status`)
    raw: bytes | None = None  # these exact bytes as the body (with `status` and `content_type`)
    content_type: str = "application/json"
    trickle: float = 0.0  # seconds between single bytes of the body: a server that trickles
    trickle_headers: bool = False  # ... the status line and headers too
    drop: bool = False  # close the connection without answering
    close: bool = False  # answer, then close the connection (no keep-alive: the next request reconnects)
    finish_reason: str | None = None  # default: "tool_calls" with calls, else "stop"; "length": cut at the limit
    cached_tokens: int | None = None  # reported as usage.prompt_tokens_details.cached_tokens


def text(content: str, **kw: Any) -> Reply:
    return Reply(content=content, **kw)


def call(name: str, args: Any = None, **kw: Any) -> Reply:
    return Reply(tool_calls=[(name, {} if args is None else args)], **kw)


def calls(*pairs: tuple[str, Any], **kw: Any) -> Reply:
    return Reply(tool_calls=list(pairs), **kw)


def error(status: int = 500, message: str | None = None) -> Reply:
    return Reply(status=status, message=message)


def raw(data: bytes | str, status: int = 200, content_type: str = "application/json", **kw: Any) -> Reply:
    """Exactly these bytes as the reply body."""
    return Reply(raw=data.encode() if isinstance(data, str) else data, status=status, content_type=content_type,
                 **kw)


HTML_PAGE = ("<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>"
             "<body><h1>Welcome to nginx!</h1></body></html>\n")


def html(status: int = 200) -> Reply:
    """A web page where a chat completion should be (a wrong --base-url, a captive portal)."""
    return raw(HTML_PAGE, status=status, content_type="text/html; charset=utf-8")


def body(obj: Any, status: int = 200) -> Reply:
    """This JSON value as the whole reply body."""
    return Reply(body=obj, status=status)


def completion(message: Any, **extra: Any) -> dict:
    """A chat-completion object around `message` (any JSON value: hostile tests send null, numbers...)."""
    out = {"id": "chatcmpl-x", "object": "chat.completion", "created": int(time.time()), "model": "fake-model",
           "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}
    out.update(extra)
    return out


def sse(*events: Any, done: bool = True) -> Reply:
    """A streamed (server-sent events) body: each event a JSON value, or a str sent as is."""
    parts = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    if done:
        parts.append("data: [DONE]\n\n")
    return raw("".join(parts), content_type="text/event-stream")


def trickle(content: str = "a reply that takes its time", every: float = 0.5, **kw: Any) -> Reply:
    """A well-formed reply whose body arrives one byte every `every` seconds."""
    return Reply(content=content, trickle=every, **kw)


def drop() -> Reply:
    """The server hangs up without answering."""
    return Reply(drop=True)


ROOT = Path(__file__).resolve().parent.parent

ScriptItem = Reply | Callable[[dict], Reply]


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up (a timeout test) makes a delayed reply hit a closed socket, often
    after its test ended. socketserver would print the traceback from the handler thread, and on
    Python 3.11 formatting a traceback runs `ast.parse` (caret placement), whose module state is
    shared between threads: a concurrent `ast.parse` in the main thread (tests/test_graph_python's
    oracle) then fails with "AST constructor recursion depth mismatch". A gone client is expected."""

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - socketserver's signature
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class FakeLLM:
    """The server. `script` is consumed in order; `default` answers once it runs out."""

    def __init__(self, script: list[ScriptItem] | None = None, default: ScriptItem | None = None) -> None:
        self.script: list[ScriptItem] = list(script or [])
        self.default = default
        self.requests: list[dict] = []  # request bodies, in order (including failed ones)
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add(self, *items: ScriptItem) -> None:
        with self._lock:
            self.script.extend(items)

    # -- helpers for assertions -----------------------------------------------------------------
    def request_text(self, i: int) -> str:
        """All message contents of request i, joined (what the model saw)."""
        parts = []
        for m in self.requests[i].get("messages", []):
            c = m.get("content")
            if isinstance(c, list):
                c = " ".join(p.get("text", "") for p in c if isinstance(p, dict))
            parts.append(c or "")
        return "\n".join(parts)

    # -- protocol -------------------------------------------------------------------------------
    def _next(self, body: dict) -> Reply:
        with self._lock:
            self.requests.append(body)
            item = self.script.pop(0) if self.script else self.default
        if item is None:
            return Reply(content="(fake server: script exhausted)")
        return item(body) if callable(item) else item

    def _completion(self, reply: Reply, model: str) -> tuple[dict, list[dict]]:
        cid = f"chatcmpl-{next(self._ids)}"
        tool_calls = []
        for name, args in reply.tool_calls:
            raw = args if isinstance(args, str) else json.dumps(args)
            tool_calls.append({"id": f"call_{next(self._ids)}", "type": "function",
                               "function": {"name": name, "arguments": raw}})
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if tool_calls:
            message["tool_calls"] = tool_calls
        usage: dict[str, Any] = {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                                 "total_tokens": reply.prompt_tokens + reply.completion_tokens}
        if reply.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": reply.cached_tokens}
        finish = reply.finish_reason or ("tool_calls" if tool_calls else "stop")
        full = {"id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}
        chunks: list[dict] = []

        def chunk(delta: dict, finish_reason: str | None = None, with_usage: bool = False) -> dict:
            c = {"id": cid, "object": "chat.completion.chunk", "created": full["created"], "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            if with_usage:
                c["choices"] = []
                c["usage"] = usage
            return c

        chunks.append(chunk({"role": "assistant", "content": ""}))
        if reply.content:
            half = len(reply.content) // 2
            for piece in (reply.content[:half], reply.content[half:]):
                if piece:
                    chunks.append(chunk({"content": piece}))
        for i, tc in enumerate(tool_calls):
            raw = tc["function"]["arguments"]
            cut = len(raw) // 2
            chunks.append(chunk({"tool_calls": [{"index": i, "id": tc["id"], "type": "function",
                                                 "function": {"name": tc["function"]["name"],
                                                              "arguments": raw[:cut]}}]}))
            chunks.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": raw[cut:]}}]}))
        chunks.append(chunk({}, finish))
        chunks.append(chunk({}, with_usage=True))
        return full, chunks

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, *a: object) -> None:  # quiet
                pass

            def _send_json(self, status: int, obj: dict) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # /v1/models
                self._send_json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw_req = self.rfile.read(length)
                try:
                    req = json.loads(raw_req or b"{}")
                except json.JSONDecodeError:
                    self._send_json(400, {"error": {"message": "bad json"}})
                    return
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = fake._next(req)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if reply.raw is not None or reply.body is not None:
                    data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                    self._send(reply.status, reply.content_type, data, reply)
                    return
                if reply.status != 200:
                    err = {"error": {"message": reply.message or f"scripted {reply.status}", "type": "server_error"}}
                    self._send(reply.status, "application/json", json.dumps(err).encode(), reply)
                    return
                full, chunks = fake._completion(reply, req.get("model", "fake-model"))
                if not req.get("stream"):
                    self._send(200, "application/json", json.dumps(full).encode(), reply)
                    return
                events = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]
                if reply.trickle:
                    self._send(200, "text/event-stream", b"".join(events), reply)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for e in events:
                    self.wfile.write(e)
                self.wfile.flush()
                self.close_connection = True

            def _send(self, status: int, content_type: str, data: bytes, reply: Reply) -> None:
                """A body with its length; trickled a byte at a time when the reply says so."""
                if not reply.trickle:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    if reply.close:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    self.end_headers()
                    self.wfile.write(data)
                    return
                head = (f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n"
                        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode()
                self.close_connection = True
                if not reply.trickle_headers:
                    self.wfile.write(head)
                    self.wfile.flush()
                    head = b""
                for i in range(len(head) + len(data)):  # until the client hangs up (BrokenPipe: quiet)
                    b = head[i:i + 1] if i < len(head) else data[i - len(head):i - len(head) + 1]
                    self.wfile.write(b)
                    self.wfile.flush()
                    time.sleep(reply.trickle)

        return Handler


@pytest.fixture
def fake_llm():
    """A started FakeLLM; add replies with `fake_llm.add(...)`."""
    server = FakeLLM().start()
    try:
        yield server
    finally:
        server.stop()


# -- helpers for the agent tests: a small buggy repository and the CLI as a subprocess ----------------

FAKE_KEY = "sk-test-NEVERLOGTHISKEY-0123456789"
TEST_CMD = f"{sys.executable} -m pytest -q -p no:cacheprovider"
# The same check without pytest's start-up, for tests where verification is not the point.
QUICK_TEST_CMD = f"{sys.executable} -c 'import calc; assert calc.add(2, 3) == 5, calc.add(2, 3)'"

BUG_FILES = {
    "calc/__init__.py": 'def add(a, b):\n    """Sum of a and b."""\n    return a - b\n\n\n'
                        'def mul(a, b):\n    return a * b\n',
    "tests/test_calc.py": "from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
                          "def test_mul():\n    assert mul(2, 3) == 6\n",
    "AGENTS.md": "# Notes for agents\nKeep functions pure. AGENTS-MARKER-7731\n",
    "README.md": "calc: tiny arithmetic helpers\n",
}


def make_bug_repo(root: Path) -> Path:
    """A git repository whose test fails because add() subtracts."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in BUG_FILES.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "initial"], cwd=root, check=True)
    return root


@pytest.fixture
def bug_repo(tmp_path: Path) -> Path:
    return make_bug_repo(tmp_path / "repo")


def snapshot(repo: Path) -> dict[str, Any]:
    """What the user would notice: git status, HEAD, branches' heads aside, and every file's hash."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo,
                            capture_output=True, text=True, check=True).stdout
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout
    hashes = {}
    for p in sorted(repo.rglob("*")):
        rel = p.relative_to(repo).as_posix()
        if rel.startswith((".git/", ".repoloop/")) or rel in (".git", ".repoloop") or not p.is_file():
            continue
        hashes[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return {"status": status, "head": head, "files": hashes}


def run_repoloop(args: list[str], *, cwd: Path | None = None, input: str | None = None,
                 env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`repoloop ARGS` as a real subprocess (python -m repoloop.cli) with a fake key and quick retries."""
    full_env = dict(os.environ)
    full_env.update({"OPENAI_API_KEY": FAKE_KEY, "REPOLOOP_LLM_BACKOFF": "0.01", "PYTHONPATH": str(ROOT)})
    full_env.pop("OPENAI_BASE_URL", None)
    full_env.pop("REPOLOOP_MODEL", None)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "repoloop.cli", *args], cwd=cwd or ROOT, input=input,
                          capture_output=True, text=True, env=full_env, timeout=timeout)


def run_agent_cli(fake: FakeLLM, repo: Path, task: str = "Fix add(): test_add fails", *extra: str,
                  input: str | None = None, json_out: bool = True, test_cmd: str | None = QUICK_TEST_CMD,
                  ) -> tuple[subprocess.CompletedProcess[str], dict]:
    """`repoloop run` against the fake server in the real bwrap sandbox; returns the process and JSON.
    test_cmd None: let repoloop detect it."""
    args = ["run", task, "--repo", str(repo), "--base-url", fake.base_url, "--model", "fake-model",
            "--sandbox", "bwrap", "--lexical", *extra]
    if test_cmd is not None:
        args += ["--test-cmd", test_cmd]
    if json_out:
        args.append("--json")
    proc = run_repoloop(args, input=input if input is not None else "")
    data = json.loads(proc.stdout) if json_out and proc.stdout.strip().startswith("{") else {}
    return proc, data
