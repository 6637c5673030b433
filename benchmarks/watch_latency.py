"""Freshness under `repoloop watch`: from a file save to the change being found by search.

Indexes a `git archive HEAD` snapshot of this repository, starts `repoloop watch` on it, then N
times appends a uniquely named function to one file (a different file each time) and polls a
lexical Retriever until a search finds it there. Baseline in the same run: the same edit followed
by a manual `repoloop index` (incremental), the no-watcher way to the same freshness.

Usage: .venv/bin/python benchmarks/watch_latency.py [--edits 10] [--embed] [--debounce 0.3]

`--mcp` measures the long-running server instead, with embeddings: `repoloop serve --watch --http`
on a small part of this repository (`--subset`), each edit adds a function that only the dense
signal can find (its query shares no word with it), and the time runs from the save until
`search_code` over MCP returns it. The same edits run against this checkout and, as the baseline in
the same run, against the code of `--baseline-rev` (a `git archive` of it, put first on PYTHONPATH),
each on its own copy of one index. The server's stderr counts the model loads where it says.

Usage: .venv/bin/python benchmarks/watch_latency.py --mcp [--edits 6] [--baseline-rev bf78415]
       [--subset repoloop/service,repoloop/retrieval]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from mcp_latency import env, repoloop_exe  # noqa: E402  (the same subprocess set-up)


def found(repo: Path, name: str, path: str) -> bool:
    from repoloop.retrieval.api import RetrievalOptions
    from repoloop.retrieval.retriever import open_retriever

    r = open_retriever(repo, options=RetrievalOptions(lexical_only=True))
    try:
        return any(h.path == path for h in r.search(name, 5))
    finally:
        r.close()


def edit(repo: Path, path: str, name: str) -> None:
    with open(repo / path, "a", encoding="utf-8") as f:
        f.write(f"\n\ndef {name}():\n    return 1\n")


# (docstring of the added function, a query for it with no word in common): only dense can match
PROBES = [
    ("Convert a temperature from Celsius to Fahrenheit.", "turn degrees centigrade into the american heat scale"),
    ("Return True when the given year has a February 29th.", "is this a leap calendar period"),
    ("Shuffle a deck of playing cards in place.", "randomly reorder poker hand items"),
    ("Compute the distance between two points on a sphere using latitude and longitude.",
     "how far apart are two cities on earth"),
    ("Translate an English word into pig latin.", "silly childish language game rewriting"),
    ("Estimate the monthly repayment of a mortgage loan.", "house borrowing instalment per month"),
    ("Count the vowels in a sentence.", "number of a e i o u letters"),
    ("Pick the winner of rock paper scissors.", "hand game decide who beats whom"),
]


def probe_source(i: int, tag: str) -> tuple[str, str, str]:
    doc, query = PROBES[i % len(PROBES)]
    name = f"zz_{tag}_{i}"
    return name, f'\n\ndef {name}(q):\n    """{doc}"""\n    return q\n', query


async def _serve_edits(repo: Path, port: int, proc: subprocess.Popen, log: list[str], label: str, tag: str,
                       files: list[str], args: argparse.Namespace) -> dict:
    """Against a started `serve --watch --http`: time to the first search, then each edit's latency."""
    import asyncio

    from mcp import Client

    t0 = time.perf_counter()
    deadline = time.monotonic() + 300
    while True:
        try:
            client_cm = Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=300)
            client = await client_cm.__aenter__()
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"server did not come up: {''.join(log[-5:])}") from None
            await asyncio.sleep(0.2)
    try:
        await client.call_tool("search_code", {"query": "warm up", "k": 1})
        first = time.perf_counter() - t0
        await asyncio.sleep(2.0)  # let the start-up catch-up pass settle
        lat = []
        for i in range(args.edits):
            name, src_text, query = probe_source(i, tag)
            path = files[(i * 5 + 3) % len(files)]
            t = time.perf_counter()
            with open(repo / path, "a", encoding="utf-8") as f:
                f.write(src_text)
            while True:
                res = await client.call_tool("search_code", {"query": query, "k": 100})
                hits = [] if res.is_error else res.structured_content["results"]
                if any((h["symbol"] or "").endswith(name) for h in hits):
                    break
                if time.perf_counter() - t > 120:
                    raise SystemExit(f"{label}: edit {i} not found within 120 s")
                await asyncio.sleep(0.05)
            lat.append(time.perf_counter() - t)
            await asyncio.sleep(1.0)  # the next edit starts on a settled server
        return {"first": first, "lat": lat}
    finally:
        await client_cm.__aexit__(None, None, None)


def reload_cost(args: argparse.Namespace) -> int:
    """In one process, alternating per edit: what a watcher pass plus the server's reload cost the
    old way (a new embedder per pass; a new Retriever opened and warmed) and the new way (one shared
    embedder; `refresh()` in place), each followed by the query that must find the edit (dense)."""
    from repoloop.indexer.config import EmbedConfig
    from repoloop.indexer.embed.embedders import embedder_from_config
    from repoloop.indexer.pipeline import index_paths
    from repoloop.service.warm import ModelLoads, SharedEmbedder

    tmp = Path(tempfile.mkdtemp(prefix="watch_reload_"))
    res: dict[str, dict[str, list[float]]] = {"old": {}, "new": {}}
    try:
        repo = tmp / "repo"
        repo.mkdir()
        archive = subprocess.run(["git", "archive", "HEAD", *args.subset.split(",")], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
        subprocess.run([*repoloop_exe(), "index", str(repo), "--json"], check=True, capture_output=True, env=env())
        files = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*.py") if ".repoloop" not in p.parts)
        from repoloop.retrieval.retriever import open_retriever

        with ModelLoads() as loads:
            shared = SharedEmbedder(embedder_from_config(EmbedConfig.from_env(os.environ)))
            current = open_retriever(repo, embedder=shared)
            current.warm()
            loads_by_way = {"old": 0, "new": 0}
            for i in range(args.edits * 2):
                way = "old" if i % 2 == 0 else "new"
                name, src_text, query = probe_source(i, "r")
                path = files[(i * 5 + 3) % len(files)]
                with open(repo / path, "a", encoding="utf-8") as f:
                    f.write(src_text)
                n0 = loads.count
                t = time.perf_counter()
                index_paths(repo, [path], embed=True, embedder=None if way == "old" else shared)
                t_pass = time.perf_counter()
                if way == "old":
                    fresh = open_retriever(repo)  # what RetrieverHost did: open and warm beside, switch
                    fresh.warm()
                    current.close()
                    current = fresh
                else:
                    current.refresh()
                t_reload = time.perf_counter()
                hits = current.search(query, 100, explain=True)
                t_query = time.perf_counter()
                if not any((h.symbol or "").endswith(name) and "dense" in h.signals for h in hits):
                    raise SystemExit(f"{way}: edit {i} not found by the dense signal")
                loads_by_way[way] += loads.count - n0
                for key, v in (("pass", t_pass - t), ("reload", t_reload - t_pass), ("query", t_query - t_reload),
                               ("total", t_query - t)):
                    res[way].setdefault(key, []).append(v)
            current.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {w: {k: statistics.median(v) for k, v in d.items()} for w, d in res.items()}
    cmd = "nice .venv/bin/python benchmarks/watch_latency.py" + "".join(" " + a for a in sys.argv[1:])
    lines = [
        f"Command: `{cmd}` · machine: {os.cpu_count()} cores, Python {platform.python_version()},"
        f" load average at end {os.getloadavg()[0]:.1f} (shared) · corpus: `{args.subset}` of this repository's HEAD"
        f" · {args.edits} edits each way, alternating, in one process.",
        "",
        "| per edit (medians, s) | index pass | reload | query (k=100, dense must find it) | total | model loads per edit |",
        "|---|---|---|---|---|---|",
    ]
    for way, label in (("old", "before: new embedder per pass; new Retriever opened + warmed"),
                       ("new", "now: shared embedder; `refresh()` in place")):
        m = med[way]
        lines.append(f"| {label} | {m['pass']:.2f} | {m['reload']:.2f} | {m['query']:.3f} | {m['total']:.2f} |"
                     f" {loads_by_way[way] / args.edits:.1f} |")
    lines += ["", f"Pass + reload + query: {med['old']['total'] / med['new']['total']:.1f}x faster now"
              f" ({med['old']['total']:.2f} s -> {med['new']['total']:.2f} s)."]
    print("\n".join(lines))
    return 0


def mcp_latency(args: argparse.Namespace) -> int:
    import asyncio

    tmp = Path(tempfile.mkdtemp(prefix="watch_latency_mcp_"))
    out: dict[str, dict] = {}
    try:
        base = tmp / "base"
        base.mkdir()
        archive = subprocess.run(["git", "archive", "HEAD", *args.subset.split(",")], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        t = time.perf_counter()
        subprocess.run([*repoloop_exe(), "index", str(base), "--json"], check=True, capture_output=True, env=env())
        index_s = time.perf_counter() - t
        files = sorted(p.relative_to(base).as_posix() for p in base.rglob("*.py") if ".repoloop" not in p.parts)
        from repoloop.indexer.store import IndexStore

        with IndexStore.open(base, readonly=True) as st:
            n_files, n_chunks = st.counts()["files"], st.counts()["chunks"]
        variants = [("this checkout", None)]
        if args.baseline_rev:
            old = tmp / "old_src"
            old.mkdir()
            arch = subprocess.run(["git", "archive", args.baseline_rev, "repoloop"], cwd=ROOT, capture_output=True,
                                  check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=arch, check=True)
            keep = [k for k in args.baseline_keep.split(",") if k]
            for rel in keep:  # fixes the baseline needs to work at all, taken from this checkout
                shutil.copy2(ROOT / rel, old / rel)
            variants.insert(0, (f"baseline {args.baseline_rev}" + (f" + this checkout's {', '.join(keep)}"
                                                                   if keep else ""), old))
        for label, src in variants:
            repo = tmp / f"repo_{len(out)}"
            shutil.copytree(base, repo, symlinks=True)
            e = env()
            if src is not None:
                e["PYTHONPATH"] = str(src)
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            proc = subprocess.Popen([*repoloop_exe(), "serve", "--repo", str(repo), "--watch", "--http", str(port),
                                     "--debounce", str(args.debounce)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=e)
            log: list[str] = []
            threading.Thread(target=lambda p=proc, lg=log: lg.extend(iter(p.stderr.readline, "")),
                             daemon=True).start()

            try:
                got = asyncio.run(_serve_edits(repo, port, proc, log, label, f"v{len(out)}", files, args))
            finally:
                proc.terminate()
                proc.wait(30)
            got["loads"] = sum("embedding model loaded" in ln for ln in log)
            got["passes"] = sum("re-indexed" in ln for ln in log)
            out[label] = got
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def fmt(xs: list[float]) -> str:
        return f"{statistics.median(xs):.2f} | {max(xs):.2f}"

    cmd = "nice .venv/bin/python benchmarks/watch_latency.py" + "".join(" " + a for a in sys.argv[1:])
    lines = [
        f"Command: `{cmd}` · machine: {os.cpu_count()} cores, Python {platform.python_version()},"
        f" load average at end {os.getloadavg()[0]:.1f} (shared) · corpus: `{args.subset}` of this repository's"
        f" HEAD, {n_files} files, {n_chunks} chunks, embedded in {index_s:.0f} s (a `repoloop index` process)"
        f" · debounce {args.debounce} s · each variant on its own copy of that index.",
        "",
        "| server code | edits | median s | max s | first search after spawn s | model-load lines |",
        "|---|---|---|---|---|---|",
    ]
    for label, got in out.items():
        loads = str(got["loads"]) if label == "this checkout" else "not logged"
        lines.append(f"| {label} | {len(got['lat'])} | {fmt(got['lat'])} | {got['first']:.1f} | {loads} |")
    if len(out) == 2:
        (_, a), (_, b) = out.items()
        lines += ["", f"Save → found by the dense signal over MCP, medians: baseline"
                  f" {statistics.median(a['lat']):.2f} s, now {statistics.median(b['lat']):.2f} s"
                  f" ({statistics.median(a['lat']) / statistics.median(b['lat']):.1f}x)."]
    print("\n".join(lines))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edits", type=int, default=10)
    ap.add_argument("--embed", action="store_true", help="re-index with embeddings (default: --no-embed)")
    ap.add_argument("--debounce", type=float, default=0.3)
    ap.add_argument("--mcp", action="store_true", help="serve --watch with embeddings, measured over MCP")
    ap.add_argument("--baseline-rev", default=None, help="--mcp: the code to compare with (a git revision)")
    ap.add_argument("--baseline-keep", default="",
                    help="--mcp: files (comma-separated) of this checkout to put into the baseline's code")
    ap.add_argument("--subset", default="repoloop/service,repoloop/retrieval",
                    help="--mcp: the paths of this repository to index (keep it small: embeddings are slow)")
    ap.add_argument("--reload-cost", action="store_true",
                    help="in-process A/B per edit: index pass + reload + query, old way vs shared model + refresh")
    args = ap.parse_args()
    if args.reload_cost:
        return reload_cost(args)
    if args.mcp:
        return mcp_latency(args)

    from repoloop.indexer.config import EmbedConfig
    from repoloop.indexer.pipeline import index_repo

    tmp = Path(tempfile.mkdtemp(prefix="watch_latency_"))
    proc = None
    try:
        repo = tmp / "repo"
        repo.mkdir()
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
        rep = index_repo(repo, embed=args.embed, progress=False, embed_config=EmbedConfig.from_env(os.environ))
        files = sorted(p.relative_to(repo).as_posix() for p in repo.glob("repoloop/*/*.py"))
        embed_flag = [] if args.embed else ["--no-embed"]

        # baseline: edit, then a manual incremental `repoloop index`, until found
        manual = []
        for i in range(max(3, args.edits // 3)):
            name = f"manual_probe_{i}_{os.getpid()}"
            path = files[(i * 7) % len(files)]
            t = time.perf_counter()
            edit(repo, path, name)
            subprocess.run([*repoloop_exe(), "index", str(repo), *embed_flag], check=True, capture_output=True,
                           env=env())
            assert found(repo, name, path)
            manual.append(time.perf_counter() - t)

        proc = subprocess.Popen([*repoloop_exe(), "watch", "--repo", str(repo), *embed_flag,
                                 "--debounce", str(args.debounce)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env())
        ready = threading.Event()
        threading.Thread(target=lambda: [ready.set() for ln in proc.stderr if "watching" in ln],
                         daemon=True).start()
        if not ready.wait(300):
            raise SystemExit("watch did not start")
        watched = []
        for i in range(args.edits):
            name = f"watched_probe_{i}_{os.getpid()}"
            path = files[(i * 5 + 3) % len(files)]
            t = time.perf_counter()
            edit(repo, path, name)
            deadline = t + 60
            while not found(repo, name, path):
                if time.perf_counter() > deadline:
                    raise SystemExit(f"edit {i} not found within 60 s")
                time.sleep(0.05)
            watched.append(time.perf_counter() - t)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)

    def fmt(xs: list[float]) -> str:
        return f"median {statistics.median(xs):.2f} s, max {max(xs):.2f} s (n={len(xs)})"

    print("\n".join([
        f"Command: `nice .venv/bin/python benchmarks/watch_latency.py{''.join(' ' + a for a in sys.argv[1:])}`"
        f" · machine: {os.cpu_count()} cores, Python {platform.python_version()}, load average at end"
        f" {os.getloadavg()[0]:.1f} (shared) · {rep.files_seen} files, {rep.chunks} chunks"
        f" · embeddings {'on' if args.embed else 'off'} · debounce {args.debounce} s.",
        "",
        f"- save → found by search, `repoloop watch`: {fmt(watched)} (polled every 50 ms; includes the debounce)",
        f"- save → found by search, edit + manual `repoloop index` (baseline, same run): {fmt(manual)}",
    ]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
