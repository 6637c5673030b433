"""Parser throughput on the Python standard library, against universal-ctags in the same run.

    nice .venv/bin/python benchmarks/parse_bench.py [--reps 3] [--root DIR]

Each repetition runs, in turn: ctags (symbols only, one process), tree-sitter parsing alone (no
extraction), `parse_source` in one process (symbols, references, chunks), and `parse_source` over a
pool of 2 worker processes (how the indexing pipeline runs it). Prints medians, files/s and the
ratios to ctags and to bare parsing.

On a shared machine wall time swings with the load, so the single-process steps are also
measured in CPU seconds (`process_time`, and the children's rusage for ctags), which the load
disturbs far less; the pool is measured in wall seconds only.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repoloop.indexer.parse.parser import _compiled, parse_source  # noqa: E402


def _files(root: Path) -> list[Path]:
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in ("site-packages", "__pycache__"))
        out.extend(Path(d) / f for f in sorted(files) if f.endswith(".py"))
    return out


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _parse_many(items: list[tuple[str, bytes]]) -> tuple[int, int, int]:
    s = r = c = 0
    for rel, src in items:
        p = parse_source(rel, src, "python")
        s, r, c = s + len(p.symbols), r + len(p.refs), c + len(p.chunks)
    return s, r, c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--root", default=sysconfig.get_paths()["stdlib"])
    args = ap.parse_args()
    root = Path(args.root)
    files = _files(root)
    data = [(f.relative_to(root).as_posix(), f.read_bytes()) for f in files]
    n_lines = sum(src.count(b"\n") for _, src in data)
    parser = _compiled("python").parser
    times: dict[str, list[float]] = {"ctags": [], "ts_parse": [], "parse_source": [], "parse_source_2proc": []}
    cpu: dict[str, list[float]] = {"ctags": [], "ts_parse": [], "parse_source": []}
    counts: dict[str, int] = {}
    chunks_of = [data[i::8] for i in range(8)]
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_parse_many, [data[:2], data[2:4]]))  # warm the workers
        for _ in range(args.reps):
            t, c0 = time.perf_counter(), _children_cpu()
            out = subprocess.run(
                ["ctags", "-R", "-f", "-", "--languages=Python", "--exclude=site-packages", str(root)],
                capture_output=True, check=True,
            ).stdout
            times["ctags"].append(time.perf_counter() - t)
            cpu["ctags"].append(_children_cpu() - c0)
            counts["ctags_tags"] = out.count(b"\n")

            t, c0 = time.perf_counter(), time.process_time()
            for _, src in data:
                parser.parse(src)
            times["ts_parse"].append(time.perf_counter() - t)
            cpu["ts_parse"].append(time.process_time() - c0)

            t, c0 = time.perf_counter(), time.process_time()
            s, r, c = _parse_many(data)
            times["parse_source"].append(time.perf_counter() - t)
            cpu["parse_source"].append(time.process_time() - c0)
            counts.update(symbols=s, refs=r, chunks=c)

            t = time.perf_counter()
            list(pool.map(_parse_many, chunks_of))
            times["parse_source_2proc"].append(time.perf_counter() - t)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{len(data)} files, {n_lines} lines under {root}; {args.reps} reps, medians; os.cpu_count()={os.cpu_count()}")
    for k, v in med.items():
        print(f"  {k:20} {v:7.2f} s  {len(data) / v:7.0f} files/s  x{v / med['ctags']:.1f} ctags  "
              f"x{v / med['ts_parse']:.2f} bare parse   (runs: {', '.join(f'{x:.2f}' for x in times[k])})")
    print("  CPU seconds (single process):")
    mc = {k: statistics.median(v) for k, v in cpu.items()}
    for k, v in mc.items():
        print(f"  {k:20} {v:7.2f} s  {len(data) / v:7.0f} files/s  x{v / mc['ctags']:.1f} ctags  "
              f"x{v / mc['ts_parse']:.2f} bare parse   (runs: {', '.join(f'{x:.2f}' for x in cpu[k])})")
    print(f"  counts: {counts}")


if __name__ == "__main__":
    main()
