"""`repoloop index --cluster` against a real two-node Ray cluster on 127.0.0.1 (head + one worker
node, one CPU each; tests/fixtures_cluster.py): the index equals a local one on a real repository
(files, symbols, refs, chunks, edges, vector ids); a worker node SIGKILLed mid-run; a driver
SIGKILLed mid-run and run again. `pytest -m cluster` selects these (and the team-vector tests)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures_cluster import ROOT, cli, real_repo, snapshot, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

# Real code, small enough to embed twice in a test on a loaded 2-core machine: ~30 files in three
# languages' worth of handlers plus the sandbox package and a Markdown file (text chunks).
EMBED_PATHS = ("repoloop/sandbox", "repoloop/indexer/parse/handlers", "README.md")
# Parse-only corpus for the fault tests: enough batches of 2 files that a node dies with work left.
PARSE_PATHS = ("repoloop", "benchmarks")


def _local_index(repo: Path, idx: Path, *extra: str) -> dict:
    r = cli("index", str(repo), "--index-dir", str(idx), "--json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _loopback_only(pids: list[int]) -> list[str]:
    """Sockets of these processes bound or connected anywhere but the loopback address."""
    import psutil

    bad = []
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="inet")
        except psutil.Error:
            continue
        for c in conns:
            for addr in (c.laddr, c.raddr):
                if addr and addr.ip not in ("127.0.0.1", "::ffff:127.0.0.1", "::1"):
                    bad.append(f"pid {pid}: {addr.ip}:{addr.port} ({c.status})")
    return bad


def test_cluster_index_equals_local_index(tmp_path: Path, ray_cluster) -> None:
    repo = real_repo(tmp_path / "repo", EMBED_PATHS)
    local = _local_index(repo, tmp_path / "local-idx")
    r = cli("index", str(repo), "--cluster", ray_cluster.address, "--json",
            env={**ray_cluster.env, "REPOLOOP_CLUSTER_BATCH_FILES": "4"})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    c = out["cluster"]
    assert c["nodes"] == 2 and c["cpus"] == 2
    assert len(c["files_by_node"]) == 2, c  # parsed on both nodes
    assert sum(c["files_by_node"].values()) == out["files_indexed"] == local["files_indexed"] > 20
    assert c["embed_actors"] == 2 and len(c["chunks_by_node"]) == 2, c  # an actor per node, both used
    assert out["embedded"] == local["embedded"] > 100
    a, b = snapshot(tmp_path / "local-idx" / "index.db"), snapshot(repo / ".repoloop" / "index.db")
    for table in a:
        assert a[table] == b[table], table
    assert len(a["edges"]) > 100 and len(a["vector_ids"]) == local["embedded"]
    # Every vector id the index uses has its vector in the store.
    st = cli("status", "--repo", str(repo), "--json")
    assert st.returncode == 0, st.stderr
    emb = json.loads(st.stdout)["consistency"]
    assert emb["consistent"] and emb["vectors"] == len(b["vector_ids"])
    # A second run ships nothing: every file is unchanged by its hash, every text has its vector.
    # ... named by RAY_ADDRESS this time instead of --cluster.
    again = json.loads(cli("index", str(repo), "--json", env={**ray_cluster.env, "RAY_ADDRESS": ray_cluster.address}
                           ).stdout)
    assert again["files_indexed"] == 0 and again["embedded"] == 0 and again["cluster"]["files_shipped"] == 0
    # Every Ray process of both nodes kept to 127.0.0.1.
    pids = ray_cluster.head.pids() + ray_cluster.worker.pids()
    assert len(pids) >= 4
    assert _loopback_only(pids) == []


@pytest.fixture(scope="module")
def parse_corpus(tmp_path_factory):
    """PARSE_PATHS as a repository, and its local `--no-embed` index (built once for the module)."""
    base = tmp_path_factory.mktemp("parse-corpus")
    repo = real_repo(base / "repo", PARSE_PATHS)
    local = _local_index(repo, base / "local-idx", "--no-embed")
    return repo, local, snapshot(base / "local-idx" / "index.db")


def _copy(repo: Path, dest: Path) -> Path:
    shutil.copytree(repo, dest, symlinks=True)
    return dest


def _trace(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _worker_node_id(ray_cluster) -> str:
    """The worker node's Ray node id, from its raylet's command line."""
    import psutil

    for pid in ray_cluster.worker.pids():
        try:
            cmd = psutil.Process(pid).cmdline()
        except psutil.Error:
            continue
        for arg in cmd:
            if arg.startswith("--node_id="):
                return arg.split("=", 1)[1]
    raise AssertionError("no raylet with --node_id on the worker node")


def _index_killing_the_worker(repo: Path, ray_cluster, trace: Path, env_extra: dict[str, str], args: list[str],
                              started, what: str, done) -> tuple[dict, int]:  # noqa: ANN001 - predicates
    """`repoloop index --cluster` with a trace; once `started()` holds, kill the worker node. Returns
    the run's --json (it must succeed) and `done()` at the kill."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), REPOLOOP_CLUSTER_TRACE=str(trace), **env_extra, **ray_cluster.env)
    env.pop("RAY_ADDRESS", None)
    p = subprocess.Popen([sys.executable, "-m", "repoloop.cli", "index", str(repo), "--cluster", ray_cluster.address,
                          *args, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for(started, what, proc=p)
        done_at_kill = done()
        ray_cluster.worker.kill()
        stdout, stderr = p.communicate(timeout=600)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, stderr
    return json.loads(stdout), done_at_kill


def test_worker_node_killed_mid_run(tmp_path: Path, ray_cluster, parse_corpus) -> None:
    ray_cluster.ensure_worker()
    worker_id = _worker_node_id(ray_cluster)
    template, local, local_snap = parse_corpus
    repo = _copy(template, tmp_path / "repo")
    trace = tmp_path / "trace.jsonl"
    out, done_at_kill = _index_killing_the_worker(
        repo, ray_cluster, trace, {"REPOLOOP_CLUSTER_BATCH_FILES": "2"}, ["--no-embed"],
        lambda: any(e.get("node") == worker_id for e in _trace(trace)), "a batch parsed on the worker node",
        lambda: sum(e["files"] for e in _trace(trace) if e["event"] == "batch"))
    assert done_at_kill < local["files_indexed"]  # killed with work left
    batches = [e for e in _trace(trace) if e["event"] == "batch"]
    assert sum(e["files"] for e in batches) == out["files_indexed"] == local["files_indexed"]
    assert sum(e["files"] for e in batches[len(batches) // 2 :]) > 0
    head_files = sum(n for node, n in out["cluster"]["files_by_node"].items() if node != worker_id)
    assert head_files > local["files_indexed"] - done_at_kill - 1  # the rest was parsed on the head
    a, b = local_snap, snapshot(repo / ".repoloop" / "index.db")
    for table in a:
        assert a[table] == b[table], table


def test_rerun_after_driver_killed(tmp_path: Path, ray_cluster, parse_corpus) -> None:
    ray_cluster.ensure_worker()
    template, local, local_snap = parse_corpus
    repo = _copy(template, tmp_path / "repo")
    trace = tmp_path / "trace.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT), REPOLOOP_CLUSTER_TRACE=str(trace), REPOLOOP_CLUSTER_BATCH_FILES="2",
               **ray_cluster.env)
    env.pop("RAY_ADDRESS", None)
    # The CLI with the driver committing every 8 files (the pipeline commits up to 1,000 files or 5 s
    # at a time, so on this corpus a kill would find nothing or everything stored): what is under
    # test, each transaction all or nothing and a re-run doing only what was not stored, holds for
    # any transaction size.
    driver = ("import sys; import repoloop.indexer.pipeline as p; p._BATCH_FILES = 8; from repoloop.cli import main;"
              " sys.argv[0] = 'repoloop'; sys.exit(main())")
    p = subprocess.Popen([sys.executable, "-c", driver, "index", str(repo), "--cluster", ray_cluster.address,
                          "--no-embed", "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_for(lambda: any(e["event"] == "stored" for e in _trace(trace)), "a batch of files stored", proc=p)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == -signal.SIGKILL
    stored = sum(e["files"] for e in _trace(trace) if e["event"] == "stored")
    assert 0 < stored < local["files_indexed"]
    db = repo / ".repoloop" / "index.db"
    c = sqlite3.connect(db)
    try:
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        n_files = c.execute("SELECT count(*) FROM files").fetchone()[0]
        assert n_files >= stored
    finally:
        c.close()
    r = cli("index", str(repo), "--cluster", ray_cluster.address, "--no-embed", "--json", env=ray_cluster.env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["files_indexed"] == local["files_indexed"] - n_files  # finished work is not redone
    assert out["cluster"]["files_shipped"] == out["files_indexed"]
    a, b = local_snap, snapshot(db)
    for table in a:
        assert a[table] == b[table], table


def test_worker_node_killed_while_embedding(tmp_path: Path, ray_cluster) -> None:
    """The worker node dies while its actor embeds: the texts it had are re-sent to the head's actor."""
    ray_cluster.ensure_worker()
    worker_id = _worker_node_id(ray_cluster)
    repo = real_repo(tmp_path / "repo", ("repoloop/sandbox",))
    local = _local_index(repo, tmp_path / "local-idx")
    trace = tmp_path / "trace.jsonl"
    out, done_at_kill = _index_killing_the_worker(
        repo, ray_cluster, trace, {"REPOLOOP_CLUSTER_EMBED_SUB": "4"}, [],
        lambda: any(e["event"] == "embedded" and e["node"] == worker_id for e in _trace(trace)),
        "a call embedded on the worker node",
        lambda: sum(e["chunks"] for e in _trace(trace) if e["event"] == "embedded"))
    assert done_at_kill < local["embedded"]  # killed with texts left to embed
    c = out["cluster"]
    assert c["embed_actors"] >= 2 and c["actors_lost"] >= 1 and out["embedded"] == local["embedded"]
    head_chunks = sum(n for node, n in c["chunks_by_node"].items() if node != worker_id)
    worker_chunks = c["chunks_by_node"].get(worker_id, 0)
    # Round-robin would give each actor half; the head's took over what the dead one had queued.
    assert head_chunks + worker_chunks == local["embedded"] and worker_chunks < local["embedded"] // 2
    a, b = snapshot(tmp_path / "local-idx" / "index.db"), snapshot(repo / ".repoloop" / "index.db")
    assert a["vector_ids"] == b["vector_ids"] and a["chunks"] == b["chunks"]
    st = json.loads(cli("status", "--repo", str(repo), "--json").stdout)["consistency"]
    assert st["consistent"] and st["vectors"] == len(b["vector_ids"])


def test_no_cluster_at_the_address_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[cluster]' (make setup does)")
    repo = real_repo(tmp_path / "repo", ("repoloop/sandbox",))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    r = cli("index", str(repo), "--cluster", f"127.0.0.1:{port}", "--no-embed", timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "cannot join the Ray cluster" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
