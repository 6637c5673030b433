"""Peak memory of a full graph build (the end of a big `repoloop index`), code version A vs B.

    nice .venv/bin/python benchmarks/graph_rss.py ab --index-dir IDX --rev HEAD~1 --rev WORKTREE [--out F.json]
    nice .venv/bin/python benchmarks/graph_rss.py stages --index-dir IDX

`ab`: for each code version (a git revision, or WORKTREE for the working tree's package), a copy
of IDX/index.db has all its edges rebuilt (`graph_build.rebuild_edges`, what a full index runs) in
a fresh process; it reports the process' peak RSS (ru_maxrss) above its RSS before the build, wall
and CPU seconds, and a digest of the edges and graph_files rows written, so that versions can be
checked to produce the same graph. The versions alternate (A B A B ...) over `--repeat` rounds.
`stages`: RSS after each step of the current code's full build, in one process (where it goes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = r"""
import hashlib, json, resource, sqlite3, sys, time
from repoloop.indexer.store import IndexStore
from repoloop.indexer.graph import build as graph_build

db = sys.argv[1]
store = IndexStore(db)
store.conn.execute("PRAGMA cache_size=-131072")  # as the pipeline's writer connection
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t, c = time.perf_counter(), time.process_time()
n = graph_build.rebuild_edges(store)
secs, cpu = time.perf_counter() - t, time.process_time() - c
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
h = hashlib.sha1()
for row in store.conn.execute("SELECT f.path, src, dst, kind, weight, line FROM edges e JOIN files f ON f.id=e.file_id "
                              "ORDER BY f.path, src, dst, kind"):
    h.update(repr(tuple(row)).encode())
for row in store.conn.execute("SELECT path, hash, iface FROM graph_files ORDER BY path"):
    h.update(repr(tuple(row)).encode())
print(json.dumps({"edges": n, "seconds": secs, "cpu_s": cpu, "rss_before_mib": before / 1024,
                  "peak_rss_mib": peak / 1024, "digest": h.hexdigest()}))
"""


def _code(rev: str, dest: Path) -> Path:
    """The package as of `rev` (or the working tree) in its own folder."""
    dest.mkdir(parents=True)
    if rev == "WORKTREE":
        shutil.copytree(ROOT / "repoloop", dest / "repoloop", ignore=shutil.ignore_patterns("__pycache__"))
    else:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "repoloop"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
    return dest


def ab(idx: Path, revs: list[str], repeat: int) -> dict:
    out: dict = {"index": str(idx), "runs": {r: [] for r in revs}}
    with tempfile.TemporaryDirectory(prefix="graph_rss_", dir=idx.parent) as tmp:
        codes = {r: _code(r, Path(tmp) / f"code{i}") for i, r in enumerate(revs)}
        src = sqlite3_backup(idx / "index.db", Path(tmp) / "src.db")
        for _ in range(repeat):
            for r in revs:
                db = Path(tmp) / "run.db"
                shutil.copy(src, db)
                env = dict(os.environ, PYTHONPATH=str(codes[r]))
                p = subprocess.run([sys.executable, "-c", _CHILD, str(db)], capture_output=True, text=True,
                                   env=env, cwd=codes[r], check=True)
                res = json.loads(p.stdout.strip().splitlines()[-1])
                res["growth_mib"] = res["peak_rss_mib"] - res["rss_before_mib"]
                out["runs"][r].append(res)
                print(r, json.dumps(res), flush=True)
                for f in Path(tmp).glob("run.db*"):
                    f.unlink()
    out["summary"] = {r: {k: statistics.median(x[k] for x in runs) for k in
                          ("peak_rss_mib", "growth_mib", "seconds", "cpu_s")} | {"digests": sorted({x["digest"] for x in runs})}
                      for r, runs in out["runs"].items()}
    out["load_avg"] = os.getloadavg()[0]
    return out


def sqlite3_backup(src: Path, dest: Path) -> Path:
    """A consistent copy of a WAL database (a plain file copy could miss the WAL)."""
    import sqlite3

    a, b = sqlite3.connect(src), sqlite3.connect(dest)
    a.backup(b)
    a.close()
    b.close()
    return dest


def stages(idx: Path) -> dict:
    import psutil

    from repoloop.indexer.graph import build as graph_build
    from repoloop.indexer.graph.resolve_refs import Resolver
    from repoloop.indexer.store import IndexStore

    me = psutil.Process()
    out: dict = {}

    def mark(name: str) -> None:
        out[name] = round(me.memory_info().rss / 2**20, 1)
        print(name, out[name], flush=True)

    store = IndexStore(idx / "index.db")
    mark("open")
    resolver = Resolver(store.conn)
    mark("resolver tables")
    n = 0
    for (fid,) in store.conn.execute("SELECT id FROM files ORDER BY path").fetchall():
        n += len(graph_build.file_edges(resolver, fid))
    out["edges"] = n
    mark("all files resolved (memos full)")
    files = {p: (fid, h) for fid, p, h in store.conn.execute("SELECT id, path, hash FROM files")}
    ifaces = sum(len(j) for _p, _h, j in graph_build._all_interface_rows(store.conn, files))
    out["iface_json_bytes"] = ifaces
    mark("+ every interface as JSON, streamed, resolver alive")
    del resolver
    mark("after freeing the resolver")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("ab")
    a.add_argument("--index-dir", type=Path, required=True)
    a.add_argument("--rev", action="append", required=True)
    a.add_argument("--repeat", type=int, default=1)
    a.add_argument("--out", type=Path, default=None)
    s = sub.add_parser("stages")
    s.add_argument("--index-dir", type=Path, required=True)
    args = ap.parse_args()
    if args.cmd == "ab":
        res = ab(args.index_dir.resolve(), args.rev, args.repeat)
        print(json.dumps(res["summary"], indent=2))
        if args.out:
            args.out.write_text(json.dumps(res, indent=2))
    else:
        print(json.dumps(stages(args.index_dir.resolve())))


if __name__ == "__main__":
    main()
