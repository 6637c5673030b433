"""What one editor save costs a warm server's graph (issue #7): the watcher's index pass for one
file, then `HybridRetriever.refresh()` until the graph in service is current again.

On a copy of a realistic tree (default: the standard library prepared for the scale benchmarks),
indexed once with `--no-embed`, a warm lexical `HybridRetriever` (the whole graph in memory, as
`warm()` does below `full_graph_max_edges`) sees N edits, each on its own file, of two kinds:
  (a) body: a comment line inserted in a function body (every later edge's line moves, no edge
      changes): the generation should stay and the graph should not be re-read;
  (b) call: a call to `os.getenv` (defined in the tree's os.py) inserted at the same place: a new
      edge, so the generation bumps and the whole graph is re-read on the helper thread.
Each edit is reverted (re-indexed, refreshed, untimed) before the next. Timed per edit: the index
pass (wall, CPU) and refresh -> graph in service (wall, and the process's CPU, which includes the
loader thread). Also the cost of the digests on a full graph build: `rebuild_edges` on each
variant's index copy (`--rebuild-reps`, median). Baseline in the same run: the same edits against the code of `--baseline-rev`
(a `git archive` of it, first on PYTHONPATH), on its own copy of the same index.

Usage: nice .venv/bin/python benchmarks/graph_refresh.py [--edits 5] [--baseline-rev 8722323]
       [--src /work/benchdata/scale/stdlib] [--rebuild-reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REBUILD_REPS = int(os.environ.get("GRAPH_REFRESH_REBUILD_REPS", "3"))
_RETURN = re.compile(r"^( {4,})return\b", re.M)


def pick_files(repo: Path, n: int) -> list[str]:
    """N files spread over the tree that import os at top level and have a `return` in a body."""
    out = []
    for p in sorted(repo.glob("*.py")):
        text = p.read_text(encoding="utf-8", errors="replace")
        if 5_000 <= len(text) <= 80_000 and re.search(r"^import os$", text, re.M) and _RETURN.search(text):
            out.append(p.relative_to(repo).as_posix())
    step = max(1, len(out) // n)
    return out[::step][:n]


def edited(text: str, kind: str, i: int) -> str:
    m = _RETURN.search(text)
    assert m is not None
    line = f"# bench edit {i}" if kind == "body" else f"os.getenv('REPOLOOP_BENCH_{i}')"
    return text[:m.start()] + f"{m.group(1)}{line}\n" + text[m.start():]


def worker(repo: Path, idx: Path, files: list[str]) -> dict:
    """Runs under the variant's code (PYTHONPATH): warm retriever, then the edits."""
    from repoloop.indexer.store import IndexStore
    from repoloop.retrieval.api import RetrievalOptions
    from repoloop.retrieval.retriever import open_retriever
    from repoloop.service.watch import PipelineIndexer

    def gen() -> str | None:
        s = IndexStore(idx / "index.db", readonly=True)
        try:
            return s.get_meta("graph_generation")
        finally:
            s.close()

    index = PipelineIndexer(repo, idx, embed=False)
    r = open_retriever(repo, idx, RetrievalOptions(lexical_only=True))
    t = time.perf_counter()
    r.warm()
    warm_s = time.perf_counter() - t
    assert r.graph.full and r.graph.graph is not None

    def refresh_until_current() -> tuple[float, float, bool]:
        before = r.graph.graph
        w, c = time.perf_counter(), time.process_time()
        r.refresh()
        while r.graph.pending is not None:  # a re-read on the helper thread; in service once done
            if r.graph.pending.done():
                r.graph.swap()
                break
            time.sleep(0.002)
        return time.perf_counter() - w, time.process_time() - c, r.graph.graph is not before

    rows = []
    for i, path in enumerate(files):
        orig = (repo / path).read_text(encoding="utf-8")
        for kind in ("body", "call"):
            g0 = gen()
            (repo / path).write_text(edited(orig, kind, i), encoding="utf-8")
            w, c = time.perf_counter(), time.process_time()
            index(frozenset({path}))
            idx_w, idx_c = time.perf_counter() - w, time.process_time() - c
            ref_w, ref_c, reread = refresh_until_current()
            rows.append({"file": path, "kind": kind, "index_s": idx_w, "index_cpu_s": idx_c,
                         "refresh_s": ref_w, "refresh_cpu_s": ref_c, "reread": reread, "bumped": gen() != g0})
            (repo / path).write_text(orig, encoding="utf-8")
            index(frozenset({path}))
            refresh_until_current()
    edges = r.store.conn.execute("SELECT count(*) FROM edges").fetchone()[0]
    r.close()
    return {"warm_s": warm_s, "edges": edges, "rows": rows, "rebuild": rebuild_times(idx, REBUILD_REPS)}


def rebuild_times(idx: Path, reps: int) -> list[tuple[float, float]]:
    from repoloop.indexer.graph.build import rebuild_edges
    from repoloop.indexer.store import IndexStore

    out = []
    store = IndexStore(idx / "index.db")
    try:
        for _ in range(reps):
            w, c = time.perf_counter(), time.process_time()
            rebuild_edges(store)
            out.append((time.perf_counter() - w, time.process_time() - c))
    finally:
        store.close()
    return out


def run_variant(code: Path, repo: Path, idx: Path, files: list[str], reps: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(code), GRAPH_REFRESH_REBUILD_REPS=str(reps))
    out = subprocess.run(
        [sys.executable, __file__, "--worker", str(repo), str(idx), ",".join(files)],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    return json.loads(out.splitlines()[-1])


def summary(res: dict, kind: str) -> dict:
    rows = [r for r in res["rows"] if r["kind"] == kind]

    def med(k: str) -> float:
        return round(statistics.median(r[k] for r in rows), 4)

    return {"index_s": med("index_s"), "index_cpu_s": med("index_cpu_s"), "refresh_s": med("refresh_s"),
            "refresh_cpu_s": med("refresh_cpu_s"), "rereads": sum(r["reread"] for r in rows),
            "bumps": sum(r["bumped"] for r in rows), "n": len(rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, required=True, help="the tree to copy and edit (e.g. a copy of the standard library)")
    ap.add_argument("--edits", type=int, default=5)
    ap.add_argument("--baseline-rev", default="8722323")
    ap.add_argument("--rebuild-reps", type=int, default=3)
    ap.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        repo, idx, files = args.worker
        print(json.dumps(worker(Path(repo), Path(idx), files.split(","))))
        return

    with tempfile.TemporaryDirectory(prefix="graph-refresh-") as tmp:
        base = Path(tmp)
        shutil.copytree(args.src, base / "repo", ignore=shutil.ignore_patterns(".repoloop", "__pycache__"))
        t = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "repoloop"), "index", "--no-embed", "--quiet",
                        "--index-dir", str(base / "idx"), str(base / "repo")], check=True)
        index_s = time.perf_counter() - t
        files = pick_files(base / "repo", args.edits)
        old = base / "baseline-code"
        old.mkdir()
        archive = subprocess.run(["git", "archive", args.baseline_rev, "repoloop"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        results = {}
        for name, code in (("baseline", old), ("this", ROOT)):
            shutil.copytree(base / "repo", base / name / "repo")
            shutil.copytree(base / "idx", base / name / "idx")
            results[name] = run_variant(code, base / name / "repo", base / name / "idx", files, args.rebuild_reps)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True).stdout.strip()
    report = {
        "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.python_version()}",
        "src": str(args.src), "full_index_s": round(index_s, 1), "files": files,
        "baseline_rev": args.baseline_rev, "this_rev": rev,
        "edges": results["this"]["edges"],
        "warm_s": {k: round(v["warm_s"], 2) for k, v in results.items()},
        "body": {k: summary(v, "body") for k, v in results.items()},
        "call": {k: summary(v, "call") for k, v in results.items()},
        "rebuild_edges": {k: {"s": round(statistics.median(w for w, _ in v["rebuild"]), 2),
                              "cpu_s": round(statistics.median(c for _, c in v["rebuild"]), 2)}
                          for k, v in results.items() if v["rebuild"]},
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
