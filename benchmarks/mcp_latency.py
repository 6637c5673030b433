"""Warm query latency through the MCP server, against the costs it saves.

Indexes a snapshot of a repository (default: this repository's HEAD, via `git archive`, so the
measured tree is fixed and the working copy's index is untouched), then in one run measures:

- direct: the Retriever in-process, opened and warmed once (the floor: no protocol at all);
- MCP stdio: `repoloop serve` as a subprocess, the official `mcp` client, each tool N times;
- MCP HTTP: `repoloop serve --http` on 127.0.0.1, search_code N times;
- cold CLI: `repoloop search QUERY --json` as a new process per query (what a client pays with
  no server: start, imports, index open, model load, one query).

Usage: .venv/bin/python benchmarks/mcp_latency.py [--repo PATH] [--calls 50] [--cold 5] [--lexical]
Each tool gets one untimed warm-up call. Prints a markdown report (medians, p95, ratios) for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUERIES = [
    "where are index runs locked against concurrent writers?",
    "parse a source file into symbols with tree-sitter",
    "reciprocal rank fusion of lexical and dense results",
    "token budget for the context pack",
    "sandbox command with bubblewrap and no network",
    "incremental indexing skips unchanged files by content hash",
    "OpenAI chat completions client with retries",
    "walk the repository honouring gitignore",
    "store chunks in the FTS5 table",
    "debounce file change events before re-indexing",
]
SYMBOLS = ["IndexStore", "index_repo", "Walker", "IndexLock", "Retriever", "RepoloopError", "build_parser",
           "SearchHit", "ContextPack", "main"]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))]


def row(name: str, xs: list[float]) -> str:
    return f"| {name} | {len(xs)} | {statistics.median(xs) * 1000:.1f} | {pct(xs, 95) * 1000:.1f} |"


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.update(ANONYMIZED_TELEMETRY="False", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return e


def repoloop_exe() -> list[str]:
    exe = Path(sys.executable).parent / "repoloop"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "repoloop.cli"]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def snapshot(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=src, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dst)], input=archive, check=True)
    return dst


async def measure_mcp(client, calls: int, outline_paths: list[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}

    async def timed(name: str, tool: str, args_of) -> None:
        await client.call_tool(tool, args_of(-1))  # first use of a tool loads its parts (e.g. the tokenizer)
        xs = []
        for i in range(calls):
            t = time.perf_counter()
            res = await client.call_tool(tool, args_of(i))
            xs.append(time.perf_counter() - t)
            if res.is_error:
                raise SystemExit(f"{tool} failed: {res.content}")
        out[name] = xs

    await timed("get_symbol", "get_symbol", lambda i: {"name": SYMBOLS[i % len(SYMBOLS)]})
    await timed("get_context (budget 2000)", "get_context",
                lambda i: {"task": QUERIES[i % len(QUERIES)], "budget": 2000})
    await timed("outline", "outline", lambda i: {"path": outline_paths[i % len(outline_paths)]})
    await timed("repo_map (budget 1024)", "repo_map", lambda i: {"budget": 1024})
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=None, help="repository to index (default: a snapshot of this one's HEAD)")
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--cold", type=int, default=5, help="cold CLI invocations (each a new process)")
    ap.add_argument("--lexical", action="store_true", help="no embeddings: lexical + graph + names only")
    ap.add_argument("--workdir", default=None,
                    help="keep the snapshot and its index here across runs (re-runs skip the embedding)")
    args = ap.parse_args()

    from mcp import Client, StdioServerParameters

    from repoloop.indexer.config import EmbedConfig
    from repoloop.indexer.pipeline import index_repo

    tmp = Path(args.workdir).resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="mcp_latency_"))
    try:
        if args.repo:
            repo = Path(args.repo).resolve()
        elif (tmp / "repo").is_dir():
            repo = tmp / "repo"
        else:
            repo = snapshot(ROOT, tmp / "repo")
        t = time.perf_counter()
        rep = index_repo(repo, embed=not args.lexical, progress=False, embed_config=EmbedConfig.from_env(os.environ))
        index_s = time.perf_counter() - t
        lex = ["--lexical"] if args.lexical else []
        outline_paths = [p.relative_to(repo).as_posix() for p in sorted(repo.glob("repoloop/*/*.py"))[:10]] or \
            [p.relative_to(repo).as_posix() for p in sorted(repo.rglob("*.py"))[:10]]

        # the HTTP server first, so that it warms while the rest starts
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([*repoloop_exe(), "serve", "--repo", str(repo), "--http", str(port), *lex],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
        try:
            deadline = time.monotonic() + 300
            while not _listening(port):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("HTTP server did not come up")
                time.sleep(0.1)

            # direct, in-process: the floor
            t = time.perf_counter()
            from repoloop.retrieval.api import RetrievalOptions
            from repoloop.retrieval.retriever import open_retriever

            r = open_retriever(repo, options=RetrievalOptions(lexical_only=args.lexical))
            r.warm()
            open_s = time.perf_counter() - t

            async def run() -> tuple[float, float, dict[str, list[float]], dict[str, list[float]]]:
                cmd = repoloop_exe()
                params = StdioServerParameters(command=cmd[0], args=[*cmd[1:], "serve", "--repo", str(repo), *lex],
                                               env=env())
                t0 = time.perf_counter()
                async with Client(params, read_timeout_seconds=300) as c, \
                        Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=300) as h:
                    ready = time.perf_counter() - t0
                    await c.call_tool("search_code", {"query": "warm", "k": 1})
                    first = time.perf_counter() - t0
                    await h.call_tool("search_code", {"query": "warm", "k": 1})
                    # search: direct, stdio, HTTP and (every so often) a cold CLI process, interleaved,
                    # so that all see the same load on this shared machine
                    res: dict[str, list[float]] = {"direct": [], "stdio": [], "http": [], "cold": []}
                    cold_every = max(1, args.calls // max(1, args.cold))
                    for i in range(args.calls):
                        q = QUERIES[i % len(QUERIES)]
                        t = time.perf_counter()
                        r.search(q, 10)
                        res["direct"].append(time.perf_counter() - t)
                        for name, client in (("stdio", c), ("http", h)):
                            t = time.perf_counter()
                            got = await client.call_tool("search_code", {"query": q, "k": 10})
                            res[name].append(time.perf_counter() - t)
                            if got.is_error:
                                raise SystemExit(f"search_code failed: {got.content}")
                        if i % cold_every == 0 and len(res["cold"]) < args.cold:
                            t = time.perf_counter()
                            subprocess.run([*repoloop_exe(), "search", q, "--repo", str(repo), "--json", "-k", "10",
                                            *lex], check=True, capture_output=True, env=env())
                            res["cold"].append(time.perf_counter() - t)
                    return ready, first, res, await measure_mcp(c, args.calls, outline_paths)

            ready_s, first_s, search, tools = asyncio.run(run())
            r.close()
        finally:
            proc.terminate()
            proc.wait(30)
    finally:
        if not args.workdir:
            shutil.rmtree(tmp, ignore_errors=True)

    mode = "lexical (no embeddings)" if args.lexical else "hybrid (BM25 + dense MiniLM + names + graph)"
    cmdline = "nice .venv/bin/python benchmarks/mcp_latency.py" + "".join(
        f" {a}" for a in sys.argv[1:])
    med = {k: statistics.median(v) for k, v in search.items()}
    lines = [
        f"Command: `{cmdline}` · machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}),"
        f" Python {platform.python_version()}, load average at end {os.getloadavg()[0]:.1f}"
        f" (shared with other jobs) · retrieval: {mode}.",
        f"Corpus: {'a `git archive HEAD` snapshot of this repository' if not args.repo else repo.name}:"
        f" {rep.files_seen} files, {rep.chunks} chunks, {rep.symbols} symbols;"
        f" {'index update' if rep.files_unchanged else 'indexed'} in {index_s:.1f} s.",
        f"Retriever open + warm in-process: {open_s * 1000:.0f} ms; `repoloop serve` over stdio, from spawn:"
        f" handshake done {ready_s * 1000:.0f} ms, first search answered {first_s * 1000:.0f} ms.",
        "",
        "| call | n | median ms | p95 ms |",
        "|---|---|---|---|",
        row("direct `Retriever.search` k=10 (in-process, no protocol)", search["direct"]),
        row("MCP stdio `search_code` k=10", search["stdio"]),
        row("MCP HTTP `search_code` k=10", search["http"]),
        row("baseline: cold `repoloop search --json` k=10 (a new process each)", search["cold"]),
        *(row(f"MCP stdio `{k}`", v) for k, v in tools.items()),
        "",
        f"Search calls interleaved (direct, stdio, HTTP, and a cold CLI every {max(1, args.calls // max(1, args.cold))}),"
        " so all saw the same load; each tool had one untimed warm-up call.",
        f"Warm MCP `search_code` vs a cold CLI search: {med['cold'] / med['stdio']:.0f}x faster over stdio"
        f" ({med['stdio'] * 1000:.1f} ms vs {med['cold'] * 1000:.0f} ms), {med['cold'] / med['http']:.0f}x over HTTP;"
        f" protocol cost over the in-process call: {(med['stdio'] - med['direct']) * 1000:.1f} ms (stdio),"
        f" {(med['http'] - med['direct']) * 1000:.1f} ms (HTTP).",
    ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
