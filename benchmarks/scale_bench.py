"""Scale and speed on big trees, side by side with universal-ctags and Aider's repo map.

    nice .venv/bin/python benchmarks/scale_bench.py prepare [--data DIR]
    nice .venv/bin/python benchmarks/scale_bench.py run --corpus stdlib|mid|monorepo|big [--data DIR]
         [--aider PY] [--embed-sample N] [--out FILE.json]
    nice .venv/bin/python benchmarks/scale_bench.py embed --tree TREE --index-dir IDX [--sample N] [--sort-window W]
    nice .venv/bin/python benchmarks/scale_bench.py graph-agreement --tree TREE --index-dir IDX
    nice .venv/bin/python benchmarks/scale_bench.py cold-graph --tree TREE --index-dir IDX [--out FILE.json]
    nice .venv/bin/python benchmarks/scale_bench.py watch --pid PID --db IDX/index.db --out F.jsonl [--png P]
    .venv/bin/python benchmarks/scale_bench.py plot RESULT.json... --png benchmarks/scale.png
        (writes scale_peers.png, scale_phases.png, scale_reindex.png, scale_query.png)

Corpora (built by `prepare` from what every machine here has, no internet):
- `stdlib`: the machine's Python standard library without site-packages;
- `monorepo`: stdlib + this project's venv site-packages (torch, chromadb, transformers, ...) +
  the Django sdist from PyPI, source files only (native libraries and archives left out);
- `mid`: stdlib + the Django sdist + the `openai` package (~11k files), for the one-file
  re-index target on a 10,000-file repo.
- `big`: the monorepo + the packages of Aider's venv that this venv lacks + the sdists of
  ansible-core, salt, SQLAlchemy and mypy (~58k files), for the 50,000-file peak-RSS target.

`run` measures, on one corpus, in one run: full `repoloop index --no-embed` split by phase (walk,
parse, store, graph), files/s, symbols/s, peak RSS of the process tree, index size on disk;
re-index after 1, 10 and 100 changed files; cold CLI (`repoloop search --lexical`) and warm
in-process query latency; the embedding overhead (repoloop's embed phase over a sample of the
corpus' chunks versus the raw sentence-transformers `encode` of the same texts); universal-ctags
(`ctags -R`) and Aider's RepoMap (tag extraction, map building) on the same tree, and repoloop's
own single-process tag extraction (parse only) for the like-for-like ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import index_bench  # noqa: E402
from index_bench import ctags as run_ctags  # noqa: E402
from index_bench import run_tree  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CODE = {"path": ROOT}  # where subprocesses import repoloop from (a frozen copy during `run`)
DEFAULT_DATA = Path(os.environ.get("REPOLOOP_BENCH_DATA") or Path(__file__).resolve().parent / "out" / "scale")
SKIP_SUFFIXES = (".so", ".a", ".o", ".dylib", ".dll", ".pyc", ".pyd", ".whl", ".pt", ".pth", ".bin",
                 ".zip", ".gz", ".tar", ".png", ".jpg", ".gif", ".ico", ".ttf", ".woff", ".woff2", ".onnx")
# Sdists added to the monorepo for `big` (pinned: the corpus must be the same on every machine).
BIG_SDISTS = ("ansible-core==2.19.14", "salt==3008.5", "sqlalchemy==2.1.9", "mypy==2.4.1")
AIDER_SITE = Path(os.environ["AIDER_SITE"]) if os.environ.get("AIDER_SITE") else None  # the Aider venv's site-packages
QUERIES = [
    "parse a configuration file", "http request retry with backoff", "json decoder error position",
    "thread pool executor shutdown", "tokenize unicode identifiers", "sqlite connection cursor execute",
    "tensor shape mismatch error", "url routing resolver", "embedding function batch", "tar archive extract member",
    "asyncio event loop run until complete", "csv dialect sniffer", "logging handler rotate file",
    "email header parser", "template rendering context", "argument parser subcommands",
    "gzip compress stream", "ssl certificate verify", "unittest mock patch object", "pickle protocol load",
]


# -- corpora ------------------------------------------------------------------------------------
def _ignore(_dir: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or n.endswith(SKIP_SUFFIXES) or ".so." in n}


def prepare(data: Path, aider_site: Path | None = None) -> None:
    data.mkdir(parents=True, exist_ok=True)
    stdlib_src = Path(sysconfig.get_paths()["stdlib"])
    stdlib = data / "stdlib"
    if not stdlib.exists():
        shutil.copytree(stdlib_src, stdlib, symlinks=True,
                        ignore=lambda d, n: _ignore(d, n) | {x for x in n if x in ("site-packages", "dist-packages")})
    mono = data / "monorepo"
    if not mono.exists():
        mono.mkdir()
        shutil.copytree(stdlib, mono / "stdlib", symlinks=True)
        site = Path(sysconfig.get_paths()["purelib"])
        # Not named site-packages: the walk prunes such folders as dependencies (rightly, in a repo).
        shutil.copytree(site, mono / "packages", symlinks=True, ignore=_ignore)
        sdist_dir = data / "sdists"
        sdist_dir.mkdir(exist_ok=True)
        if not list(sdist_dir.glob("django-*.tar.gz")) and not list(sdist_dir.glob("Django-*.tar.gz")):
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                            "django==5.2.8", "-d", str(sdist_dir)], check=True)
        for sd in sorted(sdist_dir.glob("*.tar.gz")):
            with tarfile.open(sd) as tf:
                tf.extractall(mono / "sdists", filter="data")
    mid = data / "mid"
    if not mid.exists():  # ~11k files: the "10,000-file repo" of the re-index target
        mid.mkdir()
        shutil.copytree(stdlib, mid / "stdlib", symlinks=True)
        shutil.copytree(mono / "sdists", mid / "sdists", symlinks=True)
        shutil.copytree(mono / "packages" / "openai", mid / "openai", symlinks=True)
    _prepare_big(data, mono, aider_site)
    for name in ("stdlib", "mid", "monorepo", "big"):
        if (data / name).exists():
            n = sum(1 for _ in (data / name).rglob("*") if _.is_file())
            print(f"{name}: {n:,} files at {data / name}")


def _prepare_big(data: Path, mono: Path, aider_site: Path | None) -> None:
    """`big` (~58k files, the 50,000-file target): the monorepo, plus the packages of Aider's venv
    that this venv lacks (litellm, prompt_toolkit, aider, ...), plus the sdists in BIG_SDISTS.
    pip fetches each sdist with build isolation off and only that package as source: with
    `--no-binary :all:` pip would build Cython & co from source just to read the metadata."""
    big = data / "big"
    if big.exists():
        return
    sdist_dir = data / "sdists_big"
    sdist_dir.mkdir(exist_ok=True)
    for spec in BIG_SDISTS:
        name, version = spec.split("==")
        if not [p for p in sdist_dir.glob("*.tar.gz") if p.name.lower().replace("_", "-").startswith(f"{name}-{version}")]:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", name,
                            "--no-build-isolation", spec, "-d", str(sdist_dir)], check=True)
    tmp = data / "big.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(mono, tmp, symlinks=True)
    if aider_site and aider_site.is_dir():
        ours = {p.name for p in (mono / "packages").iterdir()}
        for p in sorted(aider_site.iterdir()):
            if p.name in ours or p.name.endswith((".dist-info", ".egg-info")) or p.name == "__pycache__":
                continue
            dest = tmp / "aider_packages" / p.name
            if p.is_dir() and not p.is_symlink():
                shutil.copytree(p, dest, symlinks=True, ignore=_ignore)
            elif p.is_file() and not _ignore("", [p.name]):
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, dest)
    else:
        print(f"warning: no Aider venv at {aider_site}: `big` without its packages", file=sys.stderr)
    for sd in sorted(sdist_dir.glob("*.tar.gz")):
        with tarfile.open(sd) as tf:
            tf.extractall(tmp / "sdists", filter="data")
    tmp.rename(big)


# -- measurements -------------------------------------------------------------------------------
def _cpu() -> float:
    """CPU seconds (user + system) of the last run_tree command: on a shared, loaded machine the
    wall clock mostly measures the queue; CPU time is what the work itself cost."""
    return index_bench.CPU[-1]


def _index(tree: Path, idx: Path, jobs: int | None = None) -> tuple[float, int, dict]:
    cmd = [sys.executable, "-m", "repoloop.cli", "index", str(tree), "--index-dir", str(idx), "--no-embed", "--json"]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    secs, peak, out = run_tree(cmd)
    return secs, peak, json.loads(out)


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _changed_reindex(tree: Path, idx: Path, n: int, rng: random.Random) -> tuple[float, dict]:
    con = sqlite3.connect(idx / "index.db")
    paths = [r[0] for r in con.execute("SELECT path FROM files WHERE language='python' ORDER BY path")]
    con.close()
    for p in rng.sample(paths, n):
        with (tree / p).open("a", encoding="utf-8") as f:
            f.write(f"\n# scale_bench touch {time.time_ns()}\n")
    secs, _, rep = _index(tree, idx)
    rep["cpu_s"] = _cpu()
    if rep["files_indexed"] != n:
        print(f"warning: {n} files changed, {rep['files_indexed']} re-indexed", file=sys.stderr)
    return secs, rep


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _cold_cli(tree: Path, idx: Path, queries: list[str], cpu: list[float] | None = None) -> list[float]:
    out = []
    env = dict(os.environ, PYTHONPATH=str(CODE["path"]))
    for q in queries:
        c = _children_cpu()
        t = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "repoloop.cli", "search", q, "--repo", str(tree), "--index-dir",
                            str(idx), "--lexical", "-k", "10", "--json"], capture_output=True, text=True, env=env)
        out.append(time.perf_counter() - t)
        if cpu is not None:
            cpu.append(_children_cpu() - c)
        if r.returncode != 0:
            raise SystemExit(f"search failed: {r.stderr[-500:]}")
    return out


def _warm(tree: Path, idx: Path, queries: list[str], cpu: list[float] | None = None) -> list[float]:
    from repoloop.retrieval.api import RetrievalOptions
    from repoloop.retrieval.retriever import open_retriever

    r = open_retriever(tree, idx, RetrievalOptions(lexical_only=True))
    r.search(queries[0], 10)  # warm-up
    out = []
    for q in queries:
        c = time.process_time()
        t = time.perf_counter()
        r.search(q, 10)
        out.append(time.perf_counter() - t)
        if cpu is not None:
            cpu.append(time.process_time() - c)
    r.close()
    return out


def _parse_only(tree: Path, idx: Path) -> tuple[float, int, int]:
    """repoloop's tag extraction in one process (no store, no pool): like-for-like with Aider."""
    from repoloop.indexer.parse.languages import detect_language
    from repoloop.indexer.parse.parser import parse_source

    con = sqlite3.connect(idx / "index.db")
    paths = [r[0] for r in con.execute("SELECT path FROM files ORDER BY path")]
    con.close()
    nfiles = nsym = 0
    c = time.process_time()
    t = time.perf_counter()
    for p in paths:
        lang = detect_language(p)
        if not lang:
            continue
        pf = parse_source(p, (tree / p).read_bytes(), lang)
        nfiles += 1
        nsym += len(pf.symbols)
    return time.perf_counter() - t, nfiles, nsym, time.process_time() - c


def _embed_overhead(tree: Path, idx: Path, sample: int, rng: random.Random) -> dict:
    """Repoloop's embed phase on a sample index vs raw `encode` of exactly the texts it embeds."""
    from repoloop.indexer.config import EmbedConfig
    from repoloop.indexer.embed.embedders import embedder_from_config
    from repoloop.indexer.embed.phase import embed_missing, embed_text
    from repoloop.indexer.store import IndexStore

    sub = Path(tempfile.mkdtemp(prefix="scale_embed_"))
    try:
        shutil.copy(idx / "index.db", sub / "index.db")
        store = IndexStore(sub / "index.db")
        ids = [r[0] for r in store.conn.execute("SELECT id FROM chunks")]
        keep = set(rng.sample(ids, min(sample, len(ids))))
        store.conn.execute("CREATE TEMP TABLE keep(id INTEGER PRIMARY KEY)")
        store.conn.executemany("INSERT INTO keep VALUES (?)", [(i,) for i in keep])
        store.conn.execute("DELETE FROM chunks WHERE id NOT IN (SELECT id FROM keep)")
        texts = list({embed_text(t, s, m) for t, s, m in store.conn.execute(
            "SELECT c.text, c.symbol, f.module FROM chunks c JOIN files f ON f.id=c.file_id")})
        emb = embedder_from_config(EmbedConfig.from_env(os.environ))
        emb.embed(texts[:8])  # load the model before either timing
        model = emb._load()  # the same SentenceTransformer object
        # raw, ours, raw again: the machine's load drifts, so the baseline brackets our run
        raws, raw_cpus = [], []
        for which in ("raw", "ours", "raw"):
            c = time.process_time()
            t = time.perf_counter()
            if which == "ours":
                n = embed_missing(store, sub, embedder=emb)
            else:
                model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=True)
            secs, cpu = time.perf_counter() - t, time.process_time() - c
            if which == "ours":
                ours, ours_cpu = secs, cpu
            else:
                raws.append(secs)
                raw_cpus.append(cpu)
        raw, raw_cpu = statistics.mean(raws), statistics.mean(raw_cpus)
        store.close()
        return {"chunks": n, "texts": len(texts), "repoloop_s": ours, "raw_encode_s": raw, "raw_runs_s": raws,
                "repoloop_cpu_s": ours_cpu, "raw_encode_cpu_s": raw_cpu,
                "chunks_per_s": n / ours, "raw_per_s": len(texts) / raw, "overhead_pct": 100 * (ours - raw) / raw,
                "overhead_cpu_pct": 100 * (ours_cpu - raw_cpu) / raw_cpu}
    finally:
        shutil.rmtree(sub, ignore_errors=True)


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def _freeze_code(dest: Path) -> Path:
    """A private copy of the package for this run: the working tree is shared and edited while a
    run lasts, and an edited parser file changes the parser fingerprint, which would turn the
    re-index measurements into full re-parses."""
    shutil.copytree(ROOT / "repoloop", dest / "repoloop", ignore=shutil.ignore_patterns("__pycache__"))
    CODE["path"] = dest
    index_bench.ROOT = dest  # run_tree's PYTHONPATH
    sys.path.insert(0, str(dest))
    os.chdir(dest)  # `python -m`/`-c` put the working directory first on sys.path
    import repoloop

    assert Path(repoloop.__file__).resolve().is_relative_to(dest.resolve()), repoloop.__file__
    return dest


def run(args: argparse.Namespace) -> dict:
    args.data = args.data.resolve()
    args.out = args.out.resolve() if args.out else None
    tree_src = args.data / args.corpus
    if not tree_src.exists():
        raise SystemExit(f"{tree_src} missing: run `scale_bench.py prepare` first")
    rng = random.Random(7)
    res: dict = {"corpus": args.corpus, "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M")}
    with tempfile.TemporaryDirectory(prefix="scale_bench_", dir=args.data) as tmp:
        _freeze_code(Path(tmp) / "code")
        res["commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                       text=True).stdout.strip()
        tree = Path(tmp) / "tree"
        shutil.copytree(tree_src, tree, symlinks=True)
        idx = Path(tmp) / "idx"
        secs, peak, rep = _index(tree, idx)
        res["index"] = {"seconds": secs, "cpu_s": _cpu(), "phases": rep["seconds"], "files": rep["files_indexed"],
                        "symbols": rep["symbols"], "chunks": rep["chunks"], "edges": rep["edges"],
                        "skips": rep["skips"], "peak_rss_mib": peak / 2**20, "index_mib": _du(idx) / 2**20,
                        "files_per_s": rep["files_indexed"] / secs, "symbols_per_s": rep["symbols"] / secs}
        print("index:", json.dumps(res["index"]), flush=True)
        secs, _, rep0 = _index(tree, idx)
        res["reindex_0"] = {"seconds": secs, "cpu_s": _cpu(), "files_indexed": rep0["files_indexed"]}
        for n in (1, 10, 100):
            secs, rep_n = _changed_reindex(tree, idx, n, rng)
            res[f"reindex_{n}"] = {"seconds": secs, "cpu_s": rep_n["cpu_s"], "phases": rep_n["seconds"],
                                   "files_indexed": rep_n["files_indexed"]}
            print(f"re-index {n}:", json.dumps(res[f"reindex_{n}"]), flush=True)
        cold_cpu: list[float] = []
        warm_cpu: list[float] = []
        cold = _cold_cli(tree, idx, QUERIES[:10], cold_cpu)
        warm = _warm(tree, idx, QUERIES, warm_cpu)
        res["query"] = {"cold_cli_p50_s": statistics.median(cold), "cold_cli_p95_s": _pct(cold, 0.95),
                        "cold_cli_cpu_p50_s": statistics.median(cold_cpu), "cold_cli_cpu_p95_s": _pct(cold_cpu, 0.95),
                        "warm_p50_ms": 1000 * statistics.median(warm), "warm_p95_ms": 1000 * _pct(warm, 0.95),
                        "warm_cpu_p50_ms": 1000 * statistics.median(warm_cpu),
                        "warm_cpu_p95_ms": 1000 * _pct(warm_cpu, 0.95), "load_avg": os.getloadavg()[0]}
        print("query:", json.dumps(res["query"]), flush=True)
        if "parse_only" not in args.skip:
            secs, nf, ns, pcpu = _parse_only(tree, idx)
            res["parse_only"] = {"seconds": secs, "cpu_s": pcpu, "files": nf, "symbols": ns}
            print("parse only:", json.dumps(res["parse_only"]), flush=True)
        secs, peak, ntags = run_ctags(tree, Path(tmp) / "tags")
        res["ctags"] = {"seconds": secs, "cpu_s": _cpu(), "tags": ntags, "peak_rss_mib": peak / 2**20}
        print("ctags:", json.dumps(res["ctags"]), flush=True)
        if args.aider:
            peer = Path(tmp) / "aider_tree"
            shutil.copytree(tree_src, peer, symlinks=True)
            secs, peak, out = run_tree([args.aider, str(ROOT / "benchmarks" / "aider_peer.py"), str(peer)])
            res["aider"] = {**json.loads(out.strip().splitlines()[-1]), "wall_s": secs, "cpu_s": _cpu(),
                            "peak_rss_mib": peak / 2**20}
            print("aider:", json.dumps(res["aider"]), flush=True)
        if args.embed_sample:
            res["embed"] = _embed_overhead(tree, idx, args.embed_sample, rng)
            print("embed:", json.dumps(res["embed"]), flush=True)
    ix, c = res["index"], res["ctags"]
    res["ratios"] = {"index_vs_ctags": ix["seconds"] / c["seconds"], "index_cpu_vs_ctags": ix["cpu_s"] / max(c["cpu_s"], 1e-3)}
    if "parse_only" in res:
        res["ratios"]["parse_only_vs_ctags"] = res["parse_only"]["seconds"] / c["seconds"]
        res["ratios"]["parse_only_cpu_vs_ctags"] = res["parse_only"]["cpu_s"] / max(c["cpu_s"], 1e-3)
    if "aider" in res and "parse_only" in res:
        res["ratios"]["aider_extract_cpu_vs_parse_only"] = res["aider"]["extract_cpu_s"] / res["parse_only"]["cpu_s"]
        res["ratios"]["aider_extract_vs_parse_only"] = res["aider"]["extract_s"] / res["parse_only"]["seconds"]
        res["ratios"]["aider_map_vs_index"] = res["aider"]["map_s"] / ix["seconds"]
    print(json.dumps(res, indent=2))
    if args.out:
        args.out.write_text(json.dumps(res, indent=2))
    return res


_ONE_QUERY = """
import sys
from pathlib import Path
from repoloop.retrieval.api import RetrievalOptions
from repoloop.retrieval.retriever import open_retriever
r = open_retriever(Path(sys.argv[1]), Path(sys.argv[2]), RetrievalOptions(lexical_only=True))
r.graph.full = sys.argv[4] == "full"
r.search(sys.argv[3], 10)
"""


def cold_graph(tree: Path, idx: Path, queries: list[str]) -> dict:
    """One-shot query cost of the graph signal, same run: PageRank over the whole graph loaded
    (the earlier path) vs the local push over SQL (now), each a fresh process; plus the CLI."""
    env = dict(os.environ, PYTHONPATH=str(CODE["path"]))
    out: dict = {}
    for mode in ("full", "local", "cli"):
        wall, cpu = [], []
        for q in queries:
            cmd = ([sys.executable, "-m", "repoloop.cli", "search", q, "--repo", str(tree), "--index-dir", str(idx),
                    "--lexical", "-k", "10", "--json"] if mode == "cli"
                   else [sys.executable, "-c", _ONE_QUERY, str(tree), str(idx), q, mode])
            c = _children_cpu()
            t = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env)
            wall.append(time.perf_counter() - t)
            cpu.append(_children_cpu() - c)
        out[mode] = {"wall_p50_s": statistics.median(wall), "wall_p95_s": _pct(wall, 0.95),
                     "cpu_p50_s": statistics.median(cpu), "cpu_p95_s": _pct(cpu, 0.95)}
        print(mode, json.dumps(out[mode]), flush=True)
    out["load_avg"] = os.getloadavg()[0]
    return out


def graph_agreement(tree: Path, idx: Path, queries: list[str]) -> dict:
    """Does the local push change what search returns? Top-10 of the fused lexical search with the
    graph signal from the local push vs from PageRank over the whole graph, same index."""
    from repoloop.retrieval.api import RetrievalOptions
    from repoloop.retrieval.retriever import open_retriever

    local = open_retriever(tree, idx, RetrievalOptions(lexical_only=True))
    full = open_retriever(tree, idx, RetrievalOptions(lexical_only=True))
    full.graph.full = True
    overlap, same_top1, same_order = [], 0, 0
    for q in queries:
        a = [(h.path, h.start_line) for h in local.search(q, 10)]
        b = [(h.path, h.start_line) for h in full.search(q, 10)]
        overlap.append(len(set(a) & set(b)) / max(1, len(b)))
        same_top1 += bool(a and b and a[0] == b[0])
        same_order += a == b
    return {"queries": len(queries), "top10_overlap_mean": statistics.mean(overlap),
            "top10_overlap_min": min(overlap), "same_top1": same_top1, "identical_top10": same_order}


def watch(pid: int, db: Path, out: Path, every: float) -> None:
    """Sample a running `repoloop index` (the process tree's RSS, files stored so far) until it
    exits: memory against progress shows whether peak RSS grows with the repository."""
    import psutil

    proc = psutil.Process(pid)
    t0 = time.time()
    with out.open("a") as f:
        while proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
            rss = 0
            try:
                for p in [proc, *proc.children(recursive=True)]:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            files = None
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
                files = con.execute("SELECT count(*) FROM files").fetchone()[0]
                con.close()
            except sqlite3.Error:
                pass
            f.write(json.dumps({"t": round(time.time() - t0, 1), "rss_mib": round(rss / 2**20, 1), "files": files}) + "\n")
            f.flush()
            time.sleep(every)


def plot_watch(path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot([r["t"] / 60 for r in rows], [r["rss_mib"] for r in rows], color="#47a", label="RSS of the process tree")
    ax.set_xlabel("minutes")
    ax.set_ylabel("MiB")
    ax.axhline(2048, color="#c33", lw=0.8, ls=":", label="2 GiB target")
    ax2 = ax.twinx()
    ax2.plot([r["t"] / 60 for r in rows], [r["files"] or 0 for r in rows], color="#4a7", label="files stored")
    ax2.set_ylabel("files stored")
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="lower right", fontsize=8)
    ax.set_title(f"memory while indexing ({path.stem})")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    print(f"wrote {png}")


def plot(paths: list[Path], png: Path) -> list[Path]:
    """Four figures from run results: <png stem>_{peers,phases,reindex,query}.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [json.loads(p.read_text()) for p in paths]
    written: list[Path] = []

    def save(fig, name: str) -> None:  # noqa: ANN001 - a matplotlib Figure
        out = png.with_name(f"{png.stem}_{name}.png")
        fig.tight_layout()
        fig.savefig(out, dpi=100)
        plt.close(fig)
        written.append(out)

    def title(r: dict) -> str:
        return f"{r['corpus']}: {r['index']['files']:,} files, {r['cores']} cores"

    # 1. tag extraction and map building against the peers, CPU seconds (the machine was shared)
    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 3.6), squeeze=False)
    for ax, r in zip(axes[0], results, strict=True):
        bars = {"ctags -R": r["ctags"].get("cpu_s", r["ctags"]["seconds"])}
        if "parse_only" in r:
            bars["repoloop tags (1 proc)"] = r["parse_only"].get("cpu_s", r["parse_only"]["seconds"])
        if "aider" in r:
            bars["aider tags (1 proc)"] = r["aider"].get("extract_cpu_s", r["aider"]["extract_s"])
        bars["repoloop full index"] = r["index"].get("cpu_s", r["index"]["seconds"])
        if "aider" in r:
            bars["aider repo map"] = r["aider"].get("map_cpu_s", r["aider"]["map_s"])
        ax.barh(list(bars), list(bars.values()), color=["#888", "#4a7", "#c74", "#4a7", "#c74"][: len(bars)])
        for i, v in enumerate(bars.values()):
            ax.text(v, i, f" {v:.1f}s", va="center")
        ax.invert_yaxis()
        ax.set_title(title(r))
        ax.set_xlabel("CPU seconds (lower is better)")
    save(fig, "peers")

    # 2. full index: wall seconds per phase, peak RSS
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.8 * len(results)))
    phases = ("walk", "parse", "store", "graph")
    colors = {"walk": "#999", "parse": "#4a7", "store": "#47a", "graph": "#c74"}
    for i, r in enumerate(results):
        left = 0.0
        for ph in phases:
            v = r["index"]["phases"].get(ph, 0.0)
            ax.barh(i, v, left=left, color=colors[ph], label=ph if i == 0 else None)
            left += v
        ax.text(left, i, f" {left:.0f}s, peak {r['index']['peak_rss_mib']:.0f} MiB", va="center")
    ax.set_yticks(range(len(results)), [f"{r['corpus']} ({r['index']['files']:,} files)" for r in results])
    ax.set_xlabel("seconds, wall (shared 2-core machine)")
    ax.set_xlim(0, max(sum(r["index"]["phases"].get(p, 0) for p in phases) for r in results) * 1.6)
    ax.legend(loc="lower right", ncol=4, fontsize=8)
    ax.set_title("full index (--no-embed) by phase")
    save(fig, "phases")

    # 3. re-index after N changed files
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ns = [0, 1, 10, 100]
    for r in results:
        ys = [r[f"reindex_{n}"].get("cpu_s", r[f"reindex_{n}"]["seconds"]) for n in ns]
        ax.plot([str(n) for n in ns], [r[f"reindex_{n}"]["seconds"] for n in ns], "o-",
                label=f"{r['corpus']} wall")
        ax.plot([str(n) for n in ns], ys, "s--", label=f"{r['corpus']} CPU")
    ax.axhline(1.0, color="#c33", lw=0.8, ls=":", label="1 s target")
    ax.set_yscale("log")
    ax.set_xlabel("files changed")
    ax.set_ylabel("seconds (log)")
    ax.legend(fontsize=7)
    ax.set_title("incremental re-index (repoloop index --no-embed)")
    save(fig, "reindex")

    # 4. query latency
    fig, ax = plt.subplots(figsize=(7, 3.6))
    labels = ["cold CLI p50", "cold CLI p95", "cold CLI CPU p50", "warm p50", "warm p95"]
    width = 0.8 / len(results)
    for j, r in enumerate(results):
        q = r["query"]
        vals = [q["cold_cli_p50_s"] * 1000, q["cold_cli_p95_s"] * 1000, q.get("cold_cli_cpu_p50_s", 0) * 1000,
                q["warm_p50_ms"], q["warm_p95_ms"]]
        ax.bar([i + j * width for i in range(len(labels))], vals, width, label=r["corpus"])
    ax.axhline(500, color="#c33", lw=0.8, ls=":", label="0.5 s cold target")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels, fontsize=8)
    ax.set_ylabel("milliseconds")
    ax.legend(fontsize=8)
    ax.set_title("lexical search latency (-k 10)")
    save(fig, "query")
    for w in written:
        print(f"wrote {w}")
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--aider-site", type=Path, default=AIDER_SITE, help="site-packages of the Aider venv (for `big`)")
    r = sub.add_parser("run")
    r.add_argument("--corpus", choices=("stdlib", "mid", "monorepo", "big"), default="stdlib")
    r.add_argument("--data", type=Path, default=DEFAULT_DATA)
    r.add_argument("--aider", default=None, help="python of a venv with aider-chat installed")
    r.add_argument("--embed-sample", type=int, default=0, help="chunks for the embedding-overhead measure")
    r.add_argument("--out", type=Path, default=None)
    r.add_argument("--skip", type=lambda v: set(v.split(",")), default=set(),
                   help="comma list of parts to leave out: parse_only (slow on the monorepo)")
    pl = sub.add_parser("plot")
    pl.add_argument("results", nargs="+", type=Path)
    pl.add_argument("--png", type=Path, required=True)
    w = sub.add_parser("watch", help="sample RSS and progress of a running index until it ends")
    w.add_argument("--pid", type=int, default=None, help="the `repoloop index` process (not with --png)")
    w.add_argument("--db", type=Path, default=None, help="its IDX/index.db (not with --png)")
    w.add_argument("--out", type=Path, required=True)
    w.add_argument("--every", type=float, default=10.0)
    w.add_argument("--png", type=Path, default=None, help="plot an existing --out file instead")
    cg = sub.add_parser("cold-graph", help="one-shot query: whole-graph PageRank vs local push vs CLI")
    cg.add_argument("--tree", type=Path, required=True)
    cg.add_argument("--index-dir", type=Path, required=True)
    cg.add_argument("--queries", type=int, default=10)
    cg.add_argument("--out", type=Path, default=None)
    em = sub.add_parser("embed", help="embedding overhead on an existing index: repoloop's phase vs raw encode")
    em.add_argument("--tree", type=Path, required=True)
    em.add_argument("--index-dir", type=Path, required=True)
    em.add_argument("--sample", type=int, default=200)
    em.add_argument("--out", type=Path, default=None)
    em.add_argument("--sort-window", type=int, default=None,
                    help="rounds of texts sorted by length together (1: no regrouping, as before)")
    ga = sub.add_parser("graph-agreement", help="search results with the local vs the whole-graph PageRank")
    ga.add_argument("--tree", type=Path, required=True)
    ga.add_argument("--index-dir", type=Path, required=True)
    args = ap.parse_args()
    if args.cmd == "graph-agreement":
        print(json.dumps(graph_agreement(args.tree, args.index_dir, QUERIES)))
        return
    if args.cmd == "embed":
        if args.sort_window:
            import repoloop.indexer.embed.phase as embed_phase

            embed_phase._SORT_WINDOW = args.sort_window
        res = _embed_overhead(args.tree, args.index_dir, args.sample, random.Random(7))
        print(json.dumps(res))
        if args.out:
            args.out.write_text(json.dumps(res, indent=2))
        return
    if args.cmd == "cold-graph":
        res = cold_graph(args.tree, args.index_dir, QUERIES[: args.queries])
        if args.out:
            args.out.write_text(json.dumps(res, indent=2))
        return
    if args.cmd == "watch":
        if args.png:
            plot_watch(args.out, args.png)
        elif args.pid is None or args.db is None:
            ap.error("watch needs --pid and --db (or --png to plot an existing --out file)")
        else:
            watch(args.pid, args.db, args.out, args.every)
        return
    if args.cmd == "prepare":
        prepare(args.data, args.aider_site)
    elif args.cmd == "run":
        run(args)
    else:
        plot(args.results, args.png)


if __name__ == "__main__":
    main()
