"""A real two-node Ray cluster on 127.0.0.1 (head + one worker node, one CPU each), a real
repository to index, and a content snapshot of an index for comparisons.

Each node is `python -m repoloop.indexer.raynode start --block ...` (Ray's own CLI, kept on the
loopback address) in a session of its own, so a node is stopped, or killed, as one process group
and nothing else on the machine is touched."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
START_DEADLINE = 240.0  # a node on a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def real_repo(dest: Path, paths: tuple[str, ...]) -> Path:
    """This project's own code at HEAD (`git archive`), as a git repository of its own."""
    dest.mkdir(parents=True, exist_ok=True)
    arch = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD", *paths], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=arch.stdout, check=True)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "snapshot")
    return dest


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          env=env).stdout


def snapshot(db: Path) -> dict[str, list]:
    """Everything an index says about the code, without row ids or times: files, symbols, refs,
    chunks, edges (by path), skips, and the embedding keys (the vector ids)."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        q = {
            "files": "SELECT path, hash, language, module, size, lines, status, syntax_errors, decode_errors FROM files",
            "symbols": "SELECT f.path, s.name, s.qualname, s.kind, s.start_line, s.end_line, s.signature, s.doc,"
                       " s.parent FROM symbols s JOIN files f ON f.id=s.file_id",
            "refs": "SELECT f.path, r.name, r.kind, r.line, r.scope, r.full, r.module, r.alias FROM refs r"
                    " JOIN files f ON f.id=r.file_id",
            "chunks": "SELECT f.path, c.start_line, c.end_line, c.symbol, c.kind, c.text, c.header, c.hash"
                      " FROM chunks c JOIN files f ON f.id=c.file_id",
            "edges": "SELECT f.path, e.src, e.dst, e.kind, e.weight, e.line FROM edges e JOIN files f ON f.id=e.file_id",
            "skips": "SELECT path, reason FROM skips",
        }
        out = {k: sorted(c.execute(v).fetchall(), key=repr) for k, v in q.items()}
        has_keys = c.execute("SELECT 1 FROM sqlite_master WHERE name='embed_keys'").fetchone()
        out["vector_ids"] = sorted(r[0] for r in c.execute("SELECT DISTINCT key FROM embed_keys")) if has_keys else []
        return out
    finally:
        c.close()


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
        ) -> subprocess.CompletedProcess:
    e = dict(os.environ, PYTHONPATH=str(ROOT))
    e.pop("RAY_ADDRESS", None)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "repoloop.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=e, timeout=timeout)


def wait_for(cond, what: str, deadline_s: float = 240.0, proc: subprocess.Popen | None = None):
    """Poll `cond` until it returns a true value (returned), or fail after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        v = cond()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            v = cond()
            if v:
                return v
            raise AssertionError(f"{what}: the process ended first (rc {proc.returncode})")
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not within {deadline_s:.0f} s")
        time.sleep(0.05)


@dataclass
class RayNode:
    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def pids(self) -> list[int]:
        import psutil

        out = []
        for p in psutil.process_iter(["pid"]):
            try:
                if os.getpgid(p.pid) == self.proc.pid:
                    out.append(p.pid)
            except (ProcessLookupError, psutil.Error):
                pass
        return out

    def kill(self) -> None:
        """SIGKILL the whole node (raylet, object store, its workers) at once."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=60)
        wait_for(lambda: not self.pids(), "the killed node's processes gone", 60)

    def stop(self) -> None:
        if self.alive:  # Ray's own shutdown, briefly; then the whole group at once
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=60)


@dataclass
class RayCluster:
    port: int
    temp_dir: str
    head: RayNode | None = None
    worker: RayNode | None = None
    # Token authentication with a token of this cluster's own (never ~/.ray): nodes and drivers.
    env: dict[str, str] = field(default_factory=lambda: {"RAY_AUTH_MODE": "token",
                                                         "RAY_AUTH_TOKEN": secrets.token_hex(32)})

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, args: list[str], env: dict[str, str], cpus: int = 1) -> RayNode:
        proc = subprocess.Popen(
            [sys.executable, "-m", "repoloop.indexer.raynode", "start", "--block", "--node-ip-address", "127.0.0.1",
             "--num-cpus", str(cpus), "--object-store-memory", "120000000", "--disable-usage-stats",
             "--temp-dir", self.temp_dir, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, cwd=str(ROOT),
            env={**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", **self.env, **env})
        node = RayNode(proc)

        def read() -> None:
            for line in proc.stdout:  # type: ignore[union-attr]
                node.lines.append(line)

        threading.Thread(target=read, daemon=True).start()
        try:
            wait_for(lambda: any("Ray runtime started" in x for x in node.lines), "a Ray node started",
                     START_DEADLINE, proc)
        except AssertionError as e:
            node.stop()
            raise AssertionError(f"{e}; its output:\n{''.join(node.lines[-40:])}") from None
        return node

    def start_head(self, cpus: int = 1) -> None:
        # Node deaths noticed in ~3 s instead of Ray's default ~30 s (the fault tests wait on them).
        env = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3",
               "RAY_health_check_timeout_ms": "1000"}
        self.head = self._start(["--head", "--port", str(self.port), "--include-dashboard", "false"], env, cpus)

    def ensure_worker(self) -> RayNode:
        if self.worker is None or not self.worker.alive:
            self.worker = self._start(["--address", self.address], {})
        return self.worker

    def stop(self) -> None:
        for n in (self.worker, self.head):
            if n is not None:
                n.stop()


@pytest.fixture(scope="module")
def ray_cluster():
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[cluster]' (make setup does)")
    temp = tempfile.mkdtemp(prefix="rl", dir="/tmp")  # Ray's socket paths must stay short
    cluster = RayCluster(_free_port(), temp)
    try:
        cluster.start_head()
        cluster.ensure_worker()
        yield cluster
    finally:
        cluster.stop()
        subprocess.run(["rm", "-rf", temp], check=False)
