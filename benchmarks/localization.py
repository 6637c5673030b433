"""Localization benchmark: the BM25 whole-file baseline vs repoloop's signals alone and fused.

Two datasets (see /work/shared/bench/README.md and SWEBENCH_DEV.md):
  dev  dev.jsonl: flask, requests, vue core at a fixed HEAD; query = commit subject (or message)
  swe  swebench_verified_dev.jsonl: 407 issues, 12 Python repos, each at its base commit, visited in
       commit-date order with one incrementally moved (and incrementally re-indexed) tree per repo

    python benchmarks/localization.py swe --systems baseline,bm25,name,graph,fused --no-embed
    python benchmarks/localization.py swe --systems dense,fused --sample dense
    python benchmarks/localization.py dev --systems baseline,bm25,dense,name,graph,fused
    python benchmarks/localization.py swe --snapshots DIR --no-embed --max-per-repo 5   # build snapshots
    python benchmarks/localization.py swe --from-snapshots DIR --systems baseline,bm25,fused-lex
    python benchmarks/localization.py report

Per-query rows are appended to OUT/<dataset>[-<tag>]_<system>.jsonl as they come (a restarted run
skips what is there), so a stop loses nothing; `report` prints the tables. repoloop is called
in-process (index_repo, Retriever.search) for the metrics; `--cli-sample N` also times N real
`repoloop search` CLI calls per repo for the latency figures.

Snapshots (benchmarks/loc_snapshots.py): `--snapshots DIR` only builds, moving each repo's tree
(under --trees) to each sampled instance's base commit in date order, indexing incrementally, and
saving a copy of the index per instance in DIR/<instance_id>/; `--from-snapshots DIR` then queries
every snapshot there with the code at hand (tag `swe-snap[-TAG]`; the baseline is measured in the
same run, from git blobs). Ranking changes then cost a query run, not a re-index.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loc_metrics as M  # noqa: E402
from loc_bm25 import BM25Files  # noqa: E402
from materialize import (  # noqa: E402
    BENCH_DIR,
    BlobReader,
    WorkTree,
    checkout_name,
    commit_time,
    git_dir,
    load_jsonl,
    ls_tree,
    materialize_dev,
)

WORK = Path(os.environ.get("BENCH_WORK") or Path(__file__).resolve().parent / "out")  # checkouts, indexes
OUT = Path(os.environ.get("BENCH_OUT") or WORK / "results")
REPOLOOP_SYSTEMS = ("bm25", "file", "dense", "name", "graph", "trace", "fused", "fused-lex",
                    "lex-nofile", "fused-rerank", "locate-lex", "locate", "locate-rerank")
DEV_CODE_EXT = (".py", ".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".vue",
                ".go", ".rs", ".java", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh")  # commit sets
SPLIT_FILE = Path(__file__).resolve().parent / "loc_split.json"
COMMIT_SETS = Path(__file__).resolve().parent / "commit_sets"


def split_repos(dataset: str, part: str) -> set[str] | None:
    """The repositories of one part ("tuning" / "held_out") of the fixed split (loc_split.json);
    None for "all"."""
    if part in ("", "all"):
        return None
    return set(json.loads(SPLIT_FILE.read_text())[dataset][part])


def dev_records(data: str) -> list[dict]:
    """dev.jsonl (default), "commit" (dev.jsonl + every benchmarks/commit_sets/*.jsonl), or paths."""
    if not data:
        return load_jsonl(BENCH_DIR / "dev.jsonl")
    paths: list[Path] = []
    for item in data.split(","):
        if item == "commit":
            paths += [BENCH_DIR / "dev.jsonl", *sorted(COMMIT_SETS.glob("*.jsonl"))]
        else:
            paths.append(Path(item))
    return [r for p in paths for r in load_jsonl(p)]


class Sink:
    """Append-only per-system result files; knows which ids are done."""

    def __init__(self, dataset: str, system: str) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        self.path = OUT / f"{dataset}_{system}.jsonl"
        self.done = {json.loads(x)["id"] for x in self.path.open()} if self.path.exists() else set()

    def write(self, row: dict) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        self.done.add(row["id"])


def swe_sample(records: list[dict], kind: str, seed: int = 0) -> list[dict]:
    """'all', or 'dense': every instance of the small repos plus a seeded few of each big one."""
    if kind == "all":
        return records
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_repo[r["repo"]].append(r)
    # Embedding runs at ~2-15 chunks/s on this shared 2-core machine: only repos whose trees embed in
    # minutes are taken whole; the big ones (django ~30k chunks) are out of reach here.
    small = {"psf/requests", "pallets/flask", "mwaskom/seaborn"}
    big_n: dict[str, int] = {}
    rng = random.Random(seed)
    out = []
    for repo, rs in sorted(by_repo.items()):
        rs = sorted(rs, key=lambda r: r["id"])
        out.extend(rs if repo in small else rng.sample(rs, min(big_n.get(repo, 0), len(rs))))
    return out


def window_per_repo(records: list[dict], n: int, seed: int) -> list[dict]:
    """Per repo, n instances CONSECUTIVE in base-commit date from a seeded random start: nearby base
    commits differ by few files (django: median 25 .py files between neighbours), so an embedded
    index follows the window by re-embedding only what changed. For dense runs on a CPU."""
    import loc_snapshots

    out = []
    for repo, rs in loc_snapshots.date_order(records):
        start = random.Random(f"{seed}:{repo}").randrange(max(1, len(rs) - n + 1))
        out.extend(rs[start : start + n])
    return out


def cap_per_repo(records: list[dict], n: int, seed: int) -> list[dict]:
    """At most n instances per repo, a seeded random choice (fewer, larger tree moves when time is short)."""
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_repo[r["repo"]].append(r)
    out = []
    for repo, rs in sorted(by_repo.items()):
        rs = sorted(rs, key=lambda r: r["id"])
        random.Random(f"{seed}:{repo}").shuffle(rs)  # a smaller cap is a prefix of a bigger one
        out.extend(rs[:n])
    return out


def make_repoloop(systems: list[str]):
    import loc_grid
    import loc_repoloop

    return loc_repoloop.RepoloopRunner(systems, weights=loc_grid.base_weights())


def cli_check(a: argparse.Namespace, sinks: dict, tag: str, rec: dict, root: Path, n_done: int,
              inproc: dict[str, list[dict] | None], score, runner=None) -> None:  # noqa: ANN001
    """Time a real `repoloop search` CLI call for the first --cli-sample queries of a repo."""
    if n_done >= a.cli_sample:
        return
    import loc_repoloop

    for s in a.cli_systems.split(","):
        if s not in inproc:
            continue
        key = f"cli-{s}"
        if key not in sinks:
            sinks[key] = Sink(tag, key)
        if rec["id"] in sinks[key].done:
            continue
        res, dt = loc_repoloop.cli_search(root, rec[a.query_field], s,
                                          idx=runner.index_dir(root) if runner else None,
                                          signals=runner.signals if runner else None)
        row = score(rec, res)
        same = res is not None and inproc[s] is not None and [r["path"] for r in res] == [r["path"] for r in inproc[s]]
        row.update(latency_s=dt, same_as_inprocess=same)
        sinks[key].write(row)


def log_run() -> None:
    """Which code a run measured: the project is edited while benchmarks run, so record HEAD and
    whether repoloop/ had uncommitted changes when this process imported it."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "repoloop"], cwd=root, capture_output=True,
                           text=True).stdout.count("\n")
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "runs.log").open("a") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} HEAD={head.strip()} dirty_files={dirty} argv={sys.argv[1:]}\n")


def run_swe(a: argparse.Namespace) -> None:
    log_run()
    records = load_jsonl(BENCH_DIR / "swebench_verified_dev.jsonl")
    if a.repos:
        records = [r for r in records if r["repo"] in a.repos.split(",")]
    if (part := split_repos("swe", a.split)) is not None:
        records = [r for r in records if r["repo"] in part]
    records = swe_sample(records, a.sample, a.seed)
    if a.max_per_repo:
        records = cap_per_repo(records, a.max_per_repo, a.seed)
    if getattr(a, "window", 0):
        records = window_per_repo(records, a.window, a.seed)
    if a.limit:
        records = records[: a.limit]
    if a.snapshots:
        import loc_snapshots

        trees = Path(a.trees) if a.trees else WORK / ("swe-real-trees" if a.no_embed else "swe-real-dense-trees")
        loc_snapshots.build(records, Path(a.snapshots), trees, embed=not a.no_embed)
        return
    if a.from_snapshots:
        run_swe_snapshots(a, records)
        return
    tag = f"swe-{a.tag}" if a.tag else "swe"
    systems = a.systems.split(",")
    sinks = {s: Sink(tag, s) for s in systems}
    rl_systems = [s for s in systems if s.split("@")[0] in REPOLOOP_SYSTEMS]
    runner = make_repoloop(rl_systems) if rl_systems else None
    index_log = Sink(tag, "index")
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_repo[r["repo"]].append(r)
    order = sorted(by_repo, key=lambda repo: len(by_repo[repo]))  # small repos first: results come early
    for repo in order:
        todo = [r for r in by_repo[repo] if any(r["id"] not in sinks[s].done for s in systems)]
        if not todo:
            continue
        gd = git_dir(repo)
        todo.sort(key=lambda r: commit_time(gd, r["base_commit"]))
        wt = WorkTree(gd, WORK / f"{tag}-trees" / checkout_name(repo))
        bm25 = None
        n_cli = 0
        with BlobReader(gd) as blobs:
            for rec in todo:
                c = rec["base_commit"]
                if "baseline" in systems and rec["id"] not in sinks["baseline"].done:
                    if bm25 is None:
                        bm25 = BM25Files(blobs.read)
                    t0 = time.perf_counter()
                    bm25.set_docs((e.path, e.sha) for e in ls_tree(gd, c) if M.is_swe_candidate(e.path))
                    t1 = time.perf_counter()
                    ranked = bm25.rank(rec["query"])[:20]
                    t2 = time.perf_counter()
                    row = M.score_swe(rec, [{"path": p, "score": s} for p, s in ranked])
                    row.update(latency_s=t2 - t1, index_s=t1 - t0)
                    sinks["baseline"].write(row)
                if runner is None or all(rec["id"] in sinks[s].done for s in rl_systems):
                    continue
                t0 = time.perf_counter()
                moved = wt.move_to(c)
                t1 = time.perf_counter()
                stats = runner.index(wt.root, embed=not a.no_embed)
                t2 = time.perf_counter()
                index_log.write({"id": rec["id"], "repo": repo, "moved_paths": moved, "move_s": t1 - t0,
                                 "index_s": t2 - t1, "stats": stats})
                inproc = {}
                for s in rl_systems:
                    if rec["id"] in sinks[s].done:
                        continue
                    res, lat = runner.search(wt.root, rec["query"], s, k=20)
                    inproc[s] = res
                    row = M.score_swe(rec, res)
                    row["latency_s"] = lat
                    sinks[s].write(row)
                cli_check(a, sinks, tag, rec, wt.root, n_cli, inproc, M.score_swe)
                n_cli += 1
                print(f"[{time.strftime('%H:%M:%S')}] {rec['id']} moved={moved} index={t2 - t1:.1f}s",
                      flush=True)
        if runner is not None:
            runner.forget(wt.root)
        print(f"[{time.strftime('%H:%M:%S')}] done {repo}", flush=True)


def run_swe_snapshots(a: argparse.Namespace, records: list[dict]) -> None:
    """Query every snapshot of the selected records with the code at hand; the baseline from git."""
    import loc_repoloop
    import loc_snapshots

    snaps = loc_snapshots.load(Path(a.from_snapshots))
    records = [r for r in records if r["id"] in snaps]
    stale = loc_snapshots.check_fingerprint({r["id"]: snaps[r["id"]] for r in records})
    if stale:
        print(f"warning: {len(stale)} snapshots were parsed by other parser code than this one's"
              f" (e.g. {stale[0]}): ranking is current, the index rows are not", file=sys.stderr)
    with (OUT / "runs.log").open("a") as f:
        f.write(f"  snapshots={a.from_snapshots} n={len(records)} stale_parser={len(stale)}\n")
    tag = "swe-snap" + (f"-{a.tag}" if a.tag else "")
    systems = a.systems.split(",")
    sinks = {s: Sink(tag, s) for s in systems}
    rl_systems = [s for s in systems if s.split("@")[0] in REPOLOOP_SYSTEMS]
    runner = loc_repoloop.RepoloopRunner(rl_systems)  # the shipped weights (variants relative to them)
    runner.signals["fused-lex"] = loc_repoloop.lexical_signals()
    index_log = Sink(tag, "index")
    for repo, recs in loc_snapshots.date_order(records):
        gd = git_dir(repo)
        bm25 = None
        n_cli = 0
        with BlobReader(gd) as blobs:
            for rec in recs:
                snap = snaps[rec["id"]]
                if rec["id"] not in index_log.done:
                    m = snap.meta
                    index_log.write({"id": rec["id"], "repo": repo, "moved_paths": m["moved_paths"],
                                     "move_s": m["move_s"], "index_s": m["index_s"], "stats": m["stats"]})
                if "baseline" in systems and rec["id"] not in sinks["baseline"].done:
                    if bm25 is None:
                        bm25 = BM25Files(blobs.read)
                    t0 = time.perf_counter()
                    bm25.set_docs((e.path, e.sha) for e in ls_tree(gd, rec["base_commit"])
                                  if M.is_swe_candidate(e.path))
                    t1 = time.perf_counter()
                    ranked = bm25.rank(rec["query"])[:20]
                    row = M.score_swe(rec, [{"path": p, "score": s} for p, s in ranked])
                    row.update(latency_s=time.perf_counter() - t1, index_s=t1 - t0)
                    sinks["baseline"].write(row)
                todo = [s for s in rl_systems if rec["id"] not in sinks[s].done]
                runner.index_dirs[snap.root] = snap.index_dir
                inproc = {}
                for s in todo:
                    res, lat = runner.search(snap.root, rec["query"], s, k=20)
                    inproc[s] = res
                    row = M.score_swe(rec, res)
                    row["latency_s"] = lat
                    sinks[s].write(row)
                if todo or a.cli_sample:
                    cli_check(a, sinks, tag, rec, snap.root, n_cli, inproc, M.score_swe, runner)
                n_cli += 1
                runner.forget(snap.root)
        print(f"[{time.strftime('%H:%M:%S')}] done {repo} ({len(recs)} snapshots)", flush=True)


def run_dev(a: argparse.Namespace) -> None:
    log_run()
    records = dev_records(a.data)
    if a.repos:
        records = [r for r in records if r["repo"] in a.repos.split(",")]
    if (part := split_repos("commit", a.split)) is not None:
        records = [r for r in records if r["repo"] in part]
    if a.max_per_repo:
        records = cap_per_repo(records, a.max_per_repo, a.seed)
    field = a.field
    tag = f"dev-{field}" + (f"-{a.tag}" if a.tag else "")
    systems = a.systems.split(",")
    sinks = {s: Sink(tag, s) for s in systems}
    rl_systems = [s for s in systems if s.split("@")[0] in REPOLOOP_SYSTEMS]
    runner = make_repoloop(rl_systems) if rl_systems else None
    index_log = Sink(tag, "index")
    dirs = materialize_dev(WORK / "dev", records)
    for repo, root in dirs.items():
        recs = [r for r in records if r["repo"] == repo]
        if "baseline" in systems:
            gd = git_dir(repo)
            with BlobReader(gd) as blobs:
                bm25 = BM25Files(blobs.read)
                t0 = time.perf_counter()
                bm25.set_docs((e.path, e.sha) for e in ls_tree(gd, recs[0]["head"])
                              if e.path.endswith(DEV_CODE_EXT))
                idx_s = time.perf_counter() - t0
                for rec in recs:
                    if rec["id"] in sinks["baseline"].done:
                        continue
                    t1 = time.perf_counter()
                    ranked = bm25.rank(rec[field])[:20]
                    row = M.score_dev(rec, [{"path": p, "score": s} for p, s in ranked])
                    row.update(latency_s=time.perf_counter() - t1, index_s=idx_s)
                    sinks["baseline"].write(row)
        if runner is None:
            continue
        todo = [r for r in recs if any(r["id"] not in sinks[s].done for s in rl_systems)]
        if not todo:
            continue
        t0 = time.perf_counter()
        stats = runner.index(root, embed=not a.no_embed)
        index_log.write({"id": repo, "repo": repo, "index_s": time.perf_counter() - t0, "stats": stats})
        print(f"[{time.strftime('%H:%M:%S')}] indexed {repo} in {time.perf_counter() - t0:.1f}s", flush=True)
        for n, rec in enumerate(todo):
            inproc = {}
            for s in rl_systems:
                if rec["id"] in sinks[s].done:
                    continue
                res, lat = runner.search(root, rec[field], s, k=20)
                inproc[s] = res
                row = M.score_dev(rec, res)
                row["latency_s"] = lat
                sinks[s].write(row)
            cli_check(a, sinks, tag, rec, root, n, inproc, M.score_dev)
        runner.forget(root)


def _fmt(v, pct=True) -> str:
    if v is None:
        return "–"
    return f"{100 * v:.1f}" if pct else f"{v:.3f}"


def report(a: argparse.Namespace) -> None:
    """Markdown tables from whatever result files exist (partial runs included, with their n)."""
    files = sorted(OUT.glob("*.jsonl"))
    groups: dict[str, dict[str, list[dict]]] = defaultdict(dict)
    keep = _id_filter(a)
    parts = {d: split_repos(d, a.split) for d in ("swe", "commit")} if a.split else {}
    for f in files:
        head, at, variant = f.stem.partition("@")  # variants may hold "_" (rerank_files=20)
        tag, system = head.rsplit("_", 1)
        system += at + variant
        if a.tags and tag not in a.tags.split(","):
            continue
        if a.systems and system not in a.systems.split(",") + ["index", "baseline"]:
            continue
        rows = {}
        for x in f.open():  # one row per id (parallel runs may both answer one)
            r = json.loads(x)
            part = parts.get("swe" if tag.startswith("swe") else "commit") if parts else None
            if keep(r["id"]) and (part is None or r.get("repo", r["id"]) in part):
                rows.setdefault(r["id"], r)
        groups[tag][system] = list(rows.values())
    order = ["baseline", "bm25", "file", "name", "graph", "trace", "dense", "lex-nofile", "fused-lex", "fused",
             "fused-rerank", "locate-lex", "locate", "locate-rerank"]

    def sortkey(s: str) -> tuple:
        b = s.removeprefix("cli-").split("@")[0]
        return (s.startswith("cli-"), order.index(b) if b in order else 99, s)

    base_file = OUT / "swe_baseline.jsonl"
    all_base = [json.loads(x) for x in base_file.open()] if base_file.exists() else []
    drawn: dict[str, dict[str, dict]] = {}  # tag -> system -> aggregate (for --plot)
    for tag, systems in sorted(groups.items()):
        swe = tag.startswith("swe")
        if swe and "baseline" not in systems and all_base:
            # The baseline over all 407 ran once (tag "swe"); compare on this group's instances.
            ids = {r["id"] for s, rows in systems.items() if s != "index" for r in rows}
            systems["baseline"] = [r for r in all_base if r["id"] in ids]
        metrics = M.SWE_METRICS if swe else M.DEV_METRICS
        idx = systems.pop("index", [])
        print(f"\n### {tag}\n")
        base_ids = None
        if a.common and len(systems) > 1:
            base_ids = set.intersection(*({r["id"] for r in rows} for s, rows in systems.items()
                                          if not s.startswith("cli-")))
        hdr = ["system", "n", *metrics, "p50 ms", "p95 ms", "errors"]
        print("| " + " | ".join(hdr) + " |")
        print("|" + "---|" * len(hdr))
        for s in sorted(systems, key=sortkey):
            rows = systems[s] if base_ids is None or s.startswith("cli-") else [
                r for r in systems[s] if r["id"] in base_ids]
            g = M.aggregate(rows, metrics)
            drawn.setdefault(tag, {})[s] = g
            cells = [s, str(g["n"])]
            for m in metrics:
                cells.append(_fmt(g[m], pct=(m != "mrr")))
            cells += [f"{g.get('lat_p50_ms', float('nan')):.1f}", f"{g.get('lat_p95_ms', float('nan')):.1f}",
                      str(g["errors"])]
            print("| " + " | ".join(cells) + " |")
        if a.by_lang and not swe:
            _by_lang(systems, base_ids)
        if a.by_repo:
            for s in sorted(systems, key=sortkey):
                by = defaultdict(list)
                for r in systems[s]:
                    by[r["repo"]].append(r)
                line = ", ".join(f"{repo.split('/')[1]} {100 * M.aggregate(rs, ['acc@5'])['acc@5']:.0f} (n={len(rs)})"
                                 for repo, rs in sorted(by.items()))
                print(f"\n{s} Acc@5 by repo: {line}")
        if idx:
            by = defaultdict(list)
            for r in idx:
                by[r["repo"]].append(r["index_s"])
            print("\nindex seconds per repo (first build / median incremental):",
                  ", ".join(f"{repo.split('/')[1]} {v[0]:.1f}/{sorted(v[1:])[len(v[1:]) // 2] if len(v) > 1 else float('nan'):.1f}"
                            for repo, v in sorted(by.items())))
    if a.plot:
        _plot(drawn, a.plot)


def _plot(drawn: dict[str, dict[str, dict]], png: Path) -> None:
    """One panel per result group: Acc@1, Acc@5 and the symbol-level hit rate of each system."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tags = [t for t in drawn if drawn[t]]
    fig, axes = plt.subplots(1, len(tags), figsize=(4.5 * len(tags) + 1, 4), squeeze=False)
    for ax, tag in zip(axes[0], tags, strict=True):
        systems = [s for s in drawn[tag] if not s.startswith("cli-")]
        metrics = ["acc@1", "acc@5", "func@10" if tag.startswith("swe") else "symacc@10"]
        width = 0.8 / len(metrics)
        for j, m in enumerate(metrics):
            # whole-file BM25 names no symbols: no bar rather than a zero
            vals = [float("nan") if s == "baseline" and m != "acc@1" and m != "acc@5" else
                    100 * (drawn[tag][s].get(m) or 0) for s in systems]
            bars = ax.bar([i + j * width for i in range(len(systems))], vals, width, label=m)
            ax.bar_label(bars, fmt="%.0f", fontsize=7)
        n = max(drawn[tag][s]["n"] for s in systems)
        ax.set_title(f"{tag} (n={n})", fontsize=9)
        labels = [x if len(x) <= 24 else x[:23] + "…" for x in systems]
        ax.set_xticks([i + width * (len(metrics) - 1) / 2 for i in range(len(systems))], labels,
                      rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("% of instances")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


LANG = {"pallets/flask": "Python", "psf/requests": "Python", "vuejs/core": "TypeScript"}


def _lang_of(repo: str) -> str:
    if repo in LANG:
        return LANG[repo]
    for p in COMMIT_SETS.glob("*.jsonl"):
        for r in load_jsonl(p):
            LANG[r["repo"]] = {"go": "Go", "rust": "Rust", "java": "Java", "typescript": "TypeScript", "tsx": "TypeScript",
                               "javascript": "JavaScript", "c": "C", "cpp": "C++", "python": "Python"}.get(
                                   r.get("language") or "", r.get("language") or "?")
            break
    return LANG.get(repo, "?")


def _by_lang(systems: dict[str, list[dict]], base_ids: set[str] | None) -> None:
    """Acc@1 / Acc@5 / MRR / SymAcc@10 per language and repository, every system (same ids)."""
    print("\n| system | language | repo | n | Acc@1 | Acc@5 | MRR | SymAcc@10 (n) |")
    print("|---|---|---|---|---|---|---|---|")
    for s in sorted(systems):
        if s.startswith("cli-"):
            continue
        rows = [r for r in systems[s] if base_ids is None or r["id"] in base_ids]
        by: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for r in rows:
            by[(_lang_of(r["repo"]), r["repo"])].append(r)
            by[(_lang_of(r["repo"]), "(all)")].append(r)
        for (lang, repo), rs in sorted(by.items()):
            g = M.aggregate(rs, M.DEV_METRICS)
            print(f"| {s} | {lang} | {repo} | {g['n']} | {_fmt(g['acc@1'])} | {_fmt(g['acc@5'])} | "
                  f"{_fmt(g['mrr'], pct=False)} | {_fmt(g['symacc@10'])} ({g['symacc@10_n']}) |")


def _id_filter(a: argparse.Namespace):
    """`--ids FILE` keeps only the instance ids listed there (one per line), `--exclude-ids FILE`
    drops them: e.g. the instances a weight was tuned on vs the held-out rest."""
    def read(p: str) -> set[str]:
        return {x.strip() for x in Path(p).read_text().splitlines() if x.strip()} if p else set()

    only, drop = read(a.ids), read(a.exclude_ids)
    return lambda i: (not only or i in only) and i not in drop


def write_sample_ids(a: argparse.Namespace) -> None:
    """Print the ids of the seeded per-repo sample `--max-per-repo N` picks (`--cap REPO=N` overrides
    one repository's N), so a report can split tuned instances from held-out ones."""
    records = load_jsonl(BENCH_DIR / "swebench_verified_dev.jsonl")
    caps = dict(x.split("=") for x in a.cap)
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_repo[r["repo"]].append(r)
    for repo, rs in sorted(by_repo.items()):
        for r in cap_per_repo(rs, int(caps.get(repo, a.max_per_repo)), a.seed):
            print(r["id"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("swe", "dev"):
        p = sub.add_parser(name)
        p.add_argument("--systems", default="baseline,bm25,name,graph,fused")
        p.add_argument("--repos", default="")
        p.add_argument("--no-embed", action="store_true")
        p.add_argument("--tag", default="")
        p.add_argument("--limit", type=int, default=0)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--cli-sample", type=int, default=0, help="also time N real CLI calls per repo")
        p.add_argument("--cli-systems", default="fused")
        if name == "swe":
            p.add_argument("--sample", choices=["all", "dense"], default="all")
            p.add_argument("--max-per-repo", type=int, default=0, help="seeded sample of at most N per repo")
            p.add_argument("--window", type=int, default=0,
                           help="per repo, N instances consecutive in commit date from a seeded start (dense runs)")
            p.add_argument("--snapshots", default="", help="build per-instance index snapshots in DIR (no queries)")
            p.add_argument("--trees", default="", help="--snapshots: working trees and indexes here "
                                                       "(default BENCH_WORK/swe-real-trees, -dense-trees)")
            p.add_argument("--from-snapshots", default="", help="query the snapshots in DIR")
        else:
            p.add_argument("--field", choices=["query_subject", "query"], default="query_subject")
            p.add_argument("--data", default="", help='"commit": dev.jsonl + benchmarks/commit_sets/*.jsonl; '
                                                      "or jsonl paths (comma list); default dev.jsonl")
            p.add_argument("--max-per-repo", type=int, default=0, help="seeded sample of at most N per repo")
        p.add_argument("--split", choices=["all", "tuning", "held_out"], default="all",
                       help="only the repositories of this part of benchmarks/loc_split.json")
    p = sub.add_parser("report")
    p.add_argument("--common", action="store_true", help="only ids every system of a group answered")
    p.add_argument("--by-repo", action="store_true")
    p.add_argument("--tags", default="", help="only these result groups (comma list)")
    p.add_argument("--systems", default="", help="only these systems (comma list; baseline always)")
    p.add_argument("--ids", default="", help="only the instance ids listed in this file")
    p.add_argument("--exclude-ids", default="", help="leave out the instance ids listed in this file")
    p.add_argument("--split", choices=["tuning", "held_out"], default="",
                   help="only the repositories of this part of benchmarks/loc_split.json")
    p.add_argument("--by-lang", action="store_true", help="commit sets: per language and repository")
    p.add_argument("--plot", type=Path, metavar="PNG", help="also draw each group's headline metrics per system")
    p = sub.add_parser("sample-ids", help="print the ids a seeded --max-per-repo sample takes")
    p.add_argument("--max-per-repo", type=int, required=True)
    p.add_argument("--cap", action="append", default=[], metavar="REPO=N")
    p.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    a.query_field = getattr(a, "field", "query")
    {"swe": run_swe, "dev": run_dev, "report": report, "sample-ids": write_sample_ids}[a.cmd](a)


if __name__ == "__main__":
    main()
