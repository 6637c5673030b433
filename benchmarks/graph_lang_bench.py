"""Graph build time per language corpus: index once without embeddings, then time `rebuild_edges`.

    nice .venv/bin/python benchmarks/graph_lang_bench.py CORPUS_DIR [--index-dir D] [--reps 3] [--json]

Indexes CORPUS_DIR into --index-dir (default: a temp dir; the corpus is never written to) with the
pipeline (`embed=False`), then rebuilds every edge --reps times and reports the medians of wall and
CPU seconds of the rebuild, the edge counts by kind, and call edges per CPU second. Run it with the
code to compare (a `git worktree` of the old commit) on the same corpus, back to back.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repoloop.indexer.graph.build import rebuild_edges  # noqa: E402
from repoloop.indexer.pipeline import index_repo  # noqa: E402
from repoloop.indexer.store import IndexStore  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--index-dir", type=Path)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    idx = a.index_dir or Path(tempfile.mkdtemp(prefix="graphbench-")) / ".repoloop"
    t = time.perf_counter()
    index_repo(a.corpus, idx, embed=False)
    index_s = time.perf_counter() - t
    store = IndexStore(idx / "index.db")
    walls, cpus = [], []
    for _ in range(a.reps):
        c, t = time.process_time(), time.perf_counter()
        rebuild_edges(store)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    kinds = dict(store.conn.execute("SELECT kind, count(*) FROM edges GROUP BY kind").fetchall())
    files = store.conn.execute("SELECT count(*) FROM files").fetchone()[0]
    cpu = statistics.median(cpus)
    out = {
        "corpus": str(a.corpus), "files": files, "index_s": round(index_s, 2),
        "graph_wall_s": round(statistics.median(walls), 3), "graph_cpu_s": round(cpu, 3),
        "edges": sum(kinds.values()), "edges_by_kind": kinds,
        "edges_per_cpu_s": round(sum(kinds.values()) / cpu) if cpu else None,
    }
    print(json.dumps(out) if a.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
