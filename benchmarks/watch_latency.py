"""Freshness under `repoloop watch`: from a file save to the change being found by search.

Indexes a `git archive HEAD` snapshot of this repository, starts `repoloop watch` on it, then N
times appends a uniquely named function to one file (a different file each time) and polls a
lexical Retriever until a search finds it there. Baseline in the same run: the same edit followed
by a manual `repoloop index` (incremental), the no-watcher way to the same freshness.

Usage: .venv/bin/python benchmarks/watch_latency.py [--edits 10] [--embed] [--debounce 0.3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
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
    from repoloop.retrieval.api import Retriever

    r = Retriever.open(repo, lexical_only=True)
    try:
        return any(h.path == path for h in r.search(name, 5))
    finally:
        r.close()


def edit(repo: Path, path: str, name: str) -> None:
    with open(repo / path, "a", encoding="utf-8") as f:
        f.write(f"\n\ndef {name}():\n    return 1\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--edits", type=int, default=10)
    ap.add_argument("--embed", action="store_true", help="re-index with embeddings (default: --no-embed)")
    ap.add_argument("--debounce", type=float, default=0.3)
    args = ap.parse_args()

    from repoloop.indexer.pipeline import index_repo

    tmp = Path(tempfile.mkdtemp(prefix="watch_latency_"))
    proc = None
    try:
        repo = tmp / "repo"
        repo.mkdir()
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(repo)], input=archive, check=True)
        rep = index_repo(repo, embed=args.embed, progress=False)
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
