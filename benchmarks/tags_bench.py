"""`repoloop tags` against universal-ctags and Aider's repo map on the same tree, in the same run.

    nice .venv/bin/python benchmarks/tags_bench.py --tree /work/benchdata/scale/stdlib \
        --aider /work/peers/aider-venv/bin/python --map --reps 3 --out benchmarks/scale_results/tags_stdlib.json

Each repetition runs every contender once, in turn (so a change of the machine's load hits all of
them alike), and the table gives medians of wall seconds and CPU seconds (user + system of the
whole process tree, from the kernel's rusage of waited-for children). Contenders:
- `ctags`: `ctags -R -f FILE --languages=Python .` (universal-ctags: definitions, in C, 1 process)
- `tags_j1`, `tags_j2`: `repoloop tags TREE -o FILE --jobs 1|2` (definitions, a ctags file)
- `tags_refs_j1`, `tags_refs_j2`: the same with `--refs` (what a repo map needs: definitions + references)
- `aider`: `benchmarks/aider_peer.py` in Aider's venv: `get_tags_raw` over every file (its tag
  extraction) then `get_ranked_tags_map` with a fresh cache (its repo map: extraction + ranking)
- `map` (with --map): `repoloop index --no-embed` on a fresh copy then `repoloop map`, i.e. repoloop's
  repo map from a cold tree.
repoloop runs from a frozen copy of the package (the working tree is shared and edited meanwhile).

`--plot A.json B.json --png FILE` draws the medians of earlier runs (CPU and wall, per tree).

`--breakdown` instead measures, in this process, the CPU seconds of each stage of the defs-only
path over the tree's Python files (one process, medians of --reps): where the time goes.
`--scanner-ab` measures Python definitions by the `pydefs` scanner (with its tree-sitter
fallbacks) against tree-sitter alone on the same bytes, and counts fallbacks and mismatches.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "benchmarks" / "aider_peer.py"


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, *,
          sample: bool = False) -> tuple[float, float, str]:
    """(wall s, CPU s of the process tree, stdout) of one command; fails loudly on a non-zero exit.

    rusage counts only descendants that were waited for: exact for ctags, `repoloop tags` (its pool
    workers are joined) and Aider, not for `repoloop index`, whose forkserver is never waited for.
    `sample` also polls the tree's CPU times with psutil (every 20 ms) and takes the larger figure."""
    c = _children_cpu()
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[tuple[int, float], float] = {}
    if sample:
        import psutil

        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                procs = []
            for p in procs:
                try:
                    ct = p.cpu_times()
                    seen[(p.pid, p.create_time())] = ct.user + ct.system
                except psutil.Error:
                    pass
            time.sleep(0.02)
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]}... failed ({proc.returncode}): {err[-2000:]}")
    return wall, max(_children_cpu() - c, sum(seen.values())), out


def freeze(dest: Path) -> Path:
    shutil.copytree(ROOT / "repoloop", dest / "repoloop", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def count_tags(path: Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if not line.startswith(b"!_TAG_"))


def breakdown(tree: Path, reps: int) -> dict:
    """CPU seconds per stage of `repoloop tags` (defs only, 1 process) over the tree's Python files."""
    from repoloop.indexer import walk as W
    from repoloop.indexer.parse.languages import module_name
    from repoloop.indexer.tags import extract as T
    from repoloop.indexer.tags.render import ctags_lines

    pc = time.process_time
    stages: dict[str, list[float]] = {}
    for _ in range(reps):
        acc = dict.fromkeys(("walk", "read", "parse", "defs", "free", "main: Tag objects + format + sort"), 0.0)
        c = pc()
        entries = [e for e in W.Walker(tree, W.WalkOptions(want=T.wanted, known_unchanged=T._no_sniff))
                   if e.path.endswith(".py")]
        acc["walk"] = pc() - c
        comp = T._compiled("python", False)
        res = T.TagsResult()
        for e in entries:
            c0 = pc()
            with open(e.abspath, "rb") as f:
                data = f.read()
            W.classify_head(data[: W.HEAD_BYTES])
            data = data.decode("utf-8", "replace").encode()
            c1 = pc()
            tree_ = comp.parser.parse(data)
            c2 = pc()
            rows = T._python_rows(comp.handler, tree_.root_node, module_name(e.path, "python"), data)
            c3 = pc()
            del tree_
            c4 = pc()
            T._add(res, e.path, rows)
            c5 = pc()
            acc["read"] += c1 - c0
            acc["parse"] += c2 - c1
            acc["defs"] += c3 - c2
            acc["free"] += c4 - c3
            acc["main: Tag objects + format + sort"] += c5 - c4
        c = pc()
        n = sum(1 for _ in ctags_lines(res))
        acc["main: Tag objects + format + sort"] += pc() - c
        for k, v in acc.items():
            stages.setdefault(k, []).append(v)
    med = {k: statistics.median(v) for k, v in stages.items()}
    total = sum(med.values())
    print(f"{len(entries)} Python files, {n} lines; CPU s (median of {reps}), share of the total {total:.2f} s:")
    for k, v in med.items():
        print(f"| {k} | {v:.2f} | {100 * v / total:.0f} % |")
    return {"files": len(entries), "cpu_s": med, "total_cpu_s": total}


def plot(paths: list[Path], png: Path) -> None:
    """Bars per contender (CPU s and wall s, log scale), one panel per tree."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [json.loads(p.read_text()) for p in paths]
    fig, axes = plt.subplots(1, len(runs), figsize=(6.5 * len(runs), 4.2), squeeze=False)
    for ax, r in zip(axes[0], runs, strict=True):
        med = r["median"]
        bars: dict[str, tuple[float, float]] = {}
        names = {"ctags": "ctags -R", "tags_j1": "repoloop tags\n1 proc", "tags_j2": "repoloop tags\n2 procs",
                 "tags_refs_j1": "tags --refs\n1 proc", "tags_refs_j2": "tags --refs\n2 procs"}
        for k, label in names.items():
            if k in med:
                bars[label] = (med[k]["cpu_s"], med[k]["wall_s"])
        if "aider" in med:
            a = med["aider"]
            bars["Aider\nget_tags_raw"] = (a["extract_cpu_s"], a["extract_s"])
            bars["Aider\nrepo map"] = (a["map_cpu_s"], a["map_s"])
        if "map" in med:
            bars["repoloop index\n+ map (cold)"] = (med["map"]["cpu_s"], med["map"]["wall_s"])
        xs = range(len(bars))
        ax.bar([x - 0.2 for x in xs], [v[0] for v in bars.values()], 0.4, label="CPU s")
        ax.bar([x + 0.2 for x in xs], [v[1] for v in bars.values()], 0.4, label="wall s")
        ax.set_xticks(list(xs), list(bars), fontsize=6.5)
        ax.set_yscale("log")
        ax.set_ylabel("seconds (log)")
        load = f"load {min(r['load']):.0f}-{max(r['load']):.0f}"
        ax.set_title(f"{Path(r['tree']).name}: medians of {r['reps']}, 2 cores, {load}", fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def walk_ab(tree: Path, reps: int) -> dict:
    """CPU of finding + naming Python definitions on already-parsed trees: the statement walk
    (what `repoloop tags` does) against the handler's definitions query (the generic path)."""
    from repoloop.indexer.tags import extract as T

    files = [(str(p.relative_to(tree)), p.read_bytes().decode("utf-8", "replace").encode())
             for p in sorted(tree.rglob("*.py")) if p.is_file()]
    orig = T._compiled
    real = orig("python", False)
    trees = [real.parser.parse(d) for _, d in files]

    class Replay:  # hands back the parsed trees, so that only extraction is timed
        def __init__(self) -> None:
            self.i = -1

        def parse(self, _data: bytes):  # noqa: ANN202 - a tree_sitter Tree
            self.i += 1
            return trees[self.i]

    out: dict[str, list[float]] = {"walk": [], "query": []}
    try:
        for _ in range(reps):
            for name, refs in (("walk", False), ("query", True)):  # refs=True takes the query path;
                fake = T._Compiled(real.handler, Replay(), real.query)  # this query has no ref pattern
                T._compiled = lambda _lang, _refs, fake=fake: fake
                c = time.process_time()
                n = sum(len(T.extract_file(f, d, "python", refs=refs)[0]) for f, d in files)
                out[name].append(time.process_time() - c)
    finally:
        T._compiled = orig
    med = {k: statistics.median(v) for k, v in out.items()}
    print(f"{len(files)} files, {n} definitions; CPU s median of {reps}: walk {med['walk']:.2f}, "
          f"query {med['query']:.2f} ({med['query'] / med['walk']:.2f}x)")
    return {"files": len(files), "defs": n, "cpu_s": med}


def scanner_ab(tree: Path, reps: int) -> dict:
    """Python definitions, one process, on the same bytes: tree-sitter (`parse` + statement walk +
    freeing the tree: the path before `pydefs`) against the scanner (`pydefs.scan`, plus tree-sitter
    for the files it falls back on: what `extract_file` does now). Also checks parity: wherever
    the scanner answers, its rows must equal tree-sitter's (mismatches are reported, never hidden)."""
    from repoloop.indexer import walk as W
    from repoloop.indexer.parse.languages import module_name
    from repoloop.indexer.tags import extract as T
    from repoloop.indexer.tags import pydefs

    entries = [e for e in W.Walker(tree, W.WalkOptions(want=T.wanted, known_unchanged=T._no_sniff))
               if e.path.endswith(".py")]
    files = []
    for e in entries:
        data = Path(e.abspath).read_bytes()
        if W.classify_head(data[: W.HEAD_BYTES]):
            continue  # binary or minified: skipped by `repoloop tags` too
        files.append((module_name(e.path, "python"), data.decode("utf-8", "replace").encode(), e.path))
    comp = T._compiled("python", False)
    pydefs.warm()
    pc = time.process_time
    out: dict[str, list[float]] = {"tree_sitter": [], "scanner": []}
    fallback: list[str] = []
    mismatches: list[str] = []
    defs = 0
    for rep in range(reps):
        c = pc()
        for mod, data, _ in files:
            tree_ = comp.parser.parse(data)
            T._python_rows(comp.handler, tree_.root_node, mod, data)
            del tree_
        out["tree_sitter"].append(pc() - c)
        c = pc()
        for mod, data, _ in files:
            if pydefs.scan(data, mod) is None:
                tree_ = comp.parser.parse(data)
                T._python_rows(comp.handler, tree_.root_node, mod, data)
                del tree_
        out["scanner"].append(pc() - c)
        if rep == 0:  # parity, outside the timed loops
            for mod, data, path in files:
                got = pydefs.scan(data, mod)
                if got is None:
                    fallback.append(path)
                    continue
                defs += len(got)
                if got != T._python_rows(comp.handler, comp.parser.parse(data).root_node, mod, data):
                    mismatches.append(path)
    med = {k: statistics.median(v) for k, v in out.items()}
    mb = sum(len(d) for _, d, _ in files) / 1e6
    print(f"{len(files)} Python files ({mb:.1f} MB), {defs} definitions from the scanner; fallbacks "
          f"{len(fallback)} ({100 * len(fallback) / len(files):.1f} %), mismatches {len(mismatches)} "
          f"{mismatches[:5]}")
    print(f"CPU s, median of {reps}: tree-sitter parse+walk {med['tree_sitter']:.2f}, scanner (+ fallbacks) "
          f"{med['scanner']:.2f}: {med['tree_sitter'] / med['scanner']:.1f}x less")
    return {"files": len(files), "mb": mb, "defs": defs, "fallbacks": fallback, "mismatches": mismatches,
            "cpu_s": med, "runs": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, required=True, help="the tree to tag (e.g. a copy of the standard library)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--aider", default=None, help="python of a venv with aider-chat (skipped when absent)")
    ap.add_argument("--map", action="store_true", help="also repoloop's cold index --no-embed + map")
    ap.add_argument("--only", nargs="*", default=None, help="contenders to run (default: all)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--breakdown", action="store_true", help="CPU per stage, in-process, instead of the contest")
    ap.add_argument("--walk-ab", action="store_true", help="Python definitions: statement walk vs query (CPU)")
    ap.add_argument("--scanner-ab", action="store_true",
                    help="Python definitions: pydefs scanner (+ fallbacks) vs tree-sitter (CPU, parity)")
    ap.add_argument("--plot", nargs="+", type=Path, default=None, metavar="JSON", help="plot earlier runs")
    ap.add_argument("--png", type=Path, default=Path("benchmarks/tags_peers.png"))
    args = ap.parse_args()
    if args.plot:
        plot(args.plot, args.png)
        return
    tree = args.tree.resolve()
    if args.walk_ab:
        print(json.dumps(walk_ab(tree, args.reps)))
        return
    if args.scanner_ab:
        res = scanner_ab(tree, args.reps)
        if args.out:
            args.out.write_text(json.dumps(res, indent=1))
        return
    if args.breakdown:
        res = breakdown(tree, args.reps)
        if args.out:
            args.out.write_text(json.dumps(res, indent=1))
        return
    py = str(ROOT / ".venv" / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="tags_bench_") as tmp_s:
        tmp = Path(tmp_s)
        code = freeze(tmp / "code")
        env = dict(os.environ, PYTHONPATH=str(code))
        where = subprocess.run([py, "-c", "import repoloop; print(repoloop.__file__)"], cwd=code, env=env,
                               capture_output=True, text=True).stdout.strip()
        assert Path(where).resolve().is_relative_to(code.resolve()), where
        rl = [py, "-m", "repoloop.cli"]
        out = tmp / "tags"
        contenders: dict[str, tuple[list[str], Path]] = {
            "ctags": (["ctags", "-R", "-f", str(out), "--languages=Python", "."], tree),
            "tags_j1": ([*rl, "tags", str(tree), "-o", str(out), "--jobs", "1"], code),
            "tags_j2": ([*rl, "tags", str(tree), "-o", str(out), "--jobs", "2"], code),
            "tags_refs_j1": ([*rl, "tags", str(tree), "-o", str(out), "--jobs", "1", "--refs"], code),
            "tags_refs_j2": ([*rl, "tags", str(tree), "-o", str(out), "--jobs", "2", "--refs"], code),
        }
        if args.only is not None:
            contenders = {k: v for k, v in contenders.items() if k in args.only}
        aider_tree = tmp / "aider_tree"
        if args.aider and (args.only is None or "aider" in args.only):
            shutil.copytree(tree, aider_tree, symlinks=True)
        res: dict = {"tree": str(tree), "reps": args.reps, "cores": os.cpu_count(),
                     "commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                                              text=True).stdout.strip(),
                     "runs": {k: [] for k in [*contenders, "aider", "map"]}, "load": []}
        for rep in range(args.reps):
            res["load"].append(os.getloadavg()[0])
            for name, (cmd, cwd) in contenders.items():
                wall, cpu, _ = timed(cmd, cwd, env if cwd == code else None)
                n = count_tags(out)
                res["runs"][name].append({"wall_s": wall, "cpu_s": cpu, "tags": n})
                print(f"rep {rep} {name}: {wall:.2f} s wall, {cpu:.2f} s CPU, {n} lines", flush=True)
            if aider_tree.exists():
                wall, cpu, stdout = timed([args.aider, str(PEER), str(aider_tree)], tmp)
                a = json.loads(stdout.strip().splitlines()[-1])
                res["runs"]["aider"].append({**a, "wall_s": wall, "cpu_s": cpu})
                print(f"rep {rep} aider: extract {a['extract_s']:.2f} s ({a['extract_cpu_s']:.2f} CPU), map "
                      f"{a['map_s']:.2f} s ({a['map_cpu_s']:.2f} CPU), {a['tags']} tags", flush=True)
            if args.map:
                copy = tmp / f"map_tree{rep}"
                shutil.copytree(tree, copy, symlinks=True)
                w1, c1, _ = timed([*rl, "index", str(copy), "--no-embed"], code, env, sample=True)
                w2, c2, stdout = timed([*rl, "map", "--repo", str(copy)], code, env, sample=True)
                res["runs"]["map"].append({"index_s": w1, "index_cpu_s": c1, "map_s": w2, "map_cpu_s": c2,
                                           "wall_s": w1 + w2, "cpu_s": c1 + c2, "map_chars": len(stdout)})
                print(f"rep {rep} repoloop index+map: {w1:.2f} + {w2:.2f} s wall, {c1 + c2:.2f} s CPU", flush=True)
                shutil.rmtree(copy, ignore_errors=True)
        res["load"].append(os.getloadavg()[0])
    res["median"] = {k: {m: statistics.median(r[m] for r in v) for m in v[0] if isinstance(v[0][m], int | float)}
                     for k, v in res["runs"].items() if v}
    _report(res)
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))


def _report(res: dict) -> None:
    med = res["median"]
    print(f"\nmedians of {res['reps']} (load average {min(res['load']):.1f}-{max(res['load']):.1f}):")
    print("| contender | wall s | CPU s | tags |\n|---|---|---|---|")
    for k, m in med.items():
        print(f"| {k} | {m['wall_s']:.2f} | {m['cpu_s']:.2f} | {m.get('tags', '')} |")
    if "aider" in med:
        a = med["aider"]
        print(f"| aider get_tags_raw (in-process) | {a['extract_s']:.2f} | {a['extract_cpu_s']:.2f} | |")
        print(f"| aider repo map, fresh cache (in-process) | {a['map_s']:.2f} | {a['map_cpu_s']:.2f} | |")
    ratios = {}
    if "ctags" in med:
        c = med["ctags"]
        for k in ("tags_j1", "tags_j2"):
            if k in med:
                ratios[f"{k}_vs_ctags_wall"] = med[k]["wall_s"] / c["wall_s"]
                ratios[f"{k}_vs_ctags_cpu"] = med[k]["cpu_s"] / c["cpu_s"]
    if "aider" in med:
        a = med["aider"]
        for k in ("tags_refs_j1", "tags_refs_j2", "tags_j1", "tags_j2", "map"):
            if k in med:
                ratios[f"aider_map_vs_{k}_wall"] = a["map_s"] / med[k]["wall_s"]
                ratios[f"aider_map_vs_{k}_cpu"] = a["map_cpu_s"] / med[k]["cpu_s"]
                ratios[f"aider_extract_vs_{k}_wall"] = a["extract_s"] / med[k]["wall_s"]
    res["ratios"] = ratios
    for k, v in ratios.items():
        print(f"{k}: {v:.2f}")


if __name__ == "__main__":
    main()
