"""Warm query latency of the in-process Retriever, per signal configuration.

Usage: .venv/bin/python benchmarks/retrieval_latency.py --repo PATH [--index-dir DIR] [--rounds 3]

Opens one HybridRetriever (as a long-running agent or MCP server does), warms it (model load,
chroma open, graph load, path/name tables), then times `search(query, k=10)` over a fixed mix of
natural-language, identifier and stack-trace queries. The baseline, in the same run, is a bare
FTS5 BM25 query (signals=bm25). Prints a markdown table: median (p50), p95 and mean in ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from repoloop.retrieval.api import RetrievalOptions  # noqa: E402
from repoloop.retrieval.retriever import open_retriever  # noqa: E402
from repoloop.retrieval.weights import DEFAULT  # noqa: E402

NL = [
    "where are index runs locked against concurrent writers",
    "parse a source file into symbols with tree-sitter",
    "how is the token budget of the context enforced",
    "decode json with a custom object hook",
    "split a path into directory and file name",
    "retry an http request after a timeout",
    "compute a checksum of the file contents",
    "escape html special characters in a string",
    "read configuration from an ini file",
    "format a date in ISO 8601",
    "thread pool executor shutdown waits for pending futures",
    "temporary directory is removed on exit",
]
IDENT = [
    "IndexStore.replace_file", "`JSONDecoder.raw_decode` raises on trailing data", "ThreadPoolExecutor",
    "parse_args ignores unknown options", "os.path.join with absolute second argument", "HTTPConnection.request",
    "embed_missing", "urlsplit", "SequenceMatcher.get_matching_blocks", "compile_dir",
]
TRACES = [
    'Traceback (most recent call last):\n  File "/app/run.py", line 3, in <module>\n'
    '  File "/usr/lib/python3.11/json/decoder.py", line 355, in raw_decode\n'
    "json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
    'Traceback (most recent call last):\n  File "/x/repoloop/indexer/lock.py", line 40, in acquire\n'
    "BlockingIOError: [Errno 11] Resource temporarily unavailable",
    "error at shutil.py:560 while copying the tree; see also tempfile.py:880",
    'File "/opt/py/lib/python3.11/argparse.py", line 2550, in error\n  File "/opt/py/lib/python3.11/argparse.py",'
    " line 1900, in parse_known_args",
]
QUERIES = NL + IDENT + TRACES


def _time(fn, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        for q in QUERIES:
            t = time.perf_counter()
            fn(q)
            out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--index-dir", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--graph", choices=("auto", "local", "full"), default="auto",
                    help="auto: warm() loads the whole graph if it has <= full_graph_max_edges edges;"
                         " local: the SQLite-local ranker always; full: the in-memory graph always")
    args = ap.parse_args()
    t = time.perf_counter()
    weights = DEFAULT
    if args.graph != "auto":
        weights = dataclasses.replace(DEFAULT, full_graph_max_edges=0 if args.graph == "local" else 10**12)
    r = open_retriever(Path(args.repo), Path(args.index_dir) if args.index_dir else None, RetrievalOptions(weights=weights))
    t_open = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    r.warm()
    t_warm = (time.perf_counter() - t) * 1000
    counts = r.store.counts()
    configs = [("bm25 only (baseline)", "bm25"), ("bm25+name+trace", "bm25,name,trace"),
               ("bm25+name+trace+graph", "bm25,name,trace,graph")]
    if not r.lexical_only:
        configs += [("dense only", "dense"), ("all signals (hybrid)", "bm25,dense,name,graph,trace")]
    else:  # vectors cached after the warm-up round: the warm cost of the re-rank
        configs += [("bm25+name+trace+graph + re-rank, no whole-file injection", "bm25,dense,name,graph,trace",
                     True, {"rerank_inject": 0}),
                    ("bm25+name+trace+graph + re-rank (--rerank)", "bm25,dense,name,graph,trace", True, {})]
    print(f"corpus: {args.repo} — {counts['files']} files, {counts['chunks']} chunks, {counts['edges']} edges;"
          f" embeddings: {'no' if r.lexical_only else 'yes'}; graph: {'full' if r.graph.full else 'local'}")
    print(f"open {t_open:.0f} ms, warm-up (model, chroma, graph, tables) {t_warm:.0f} ms;"
          f" {len(QUERIES)} queries x {args.rounds} rounds, k={args.k}\n")
    print("| configuration | p50 ms | p95 ms | mean ms | p50 vs baseline |")
    print("|---|---|---|---|---|")
    base = None
    for label, sig, *mode in configs:
        r.set_weights(dataclasses.replace(weights, **(mode[1] if len(mode) > 1 else {})))
        r.set_rerank(bool(mode and mode[0]))
        for q in QUERIES if mode else QUERIES[:3]:  # per-config warm-up (the re-rank: embed every candidate)
            r.search(q, args.k, signals=sig)
        ms = _time(lambda q, sig=sig: r.search(q, args.k, signals=sig), args.rounds)
        p50 = statistics.median(ms)
        p95 = statistics.quantiles(ms, n=20)[18]
        base = base or p50
        print(f"| {label} | {p50:.1f} | {p95:.1f} | {statistics.fmean(ms):.1f} | {p50 / base:.2f}x |")
    r.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
