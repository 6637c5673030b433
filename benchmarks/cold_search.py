"""Cold `repoloop search` (a new process per query, as a shell user or an editor plugin runs it) on
an embedded index: wall and CPU seconds per query for two code versions, interleaved query by query
so that both see the same machine load, and whether their top files agree.

    .venv/bin/python benchmarks/cold_search.py --repo /work/benchdata/devemb/dev/vuejs__core \
        --index-dir /work/benchdata/devemb/dev/vuejs__core.repoloop --queries 20 \
        --old /tmp/wt-old --new .

--old/--new are checkouts whose `repoloop` package is run (the process starts in that checkout and
has it first on PYTHONPATH; the same interpreter and packages for both). `--lexical` adds the new
code with `--lexical` as a third variant (the floor a dense search is held to). `--rerank` passes
`--rerank` to old and new, each process with its own empty vector cache (REPOLOOP_VECTOR_CACHE in a
fresh temporary directory): the cold re-rank on a `--no-embed` index.
Queries: dev.jsonl's `query_subject` for the repository, in file order, or --queries-file (one per line).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from materialize import BENCH_DIR  # noqa: E402


def run_once(code: Path, repo: Path, idx: Path, query: str, k: int, extra: tuple[str, ...] = ()
             ) -> tuple[float, float, list[str]]:
    """(wall s, CPU s of the child, unique files of the results in order)."""
    env = dict(os.environ, PYTHONPATH=str(code.resolve()))  # and the cwd: `-m` puts it first on sys.path
    tmp = None
    if "--rerank" in extra:
        tmp = tempfile.mkdtemp(prefix="cold-rerank-")
        env["REPOLOOP_VECTOR_CACHE"] = str(Path(tmp) / "vectors.db")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "repoloop.cli", "search", query, "--repo", str(repo),
                          "--index-dir", str(idx), "-k", str(k), "--json", *extra],
                         capture_output=True, text=True, env=env, timeout=600, cwd=code.resolve())
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"search failed ({code}): {out.stderr[-2000:]}")
    data = json.loads(out.stdout)
    files = list(dict.fromkeys(h["path"] for h in (data["results"] if isinstance(data, dict) else data)))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", type=Path, required=True)
    ap.add_argument("--index-dir", type=Path, required=True)
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--new", type=Path, default=Path("."))
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--queries-file", type=Path)
    ap.add_argument("--lexical", action="store_true", help="also time the new code with --lexical")
    ap.add_argument("--rerank", action="store_true", help="old and new with --rerank and an empty vector cache")
    ap.add_argument("--old-queries", type=int, help="time the old code on only the first N queries (slow)")
    ap.add_argument("-k", type=int, default=10)
    a = ap.parse_args()
    name = a.repo.name
    if a.queries_file:
        queries = [q.strip() for q in a.queries_file.read_text().splitlines() if q.strip()][: a.queries]
    else:
        records = [json.loads(line) for line in (BENCH_DIR / "dev.jsonl").read_text().splitlines() if line.strip()]
        queries = [r["query_subject"] for r in records if r["repo"].replace("/", "__") == name][: a.queries]
    if not queries:
        raise SystemExit(f"no dev.jsonl queries for {name}")
    extra = ("--rerank",) if a.rerank else ()
    variants = {"old": (a.old, extra), "new": (a.new, extra)}
    if a.lexical:
        variants["new --lexical"] = (a.new, ("--lexical",))
    res: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    same_top1 = same_top3 = same_top10 = compared = 0
    load = []
    for i, q in enumerate(queries):
        names = list(variants)
        order = names[i % len(names):] + names[: i % len(names)]  # none always runs first
        got = {}
        for which in order:
            if which == "old" and a.old_queries is not None and i >= a.old_queries:
                continue
            code, ex = variants[which]
            wall, cpu, files = run_once(code, a.repo, a.index_dir, q, a.k, ex)
            res[which].append((wall, cpu))
            got[which] = files
        load.append(os.getloadavg()[0])
        if "old" in got:
            compared += 1
            same_top1 += got["old"][:1] == got["new"][:1]
            same_top3 += got["old"][:3] == got["new"][:3]
            same_top10 += got["old"][:10] == got["new"][:10]
    print(f"{len(queries)} cold queries on {name} (k={a.k}{', --rerank, empty vector cache' if a.rerank else ''}),"
          f" load avg during the run {min(load):.1f}-{max(load):.1f}")
    print("| code | wall p50 s | wall p95 s | CPU p50 s |\n|---|---|---|---|")
    for which in variants:
        if not res[which]:
            continue
        walls = sorted(w for w, _ in res[which])
        cpus = [c for _, c in res[which]]
        p95 = walls[min(len(walls) - 1, round(0.95 * (len(walls) - 1)))]
        print(f"| {which} | {statistics.median(walls):.2f} | {p95:.2f} | {statistics.median(cpus):.2f} |")
    p50 = {w: statistics.median(x for x, _ in res[w]) for w in variants if res[w]}
    if "old" in p50:
        print(f"old/new wall p50: {p50['old'] / p50['new']:.1f}x; same top file {same_top1}/{compared}, same top 3"
              f" files {same_top3}/{compared}, same top-10 files {same_top10}/{compared}")
    if a.lexical:
        print(f"new / new --lexical wall p50: {p50['new'] / p50['new --lexical']:.2f}x")


if __name__ == "__main__":
    main()
