"""Scale-out throughput: local vs a one-node vs a two-node Ray cluster on the same corpus in the
same run, Ray's overhead per file, and the team cache's saving through a Chroma server.

    .venv/bin/python benchmarks/cluster_bench.py [--out benchmarks/cluster_bench_results.json]

Everything binds 127.0.0.1 (nodes via `python -m repoloop.indexer.raynode`, `chroma run --host
127.0.0.1`). On one machine the nodes share its cores, so a cluster cannot be faster than local
here: what this measures is what Ray costs (per file shipped, per chunk sent to an actor) against
the same total CPUs, and that the result is the same index. Each configuration indexes the same
corpora from nothing, through the CLI (`repoloop index --json`), into its own index directory:

- parse corpus: Python standard library packages (real code), `--no-embed`: files/s over the
  parse+store phases, and the cluster's connect time apart;
- embed corpus: a smaller set of standard library packages, embedded: chunks/s over the embed
  phase (the local run's ONNX encoder on all cores vs one actor per cluster CPU);
- team cache: clone A indexed with `--chroma-url`, then clone B (another path, another branch, two
  files edited): chunks B embeds / chunks A embedded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures_cluster import RayCluster, cli, git, snapshot, wait_for  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
PARSE_PKGS = ("email", "asyncio", "json", "http", "xml", "logging", "concurrent", "importlib", "unittest", "idlelib",
              "multiprocessing", "urllib")
EMBED_PKGS = ("json", "http", "concurrent", "logging")


def corpus(dest: Path, pkgs: tuple[str, ...]) -> Path:
    dest.mkdir(parents=True)
    for p in pkgs:
        shutil.copytree(STDLIB / p, dest / p, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "corpus")
    return dest


def index(repo: Path, idx: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[dict, float]:
    t = time.perf_counter()
    r = cli("index", str(repo), "--index-dir", str(idx), "--json", *extra, env=env, timeout=3600)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"index failed: {r.stderr}")
    return json.loads(r.stdout), wall


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def measure(name: str, parse_repo: Path, embed_repo: Path, work: Path, extra: list[str], env: dict[str, str]
            ) -> dict:
    out: dict = {"config": name, "load_before": uptime()}
    rep, wall = index(parse_repo, work / f"{name}-parse", "--no-embed", *extra, env=env)
    ps = rep["seconds"]["parse"] + rep["seconds"]["store"]
    out.update(files=rep["files_indexed"], parse_store_s=round(ps, 2), files_per_s=round(rep["files_indexed"] / ps, 1),
               wall_s=round(wall, 1), cluster=rep.get("cluster"))
    rep, wall = index(embed_repo, work / f"{name}-embed", *extra, env=env)
    es = rep["seconds"]["embed"]
    out.update(chunks_embedded=rep["embedded"], embed_s=round(es, 2), chunks_per_s=round(rep["embedded"] / es, 1),
               embed_wall_s=round(wall, 1), embed_cluster=rep.get("cluster"))
    out["load_after"] = uptime()
    print(json.dumps({k: v for k, v in out.items() if "cluster" not in k}), flush=True)
    return out


_OVERHEAD = r"""
import hashlib, json, os, sys, time
from pathlib import Path
from repoloop.indexer.cluster import connect, BATCH_FILES
ray, stats = connect(sys.argv[1])
files = sorted((p for p in Path(sys.argv[2]).rglob("*.py") if ".git" not in p.parts), key=lambda p: -p.stat().st_size)
@ray.remote(scheduling_strategy="SPREAD")
def noop(items):
    return [(path, size, mtime, h) for path, size, mtime, h, _ in items]  # the bytes travel, nothing is parsed
ray.get([noop.remote([]) for _ in range(8)])  # workers started
out = {}
for rnd in range(3):
    t = time.perf_counter()
    refs, batch = [], []
    for p in files:
        data = p.read_bytes()
        batch.append((str(p), len(data), 0.0, hashlib.sha1(data).hexdigest(), data))
        if len(batch) >= BATCH_FILES:
            refs.append(noop.remote(batch)); batch = []
    if batch:
        refs.append(noop.remote(batch))
    n = sum(len(r) for r in ray.get(refs))
    out.setdefault("ms_per_file", []).append(round(1000 * (time.perf_counter() - t) / n, 3))
out["files"] = n
print(json.dumps(out))
"""


def ray_overhead(address: str, env: dict[str, str], repo: Path) -> dict:
    """What Ray adds per file, parsing left out: read + hash on the driver, ship each batch's bytes
    to a task that returns the headers (the same tuples and batch size as a parse task), 3 rounds."""
    r = subprocess.run([sys.executable, "-c", _OVERHEAD, address, str(repo)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=600)
    if r.returncode != 0:
        raise SystemExit(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def team_cache(work: Path, embed_repo: Path) -> dict:
    port = _free_port()
    chroma = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen([str(chroma), "run", "--path", str(work / "chroma"), "--host", "127.0.0.1", "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    url = f"http://127.0.0.1:{port}"
    try:
        import chromadb
        from chromadb.config import Settings

        def up() -> bool:
            try:
                chromadb.HttpClient(host="127.0.0.1", port=port, settings=Settings(anonymized_telemetry=False)).heartbeat()
                return True
            except Exception:  # noqa: BLE001
                return False

        wait_for(up, "chroma server", 120)
        a = work / "team-a"
        git(work, "clone", "-q", str(embed_repo), str(a))
        ra, wa = index(a, a / ".repoloop", "--chroma-url", url)
        b = work / "other" / "team-b"
        b.parent.mkdir()
        git(work, "clone", "-q", str(embed_repo), str(b))
        git(b, "checkout", "-q", "-b", "feature")
        f = b / "json" / "encoder.py"
        f.write_text(f.read_text() + "\n\ndef team_probe(x):\n    return x + 1\n")
        g = b / "http" / "cookies.py"
        g.write_text(g.read_text().replace("return", "return  ", 1))
        git(b, "commit", "-q", "-am", "edit")
        rb, wb = index(b, b / ".repoloop", "--chroma-url", url)
        new = len(set(snapshot(b / ".repoloop/index.db")["vector_ids"]) -
                  set(snapshot(a / ".repoloop/index.db")["vector_ids"]))
        return {"first_embedded": ra["embedded"], "first_embed_s": ra["seconds"]["embed"], "first_wall_s": round(wa, 1),
                "second_embedded": rb["embedded"], "second_new_texts": new, "second_embed_s": rb["seconds"]["embed"],
                "second_wall_s": round(wb, 1), "saving": round(1 - rb["embedded"] / ra["embedded"], 4)}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "cluster_bench_results.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="clbench"))
    results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "load": uptime(),
                     "cpus": os.cpu_count(), "configs": []}
    try:
        parse_repo = corpus(work / "parse", PARSE_PKGS)
        embed_repo = corpus(work / "embed", EMBED_PKGS)
        results["configs"].append(measure("local", parse_repo, embed_repo, work, [], {}))
        for nodes in (1, 2):
            cluster = RayCluster(_free_port(), tempfile.mkdtemp(prefix="rl", dir="/tmp"))
            try:
                cluster.start_head(cpus=2 if nodes == 1 else 1)
                if nodes == 2:
                    cluster.ensure_worker()
                results["configs"].append(measure(f"ray-{nodes}-node", parse_repo, embed_repo, work,
                                                  ["--cluster", cluster.address], cluster.env))
                results["configs"][-1]["ray_transport"] = ray_overhead(cluster.address, cluster.env, parse_repo)
            finally:
                cluster.stop()
                shutil.rmtree(cluster.temp_dir, ignore_errors=True)
        # Same index everywhere: the cluster runs' content equals the local run's.
        base = snapshot(work / "local-parse/index.db")
        results["identical_to_local"] = {
            c["config"]: snapshot(work / f"{c['config']}-parse/index.db") == base
            and snapshot(work / f"{c['config']}-embed/index.db") == snapshot(work / "local-embed/index.db")
            for c in results["configs"][1:]}
        loc = results["configs"][0]
        for c in results["configs"][1:]:
            c["overhead_ms_per_file"] = round(1000 * (c["parse_store_s"] - loc["parse_store_s"]) / c["files"], 2)
        results["team_cache"] = team_cache(work, embed_repo)
        results["load_end"] = uptime()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
