"""Indexing speed on the Python standard library: full index, one-file re-index, no-change re-index,
against universal-ctags on the same tree in the same run.

    nice .venv/bin/python benchmarks/index_bench.py [--runs 3] [--jobs N] [--out results.json]

The tree is a copy of `sysconfig.get_paths()["stdlib"]` without site-packages/dist-packages
(and without __pycache__, which the walk would prune anyway). `repoloop index --no-embed` runs as
a subprocess; peak RSS is the largest sum of RSS over its process tree (sampled every 20 ms);
CPU seconds are user+sys of that tree: the larger of RUSAGE_CHILDREN's delta (exact for what was
reaped, but the parser workers are grandchildren via the forkserver, out of its reach) and the sum
of each process's last reading sampled every 20 ms (catches the workers, can miss the last
milliseconds of short runs), a figure that other load on a shared machine inflates far less than
wall time.
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
import sysconfig
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def copy_stdlib(dst: Path) -> Path:
    src = Path(sysconfig.get_paths()["stdlib"])
    shutil.copytree(src, dst, symlinks=True,
                    ignore=shutil.ignore_patterns("site-packages", "dist-packages", "__pycache__"))
    return dst


CPU: list[float] = []  # CPU seconds of each run_tree call, in order


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def watch_tree(proc: subprocess.Popen) -> tuple[int, float]:
    """Until `proc` exits, sample its process tree every 20 ms: (peak RSS bytes of the tree, CPU
    seconds its processes had used when last seen)."""
    ps = psutil.Process(proc.pid)
    peak = 0
    cpu: dict[tuple[int, float], float] = {}
    while proc.poll() is None:
        try:
            procs = [ps, *ps.children(recursive=True)]
        except psutil.Error:
            procs = []
        rss = 0
        for p in procs:
            try:
                with p.oneshot():
                    rss += p.memory_info().rss
                    ct = p.cpu_times()
                    cpu[(p.pid, p.create_time())] = ct.user + ct.system
            except psutil.Error:
                pass
        peak = max(peak, rss)
        time.sleep(0.02)
    return peak, sum(cpu.values())


def run_tree(cmd: list[str], cwd: Path | None = None) -> tuple[float, int, str]:
    """(seconds, peak RSS bytes of the process tree, stdout) of one command; its CPU seconds
    are appended to CPU."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cpu0 = _children_cpu()
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak, tree_cpu = watch_tree(proc)
    out, err = proc.communicate()
    secs = time.perf_counter() - t
    CPU.append(max(tree_cpu, _children_cpu() - cpu0))
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {err[-2000:]}")
    return secs, peak, out


def repoloop_index(tree: Path, idx: Path, jobs: int | None) -> tuple[float, int, dict]:
    cmd = [sys.executable, "-m", "repoloop.cli", "index", str(tree), "--index-dir", str(idx), "--no-embed",
           "--json"]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    secs, peak, out = run_tree(cmd)
    return secs, peak, json.loads(out)


def ctags(tree: Path, tags: Path) -> tuple[float, int, int]:
    secs, peak, _ = run_tree(["ctags", "-R", "-f", str(tags), "--languages=Python", "."], cwd=tree)
    n = sum(1 for line in tags.open(errors="replace") if not line.startswith("!_TAG_"))
    return secs, peak, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="index_bench_") as tmp:
        tmp_p = Path(tmp)
        tree = copy_stdlib(tmp_p / "stdlib")
        n_py = sum(1 for _ in tree.rglob("*.py"))
        print(f"tree: {tree} ({n_py} .py files); cores: {os.cpu_count()}; runs: {args.runs}", flush=True)
        full, full_rss, one, one_rss, noop, ct, ct_rss = [], [], [], [], [], [], []
        full_cpu, one_cpu, ct_cpu = [], [], []
        load_start = os.getloadavg()
        last: dict = {}
        target = tree / "json" / "decoder.py"
        for i in range(args.runs):
            idx = tmp_p / f"idx{i}"
            secs, rss, rep = repoloop_index(tree, idx, args.jobs)
            full.append(secs)
            full_cpu.append(CPU[-1])
            full_rss.append(rss)
            last = rep
            print(f"full #{i}: {secs:.2f} s ({CPU[-1]:.1f} CPU s), {rep['files_indexed']} files, {rep['symbols']} symbols,"
                  f" peak RSS {rss / 2**20:.0f} MiB, phases {rep['seconds']}", flush=True)
            secs, _, rep0 = repoloop_index(tree, idx, args.jobs)
            noop.append(secs)
            assert rep0["files_indexed"] == 0, rep0
            with target.open("a") as f:
                f.write(f"\n\ndef _bench_added_{i}(x):\n    return x\n")
            secs, rss, rep1 = repoloop_index(tree, idx, args.jobs)
            assert rep1["files_indexed"] == 1, rep1
            one.append(secs)
            one_cpu.append(CPU[-1])
            one_rss.append(rss)
            print(f"one-file #{i}: {secs:.2f} s (phases {rep1['seconds']}); no-change: {noop[-1]:.2f} s",
                  flush=True)
            secs, rss, ntags = ctags(tree, tmp_p / f"tags{i}")
            ct.append(secs)
            ct_cpu.append(CPU[-1])
            ct_rss.append(rss)
            print(f"ctags #{i}: {secs:.2f} s ({CPU[-1]:.2f} CPU s), {ntags} tags", flush=True)
            shutil.rmtree(idx)

        med = statistics.median
        res = {
            "files": last["files_indexed"], "symbols": last["symbols"], "chunks": last["chunks"],
            "edges": last["edges"], "ctags_tags": ntags,
            "full_s": med(full), "full_runs": full, "files_per_s": last["files_indexed"] / med(full),
            "symbols_per_s": last["symbols"] / med(full), "peak_rss_mib": med(full_rss) / 2**20,
            "one_file_s": med(one), "one_file_runs": one, "one_file_pct_of_full": 100 * med(one) / med(full),
            "one_file_peak_rss_mib": med(one_rss) / 2**20,
            "no_change_s": med(noop), "ctags_s": med(ct), "ctags_runs": ct, "ctags_peak_rss_mib": med(ct_rss) / 2**20,
            "full_vs_ctags": med(full) / med(ct), "phases_last_full": last["seconds"], "skips": last["skips"],
            "full_cpu_s": med(full_cpu), "one_file_cpu_s": med(one_cpu), "ctags_cpu_s": med(ct_cpu),
            "full_vs_ctags_cpu": med(full_cpu) / med(ct_cpu),
            "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
        }
        print(json.dumps(res, indent=2))
        if args.out:
            args.out.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
