"""The MCP server: the index's retrieval tools for editors and other agents.

Built on the official `mcp` SDK (2.x, `MCPServer`), over stdio or streamable HTTP on 127.0.0.1.
One Retriever is opened at start and kept warm (model, graph, caches) by a `RetrieverHost`, so a
query costs milliseconds, not a process start. Bad arguments and failed look-ups come back as tool
errors (`isError` results) and the server keeps serving.

Every client shares the Retriever's one thread, so each tool call runs under a deadline
(`--query-timeout`): past it the call stops and answers a tool error, and the next call runs. Over
stdio the server exits when its client goes (stdin closes, or the process that started it dies),
also while a call is running; a thread that cannot be stopped does not keep it alive (issue 14).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import (
    Annotated,
    Any,
    NotRequired,  # pydantic needs this one before Python 3.12
)

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic import Field
from typing_extensions import TypedDict

from repoloop.errors import RepoloopError
from repoloop.retrieval import ContextItem, RetrievalOptions
from repoloop.retrieval.graph import NEIGHBOURS, neighbour_lines
from repoloop.retrieval.limits import DEFAULT_QUERY_TIMEOUT_S
from repoloop.service.host import RetrieverHost

log = logging.getLogger(__name__)

PARENT_POLL_S = 0.5  # how often a stdio server looks whether its client (its parent) still lives
STOP_TIMEOUT_S = 5.0  # at exit, how long the retriever thread gets to stop (a running call stops in ms)

INSTRUCTIONS = (
    "Code retrieval over a pre-indexed repository. Start with search_code (natural language or "
    "identifiers) or get_symbol (a known name); get_context packs the most relevant code for a task "
    "into a token budget; repo_map gives the important files' signatures; outline lists one file's "
    "definitions. Paths are relative to the repository root; lines are 1-based and inclusive."
)


class Hit(TypedDict):
    path: str
    start_line: int
    end_line: int
    symbol: str | None
    kind: str
    score: float
    text: str


class SearchResults(TypedDict):
    results: list[Hit]


class Neighbour(TypedDict):
    qualname: str | None
    path: str | None
    line: int | None
    depth: int
    weight: float
    confidence: str  # "high": by what the code declares; "low": a name-only guess
    call_line: NotRequired[int | None]


class Definition(TypedDict):
    qualname: str
    kind: str
    path: str
    start_line: int
    end_line: int
    signature: str | None
    doc: str | None
    callers: NotRequired[list[Neighbour]]
    callees: NotRequired[list[Neighbour]]


class SymbolResult(TypedDict):
    definitions: list[Definition]


class ContextResult(TypedDict):
    text: str
    tokens: int
    budget: int
    items: list[ContextItem]


class OutlineSymbol(TypedDict):
    name: str
    qualname: str
    kind: str
    start_line: int
    end_line: int
    signature: str | None


class OutlineResult(TypedDict):
    path: str
    symbols: list[OutlineSymbol]


def _result(text: str, data: Any) -> CallToolResult:
    """Readable text for the model (code in fences, not JSON-escaped), JSON data for programs."""
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


class RepoTools:
    """The tools, as methods: arguments are JSON-schema'd by their annotations, results by the
    TypedDict in their return annotation (the `outputSchema` clients see)."""

    def __init__(self, host: RetrieverHost, repo: Path, *, query_timeout: float | None = DEFAULT_QUERY_TIMEOUT_S
                 ) -> None:
        self.host = host
        self.repo = repo.resolve()
        self.query_timeout = query_timeout  # seconds per call (None: none)

    async def _ask(self, fn: Any) -> Any:
        try:
            return await self.host.call(fn, timeout=self.query_timeout)
        except RepoloopError as e:
            raise ToolError(str(e)) from e

    async def search_code(
        self,
        query: Annotated[str, Field(min_length=1, description="what to look for: words, identifiers, a question")],
        k: Annotated[int, Field(ge=1, le=100, description="how many results")] = 10,
    ) -> Annotated[CallToolResult, SearchResults]:
        """Ranked code snippets for a query (lexical + semantic + graph, fused)."""
        if not query.strip():
            raise ToolError("query is empty")
        hits = await self._ask(lambda r: r.search(query, k))
        data = {"results": [h.to_json() for h in hits]}
        blocks = [
            f"{i}. {h['path']}:{h['start_line']}-{h['end_line']}  {h['kind']}"
            + (f" {h['symbol']}" if h["symbol"] else "") + f"  (score {h['score']:.3f})\n"
            + _fence(h["text"])
            for i, h in enumerate(data["results"], 1)
        ]
        return _result("\n\n".join(blocks) or f"no results for {query!r}", data)

    async def get_symbol(
        self,
        name: Annotated[str, Field(min_length=1, description="a bare or qualified name, e.g. parse or pkg.mod.Class.parse")],
    ) -> Annotated[CallToolResult, SymbolResult]:
        """Where a symbol is defined: path, lines, kind, qualified name, signature, docstring, and
        its direct callers and callees from the graph (guesses marked `confidence: low`)."""
        defs = await self._ask(lambda r: r.definitions(name, neighbours=NEIGHBOURS))
        if not defs:
            raise ToolError(f"no symbol named {name!r} in the index")
        lines = []
        for d in defs:
            lines.append(f"{d['qualname']}  ({d['kind']})  {d['path']}:{d['start_line']}-{d['end_line']}")
            if d.get("signature"):
                lines.append(f"    {d['signature']}")
            if d.get("doc"):
                lines.append("    " + d["doc"].strip().replace("\n", "\n    "))
            lines += neighbour_lines(d)
        return _result("\n".join(lines), {"definitions": defs})

    async def get_context(
        self,
        task: Annotated[str, Field(min_length=1, description="the task or question the context is for")],
        budget: Annotated[int, Field(ge=64, le=200_000, description="token budget; the pack never exceeds it")] = 4000,
    ) -> Annotated[CallToolResult, ContextResult]:
        """The most relevant code for a task, packed into a token budget (full code for the best
        matches, signatures for the rest)."""
        pack = await self._ask(lambda r: r.context(task, budget))
        data = {"text": pack.text, "tokens": pack.tokens, "budget": pack.budget,
                "items": [asdict(i) for i in pack.items]}
        return _result(pack.text, data)

    async def repo_map(
        self,
        budget: Annotated[int, Field(ge=64, le=200_000, description="token budget of the map")] = 1024,
        focus: Annotated[
            list[str], Field(description="paths or symbols to centre the ranking on (optional)")
        ] = [],  # noqa: B006 - pydantic copies defaults; the schema shows []
    ) -> str:
        """The repository map: the most important files' signatures, ranked by PageRank over the
        dependency graph (personalized towards `focus`), within the budget."""
        return await self._ask(lambda r: r.repo_map(budget, tuple(focus)))

    async def outline(
        self,
        path: Annotated[str, Field(min_length=1, description="a file, relative to the repository root")],
    ) -> Annotated[CallToolResult, OutlineResult]:
        """Every definition in one file, in order, with lines and signatures."""
        rel = self.repo_relative(path)
        out = await self._ask(lambda r: r.outline(rel))
        lines = [f"{out['path']}:"] + [
            f"  {s['start_line']}-{s['end_line']}".ljust(14) + f"{s['kind']:<9} {s['name']}"
            + (f"  {s['signature']}" if s.get("signature") else "")
            for s in out["symbols"]
        ]
        return _result("\n".join(lines), out)

    def repo_relative(self, path: str) -> str:
        """`path` as a repo-relative posix path; refuses anything outside the repository."""
        p = Path(path)
        full = (p if p.is_absolute() else self.repo / p).resolve()
        try:
            rel = full.relative_to(self.repo)
        except ValueError:
            raise ToolError(f"{path}: outside the repository") from None
        if not full.is_file():
            raise ToolError(f"{path}: no such file in the repository")
        return rel.as_posix()


def _fence(code: str) -> str:
    fence = "```"
    while fence in code:  # a snippet that itself holds a fence gets a longer one
        fence += "`"
    return f"{fence}\n{code.rstrip()}\n{fence}"


def build_server(host: RetrieverHost, repo: Path, *, query_timeout: float | None = DEFAULT_QUERY_TIMEOUT_S
                 ) -> MCPServer:
    from repoloop import __version__

    server = MCPServer(
        "repoloop", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )
    tools = RepoTools(host, repo, query_timeout=query_timeout)
    for fn in (tools.search_code, tools.get_symbol, tools.get_context, tools.repo_map, tools.outline):
        server.add_tool(fn)
    return server


@dataclass(slots=True)
class ServeOptions:
    repo: Path
    index_dir: Path | None = None
    http_port: int | None = None  # None: stdio
    watch: bool = False
    retrieval: RetrievalOptions = field(default_factory=RetrievalOptions)  # how the Retriever ranks
    embed: bool = True  # for the watcher's index passes
    debounce: float = 0.3
    query_timeout: float | None = DEFAULT_QUERY_TIMEOUT_S  # per tool call, seconds (None: none)


def serve(opts: ServeOptions) -> None:
    """Open the Retriever (and the watcher), then serve until the client goes away or Ctrl-C."""
    import anyio

    from repoloop.indexer.embed.embedders import embedder_from_config
    from repoloop.retrieval import open_retriever
    from repoloop.service.warm import ModelLoads, SharedEmbedder
    from repoloop.service.watch import PipelineIndexer, UpdateReport, Watcher

    sock = _bind(opts.http_port) if opts.http_port is not None else None
    # Until the stdio transport takes over fd 1, nothing may write to stdout: it is the wire.
    quiet = contextlib.redirect_stdout(sys.stderr) if sock is None else contextlib.nullcontext()
    # One model for the process: the watcher's index passes and the Retriever's queries share it
    # (made now, loaded on first use; a Retriever over an index of another model loads that one).
    embedder = SharedEmbedder(embedder_from_config(opts.retrieval.embed))
    host = RetrieverHost(lambda: open_retriever(opts.repo, opts.index_dir, opts.retrieval, embedder=embedder))
    watcher: Watcher | None = None
    loads = ModelLoads(sys.stderr).__enter__()  # a line on stderr per model load

    def stop_threads() -> bool:
        """Stop the calls running on the retriever thread, the watcher, and the Retriever; False
        if the retriever thread did not stop in time."""
        host.cancel_running()
        if watcher is not None:
            watcher.stop()
        return host.close(timeout=STOP_TIMEOUT_S)

    try:
        with quiet:
            if opts.watch:
                def reload(report: UpdateReport) -> None:
                    print(f"repoloop: {report.line()}", file=sys.stderr, flush=True)
                    if report.error is None and _changed(report.result):
                        host.reload().result()

                watcher = Watcher(
                    opts.repo,
                    PipelineIndexer(opts.repo, opts.index_dir, embed=opts.embed, embedder=embedder,
                                    embed_config=opts.retrieval.embed),
                    index_dir=opts.index_dir,
                    debounce=opts.debounce,
                    on_update=reload,
                )
                if not _index_db(opts).is_file():  # nothing to serve yet: index first
                    first = watcher.run_pass(None)
                    if first.error:
                        raise RepoloopError(f"indexing {opts.repo} failed: {first.error}")
            _require_index(opts)
            host.start(warm_in_background=True)  # answer the handshake now; queries wait for warm
            if watcher is not None:
                watcher.start()
                # catch up with what changed while nobody watched, in the background: serve now
                watcher.notice((), full=True)
        server = build_server(host, opts.repo, query_timeout=opts.query_timeout)
        if sock is None:
            _exit_when_orphaned(stop_threads)  # a client killed while another process holds our stdin
            anyio.run(server.run_stdio_async)  # returns at stdin EOF (calls in flight are cancelled)
        else:
            anyio.run(_serve_http, server, sock)
    finally:
        stopped = stop_threads()
        loads.__exit__(None, None, None)
        if sock is not None:
            sock.close()
        if not stopped:
            # A call stuck where it cannot see its deadline (a busy-waiting SQLite read, a model
            # load) must not keep a server without a client alive: the interpreter would wait
            # for its thread at exit. The index is only read here; nothing is lost.
            _exit_now(1 if sys.exc_info()[1] is not None else 0, "the retriever thread did not stop")


def _exit_now(code: int, why: str) -> None:
    print(f"repoloop: exiting now: {why}", file=sys.stderr, flush=True)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    os._exit(code)


def _exit_when_orphaned(stop: Callable[[], bool], interval: float = PARENT_POLL_S) -> threading.Thread | None:
    """Exit once the process that started this one is gone (this one re-parented). Its stdin
    normally closes then, and the server ends by itself; this covers a pipe that something else
    still holds open, where the stdin read would block forever. A daemon thread."""
    parent = os.getppid()
    if parent <= 1:  # started by init (or a container's): nothing to watch
        return None

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        print(f"repoloop: the client (pid {parent}) is gone; stopping", file=sys.stderr, flush=True)
        stop()
        _exit_now(0, "no client")

    t = threading.Thread(target=watch, name="repoloop-parent-watch", daemon=True)
    t.start()
    return t


def _changed(result: object) -> bool:
    """Whether an index pass changed anything (a pass that only confirmed hashes needs no reload)."""
    indexed, deleted = getattr(result, "files_indexed", None), getattr(result, "files_deleted", None)
    return not isinstance(indexed, int) or not isinstance(deleted, int) or indexed + deleted > 0


def _index_db(opts: ServeOptions) -> Path:
    from repoloop.indexer.store import DB_NAME, index_dir_for

    return index_dir_for(opts.repo, opts.index_dir) / DB_NAME


def _require_index(opts: ServeOptions) -> None:
    from repoloop.errors import IndexMissingError

    db = _index_db(opts)
    if not db.is_file():
        raise IndexMissingError(f"{opts.repo} has no index at {db.parent}; run `repoloop index` first (or serve --watch)")


def _bind(port: int) -> socket.socket:
    """Bind 127.0.0.1:port ourselves: a port in use is a clear user error, and port 0 works."""
    if not 0 <= port <= 65535:
        raise RepoloopError(f"--http {port}: not a port number")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # accepted sockets inherit it
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as e:
        sock.close()
        raise RepoloopError(f"--http {port}: cannot listen on 127.0.0.1:{port} ({e.strerror})") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


async def _serve_http(server: MCPServer, sock: socket.socket) -> None:
    import uvicorn

    app = server.streamable_http_app(host="127.0.0.1")
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    print(f"repoloop: MCP server on http://127.0.0.1:{port}/mcp", file=sys.stderr, flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])
