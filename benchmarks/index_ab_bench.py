"""Full `repoloop index --no-embed` of the standard library and a django branch switch, the code of
two commits measured in ONE run (issue 20): runs alternate before/after (ABAB...), ctags -R on the
same tree in the same rounds, and every index is checked equal (`index_digest.table_digests`) to
the first "before" index of the same tree, so a speed-up that changed the output would show.

    git worktree add /tmp/idx_before 19d4442
    nice .venv/bin/python benchmarks/index_ab_bench.py --before /tmp/idx_before [--runs 3]
        [--django-git DJANGO_GIT_DIR] [--switch-runs 1] [--out ab.json]
    # the monorepo corpus instead of the standard library (no branch switch):
    .venv/bin/python benchmarks/index_ab_bench.py --before /tmp/idx_before --tree MONOREPO --skip switch

Wall seconds, CPU seconds of the whole process tree (user+sys; parse workers included, sampled
with psutil as index_bench.py does), peak RSS, each run's phases (from `--json`), and lines/s
(lines of the indexed files, `files.lines`, over wall seconds). The switch: a clone of django at
SWE-bench base commit A (django__django-15499, 2022-03-10) indexed untimed, `git checkout` B
(django__django-16631, 2023-03-08: 1,541 files differ), then the timed `repoloop index`; its
result is compared with a clean index of B.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from index_bench import copy_stdlib, watch_tree  # noqa: E402

from repoloop.indexer.index_digest import differences, table_digests  # noqa: E402

DJANGO_A = "d90e34c61b27fba2527834806639eebbcfab9631"  # django__django-15499, 2022-03-10
DJANGO_B = "9b224579875e30203d079cc2fee83b116d98eb78"  # django__django-16631, 2023-03-08


def run(cmd: list[str], code: Path | None, cwd: Path | None = None) -> dict:
    """Wall, CPU of the process tree, peak RSS and stdout of one command."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak, cpu = watch_tree(proc)
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed ({proc.returncode}): {err[-3000:]}")
    return {"wall": wall, "cpu": cpu, "rss_mib": peak / 2**20, "out": out}


def index(tree: Path, idx: Path, code: Path) -> dict:
    r = run([sys.executable, "-m", "repoloop.cli", "index", str(tree), "--index-dir", str(idx), "--no-embed",
             "--json"], code)
    rep = json.loads(r.pop("out"))
    r["phases"] = rep["seconds"]
    r["files_indexed"] = rep["files_indexed"]
    r["counts"] = {k: rep[k] for k in ("symbols", "chunks", "edges")}
    with sqlite3.connect(idx / "index.db") as c:
        r["lines"] = c.execute("SELECT sum(lines) FROM files").fetchone()[0]
    return r


def summary(runs: list[dict]) -> dict:
    med = statistics.median
    out = {"wall_s": med(r["wall"] for r in runs), "cpu_s": med(r["cpu"] for r in runs),
           "rss_mib": med(r["rss_mib"] for r in runs), "walls": [round(r["wall"], 2) for r in runs],
           "cpus": [round(r["cpu"], 2) for r in runs]}
    if "phases" in runs[0]:
        out["phases"] = {k: med(r["phases"][k] for r in runs) for k in runs[0]["phases"]}
        out["lines"] = runs[0]["lines"]
        out["lines_per_s"] = runs[0]["lines"] / out["wall_s"]
        out["counts"] = runs[0]["counts"]
    return out


def tree_rounds(tmp: Path, variants: dict[str, Path], runs: int, tree: Path | None, label: str) -> dict:
    """Full builds of `tree` (indexed where it is), or of a copy of the standard library."""
    tree = tree if tree is not None else copy_stdlib(tmp / "stdlib")
    res: dict[str, list[dict]] = {v: [] for v in variants}
    res["ctags"] = []
    reference: dict | None = None
    equal: dict[str, list[bool]] = {v: [] for v in variants}
    for i in range(runs):
        for name, code in variants.items():
            idx = tmp / f"idx_{name}_{i}"
            r = index(tree, idx, code)
            dig = table_digests(idx / "index.db")
            if reference is None:
                reference = dig
            diff = differences(dig, reference)
            equal[name].append(not diff)
            if diff:
                print(f"  {name} #{i} DIFFERS: {diff}", flush=True)
            res[name].append(r)
            print(f"{label} {name} #{i}: {r['wall']:.2f} s wall, {r['cpu']:.1f} CPU s, {r['rss_mib']:.0f} MiB,"
                  f" phases {r['phases']}, load {os.getloadavg()[0]:.1f}", flush=True)
            shutil.rmtree(idx)
        c = run(["ctags", "-R", "-f", str(tmp / "tags"), "--languages=Python", "."], None, cwd=tree)
        c.pop("out")
        res["ctags"].append(c)
        print(f"{label} ctags #{i}: {c['wall']:.2f} s wall, {c['cpu']:.2f} CPU s", flush=True)
    out = {k: summary(v) for k, v in res.items()}
    out["equal_to_first_before"] = equal
    return out


def switch_rounds(tmp: Path, variants: dict[str, Path], git_dir: Path, runs: int) -> dict:
    work = tmp / "django"
    subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", str(git_dir), str(work)], check=True)

    def checkout(c: str) -> None:
        subprocess.run(["git", "-C", str(work), "checkout", "-q", "-f", c], check=True)

    res: dict[str, list[dict]] = {v: [] for v in variants}
    for i in range(runs):
        for name, code in variants.items():
            idx = tmp / f"dj_{name}_{i}"
            checkout(DJANGO_A)
            index(work, idx, code)
            checkout(DJANGO_B)
            r = index(work, idx, code)
            res[name].append(r)
            print(f"switch {name} #{i}: {r['wall']:.2f} s wall, {r['cpu']:.1f} CPU s, {r['files_indexed']} files,"
                  f" phases {r['phases']}, load {os.getloadavg()[0]:.1f}", flush=True)
            if i == runs - 1:
                res[name][-1]["digest"] = table_digests(idx / "index.db")
            shutil.rmtree(idx)
    clean_idx = tmp / "dj_clean"
    clean = index(work, clean_idx, variants["after"])
    clean_dig = table_digests(clean_idx / "index.db")
    out = {k: summary(v) for k, v in res.items()}
    for name in variants:
        diff = differences(res[name][-1]["digest"], clean_dig)
        out[name]["equal_to_clean_index_of_B"] = not diff
        out[name]["differences"] = diff
    out["clean_index_of_B"] = {"wall_s": clean["wall"], "cpu_s": clean["cpu"], "phases": clean["phases"]}
    out["files_changed_between"] = len(subprocess.run(
        ["git", "-C", str(work), "diff", "--name-only", DJANGO_A, DJANGO_B], capture_output=True, text=True,
        check=True).stdout.split())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, required=True, help="a checkout of the code before (git worktree)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--django-git", type=Path, default=None,
                    help="a git dir of django for the branch-switch rounds (skipped without it)")
    ap.add_argument("--switch-runs", type=int, default=1)
    ap.add_argument("--skip", action="append", default=[], choices=["stdlib", "switch"])
    ap.add_argument("--tree", type=Path, default=None,
                    help="index this tree in place instead of a copy of the standard library (e.g. the"
                         " monorepo corpus of scale_bench.py; its result goes under the tree's name)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--plot", type=Path, nargs=2, metavar=("JSON", "PNG"),
                    help="only draw lines/s per phase (the stdlib or --tree's) and the switch's phases from a result file")
    args = ap.parse_args()
    if args.plot:
        plot(*args.plot)
        return
    variants = {"before": args.before.resolve(), "after": ROOT}
    commits = {k: subprocess.run(["git", "-C", str(v), "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip() for k, v in variants.items()}
    out: dict = {"commits": commits, "cores": os.cpu_count(), "loadavg_start": os.getloadavg(),
                 "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    print(json.dumps(out), flush=True)
    with tempfile.TemporaryDirectory(prefix="index_ab_") as tmp:
        if "stdlib" not in args.skip:
            tree = args.tree.resolve() if args.tree else None
            label = tree.name if tree else "stdlib"
            out[label] = s = tree_rounds(Path(tmp), variants, args.runs, tree, label)
            for v in variants:
                s[v]["vs_ctags_wall"] = s[v]["wall_s"] / max(s["ctags"]["wall_s"], 0.01)
                s[v]["vs_ctags_cpu"] = s[v]["cpu_s"] / max(s["ctags"]["cpu_s"], 0.01)
            s["speedup_wall"] = s["before"]["wall_s"] / s["after"]["wall_s"]
            s["speedup_cpu"] = s["before"]["cpu_s"] / s["after"]["cpu_s"]
        if "switch" not in args.skip and args.django_git is not None and args.django_git.exists():
            out["switch"] = w = switch_rounds(Path(tmp), variants, args.django_git, args.switch_runs)
            w["speedup_wall"] = w["before"]["wall_s"] / w["after"]["wall_s"]
            w["speedup_cpu"] = w["before"]["cpu_s"] / w["after"]["cpu_s"]
    out["loadavg_end"] = os.getloadavg()
    out["ended"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    text = json.dumps(out, indent=1, default=str)
    print(text)
    if args.out:
        args.out.write_text(text)


def plot(src: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = json.loads(src.read_text())
    label = next(k for k, v in d.items() if isinstance(v, dict) and "ctags" in v)  # stdlib, or --tree's name
    s = d[label]
    phases = ["parse", "store", "graph"]
    fig, axes = plt.subplots(1, 2 if "switch" in d else 1, figsize=(11 if "switch" in d else 6, 4), squeeze=False)
    a, b = axes[0][0], axes[0][-1]
    x = range(len(phases) + 1)
    for i, v in enumerate(("before", "after")):
        vals = [s[v]["lines"] / max(s[v]["phases"][p], 1e-9) / 1000 for p in phases]
        vals.append(s[v]["lines_per_s"] / 1000)
        a.bar([j + i * 0.4 for j in x], vals, width=0.4, label=f"{v} ({d['commits'][v]})")
    a.axhline(150, color="red", ls="--", lw=1, label="target: whole index 150k lines/s")
    a.set_xticks([j + 0.2 for j in x], [*phases, "whole index"])
    a.set_ylabel("thousand lines / s (wall)")
    a.set_title(f"{label} full index --no-embed, load {d['loadavg_start'][0]:.0f}-{d['loadavg_end'][0]:.0f}")
    a.legend(fontsize=8)
    if "switch" in d:
        w = d["switch"]
        for i, v in enumerate(("before", "after")):
            left = 0.0
            for p, c in zip(("walk", "parse", "store", "graph"), ("gray", "C0", "C1", "C2"), strict=True):
                val = w[v]["phases"][p]
                b.barh(i, val, left=left, color=c, label=p if i == 0 else None)
                left += val
        b.axvline(15, color="red", ls="--", lw=1, label="target 15 s")
        b.set_yticks([0, 1], [f"before {d['commits']['before']}", f"after {d['commits']['after']}"])
        b.set_xlabel("seconds (wall)")
        b.set_title(f"django branch switch ({w['files_changed_between']} files differ)")
        b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


if __name__ == "__main__":
    main()
