"""Graph benchmark on the Python standard library: build, incremental update, load, PageRank, map.

    .venv/bin/python benchmarks/graph_bench.py [--corpus DIR] [--reps 3] [--out results.json]

Without --corpus the stdlib (no site-packages, no __pycache__) is copied to a temp dir and indexed
with the pipeline (`embed=False`). Then, on that index:
  * full build: `rebuild_edges` (resolve every file, write every edge), edges/s;
  * incremental: `update_edges` after one file's body changed / after its most-called function was
    renamed (baseline: the full build in the same run), and whole pipeline re-index runs; the
    incremental result is checked equal to the full build;
  * load: `load_graph` (sparse matrix) vs `load_nx` (networkx DiGraph, the baseline);
  * PageRank: our sparse power iteration vs `networkx.pagerank` on the same graph (global and
    personalized to 5 seed files), plus the cached global rank read;
  * queries: `callers` depth 1 and 2, `deps`, and the repo map (1024 and 4096 tokens).
Medians over --reps runs; prints a Markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repoloop.indexer.graph.build import rebuild_edges, update_edges  # noqa: E402
from repoloop.indexer.pipeline import index_repo  # noqa: E402
from repoloop.indexer.store import IndexStore  # noqa: E402
from repoloop.retrieval import graph  # noqa: E402
from repoloop.retrieval.repomap import build_repo_map  # noqa: E402

CPU: dict[str, float] = {}  # label -> median CPU seconds of this process (the machine is shared)


def timed(fn: Callable[[], object], reps: int, label: str | None = None) -> tuple[float, object]:
    """Median wall seconds over reps (and the median CPU seconds under CPU[label])."""
    times, cpu, out = [], [], None
    for _ in range(reps):
        c, t = time.process_time(), time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    if label:
        CPU[label] = round(statistics.median(cpu), 3)
    return statistics.median(times), out


def copy_stdlib(dest: Path) -> Path:
    src = Path(sysconfig.get_paths()["stdlib"])
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("site-packages", "__pycache__"), symlinks=True)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, help="an already indexed repo (default: a fresh stdlib copy)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    res: dict[str, object] = {"machine": f"{os.cpu_count()} cores, {platform.platform()}",
                              "python": platform.python_version()}
    tmp = None
    if args.corpus is None:
        tmp = Path(tempfile.mkdtemp(prefix="graphbench-"))
        root = copy_stdlib(tmp / "Lib")
        t = time.perf_counter()
        rep = index_repo(root, embed=False, progress=False)
        res["index_seconds"] = round(time.perf_counter() - t, 2)
        res["pipeline_graph_seconds"] = round(getattr(rep, "seconds", {}).get("graph", float("nan")), 2)
    else:
        root = args.corpus.resolve()
        if not (root / ".repoloop" / "index.db").exists():
            index_repo(root, embed=False, progress=False)
    store = IndexStore.open(root)
    counts = store.counts()
    res["files"], res["symbols"], res["refs"] = counts["files"], counts["symbols"], counts["refs"]

    t_full, n_edges = timed(lambda: rebuild_edges(store), args.reps, "full_build")
    res["edges"] = n_edges
    res["full_build_s"] = round(t_full, 3)
    res["edges_per_s"] = round(n_edges / t_full)
    kinds = dict(store.conn.execute("SELECT kind, count(*) FROM edges GROUP BY kind").fetchall())
    res["edges_by_kind"] = kinds

    full_set = set(store.conn.execute("SELECT file_id, src, dst, kind, weight, line FROM edges"))

    # Incremental, as the pipeline runs it: edit one well-used module (add a function), re-index
    # (the pipeline stores the file, then calls update_edges), revert, re-index.
    target = "json/decoder.py" if (root / "json/decoder.py").exists() else next(iter(
        f.path for f in store.files() if f.path.endswith(".py")))
    path = root / target
    original = path.read_text()
    store.close()

    def reindex(text: str) -> float:
        path.write_text(text)
        t = time.perf_counter()
        index_repo(root, embed=False, progress=False)
        return time.perf_counter() - t

    res["incremental_target"] = target
    res["pipeline_reindex_s_function_added"] = round(reindex(original + "\n\ndef _bench_helper():\n    return 1\n"), 3)
    res["pipeline_reindex_s_reverted"] = round(reindex(original), 3)
    store = IndexStore.open(root)
    same = set(store.conn.execute("SELECT file_id, src, dst, kind, weight, line FROM edges")) == full_set
    res["incremental_equals_full_build"] = same

    # update_edges alone: (a) the file's body changed (its interface did not); (b) its most-called
    # function was renamed (every file referring to that name is re-resolved).
    def stale(iface_edit: bool) -> None:
        row = store.conn.execute("SELECT iface FROM graph_files WHERE path=?", (target,)).fetchone()
        iface = json.loads(row[0])
        if iface_edit:
            top = store.conn.execute(
                "SELECT e.dst FROM edges e WHERE e.kind='calls' AND e.dst IN (SELECT 's:' || s.qualname FROM symbols s"
                " JOIN files f ON f.id=s.file_id WHERE f.path=?) GROUP BY e.dst ORDER BY count(*) DESC LIMIT 1",
                (target,)).fetchone()[0][2:]
            iface["defs"] = [d for d in iface["defs"] if d[1] != top] + [["_renamed_", top + "_x", "function", ""]]
            res["renamed_symbol"] = top
        store.conn.execute("UPDATE graph_files SET hash='stale', iface=? WHERE path=?", (json.dumps(iface), target))

    def upd(iface_edit: bool) -> tuple[float, float]:
        stale(iface_edit)
        c, t = time.process_time(), time.perf_counter()
        update_edges(store, set(), set())
        return time.perf_counter() - t, time.process_time() - c

    body = [upd(False) for _ in range(args.reps)]
    rename = [upd(True) for _ in range(args.reps)]
    res["update_edges_s_body_change"] = round(statistics.median(w for w, _ in body), 3)
    res["update_edges_s_rename"] = round(statistics.median(w for w, _ in rename), 3)
    CPU["update_edges_body_change"] = round(statistics.median(c for _, c in body), 3)
    CPU["update_edges_rename"] = round(statistics.median(c for _, c in rename), 3)
    res["update_speedup_body_vs_full"] = round(t_full / res["update_edges_s_body_change"], 1)
    same = set(store.conn.execute("SELECT file_id, src, dst, kind, weight, line FROM edges")) == full_set
    res["incremental_equals_full_build"] = res["incremental_equals_full_build"] and same

    t_load, g = timed(lambda: graph.load_graph(store), args.reps, "load_graph")
    t_nx, nxg = timed(lambda: graph.load_nx(store), max(1, args.reps - 1), "load_nx")
    res["nodes"] = len(g)
    res["load_graph_s"] = round(t_load, 3)
    res["load_nx_s"] = round(t_nx, 3)

    import networkx as nx

    t_pr, pr = timed(lambda: graph.pagerank(g), args.reps, "pagerank")
    t_pr_nx, pr_nx = timed(lambda: nx.pagerank(nxg, alpha=graph.ALPHA), max(1, args.reps - 1), "pagerank_nx")
    res["pagerank_s"] = round(t_pr, 3)
    res["pagerank_nx_s"] = round(t_pr_nx, 3)
    res["pagerank_max_abs_diff_vs_nx"] = max(abs(pr[k] - pr_nx[k]) for k in pr_nx)
    seeds = {f"f:{p}": 1.0 for p in sorted(graph.file_ranks(g), key=lambda p: -graph.file_ranks(g)[p])[5:10]}
    t_ppr, _ = timed(lambda: graph.pagerank(g, seeds), args.reps, "personalized_pagerank")
    t_ppr_nx, _ = timed(lambda: nx.pagerank(nxg, alpha=graph.ALPHA, personalization=seeds), max(1, args.reps - 1), "personalized_pagerank_nx")
    res["personalized_pagerank_s"] = round(t_ppr, 3)
    res["personalized_pagerank_nx_s"] = round(t_ppr_nx, 3)
    graph.pagerank(store)  # fills the cache
    t_cached, _ = timed(lambda: graph.pagerank(store), args.reps, "global_pagerank_cached_read")
    res["global_pagerank_cached_read_s"] = round(t_cached, 3)

    sym = store.conn.execute(
        "SELECT dst FROM edges WHERE kind='calls' GROUP BY dst ORDER BY count(*) DESC LIMIT 1").fetchone()[0][2:]
    t_c1, c1 = timed(lambda: graph.callers(store, sym, 1), args.reps, "callers_depth1")
    t_c2, c2 = timed(lambda: graph.callers(store, sym, 2), args.reps)
    res["callers_symbol"] = sym
    res["callers_depth1_s"], res["callers_depth1_n"] = round(t_c1, 4), len(c1)
    res["callers_depth2_s"], res["callers_depth2_n"] = round(t_c2, 4), len(c2)
    t_deps, _ = timed(lambda: graph.deps(store, target), args.reps)
    res["deps_s"] = round(t_deps, 4)
    t_map, m = timed(lambda: build_repo_map(store, 1024), args.reps, "map_1024")
    res["map_1024_s"], res["map_1024_tokens"] = round(t_map, 3), m.tokens
    t_map4, m4 = timed(lambda: build_repo_map(store, 4096), args.reps)
    res["map_4096_s"], res["map_4096_tokens"] = round(t_map4, 3), m4.tokens
    t_mapf, mf = timed(lambda: build_repo_map(store, 1024, [target]), args.reps)
    res["map_1024_focus_s"], res["map_1024_focus_tokens"] = round(t_mapf, 3), mf.tokens
    store.close()

    res["cpu_seconds"] = CPU
    res["load_average_at_end"] = os.getloadavg()
    print(json.dumps(res, indent=2))
    if args.out:
        args.out.write_text(json.dumps(res, indent=2))
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
