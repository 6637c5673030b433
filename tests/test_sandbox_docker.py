"""The docker sandbox against a real engine (started by tests/fixtures_docker.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from repoloop.errors import RepoloopError
from repoloop.sandbox import Limits, open_sandbox
from repoloop.sandbox.docker_backend import DockerSandbox, engine_reachable
from repoloop.sandbox.select import choose_kind

pytestmark = pytest.mark.docker


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    w = tmp_path / "ws"
    w.mkdir()
    (w / "hello.txt").write_text("hi\n")
    return w


@pytest.fixture
def dsb(docker_engine, ws):
    sb = DockerSandbox(
        ws, image=docker_engine.image, base_url=docker_engine.base_url,
        limits=Limits(memory_mb=64, processes=32, timeout=30),
    )
    with sb:
        yield sb


def test_runs_commands_and_writes_reach_the_host(dsb, ws):
    r = dsb.run("cat hello.txt; echo made > new.txt; echo err >&2; exit 3")
    assert (r.exit_code, r.stdout, r.stderr) == (3, "hi\n", "err\n")
    assert (ws / "new.txt").read_text() == "made\n"
    r = dsb.run(["echo", "a b", "$HOME"])
    assert r.stdout == "a b $HOME\n"


def test_non_root_no_network_read_only_root(dsb):
    r = dsb.run("id -u")
    assert r.exit_code == 0 and r.stdout.strip() not in ("", "0")
    r = dsb.run("ls /sys/class/net")
    assert r.stdout.split() == ["lo"]
    r = dsb.run("echo x > /etc/probe")
    assert r.exit_code != 0
    assert dsb.container.attrs["HostConfig"]["NetworkMode"] == "none"


def test_memory_and_pid_limits(dsb):
    r = dsb.run("dd if=/dev/zero of=/dev/null bs=300M count=1")
    assert r.exit_code == 137 and "SIGKILL" in r.note
    r = dsb.run("for i in $(seq 64); do sleep 5 & done; wait")
    assert r.exit_code != 0 and "fork" in r.stderr.lower()
    assert dsb.run("echo recovered").stdout == "recovered\n"  # stray processes were cleared


def test_container_is_reused_across_runs_and_removed_at_stop(docker_engine, ws):
    import docker

    sb = DockerSandbox(ws, image=docker_engine.image, base_url=docker_engine.base_url)
    with sb:
        cid = sb.container_id
        assert sb.run("echo kept > /tmp/state").exit_code == 0
        assert sb.run("cat /tmp/state").stdout == "kept\n"
        assert sb.container_id == cid
    c = docker.DockerClient(base_url=docker_engine.base_url)
    try:
        with pytest.raises(docker.errors.NotFound):
            c.containers.get(cid)
    finally:
        c.close()


def test_a_stopped_container_is_brought_back(dsb):
    cid = dsb.container_id
    dsb.container.kill()
    assert dsb.run("echo back").stdout == "back\n"
    assert dsb.container_id == cid


def test_timeout_kills_the_commands_processes(dsb, ws):
    start = time.monotonic()
    r = dsb.run(f"(while :; do echo b >> {ws}/hb; sleep 0.1; done) & "
                f"while [ ! -s {ws}/hb ]; do sleep 0.05; done; sleep 100", timeout=5)
    assert r.timed_out and r.exit_code == 124
    assert time.monotonic() - start < 60  # killed at 5 s, not after 100 s (slack for busy machines)
    size = (ws / "hb").stat().st_size
    time.sleep(0.5)
    assert (ws / "hb").stat().st_size == size
    assert dsb.run("echo still-usable").stdout == "still-usable\n"


def test_workspace_ownership_is_given_back(docker_engine, ws):
    if os.geteuid() != 0 or ws.stat().st_uid != 0:
        pytest.skip("only a root-owned workspace is lent to the sandbox user")
    import subprocess

    (ws / "sub").mkdir()
    (ws / "sub" / "a.txt").write_text("a\n")
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    mode = ws.stat().st_mode
    with DockerSandbox(ws, image=docker_engine.image, base_url=docker_engine.base_url) as sb:
        r = sb.run("echo x > created && echo y >> hello.txt && echo b > sub/b.txt && rm sub/a.txt")
        assert r.exit_code == 0, r
        assert ws.stat().st_uid == 0  # the worktree's top stays root's: git keeps working meanwhile
        git = subprocess.run(["git", "-C", str(ws), "status", "--porcelain"], capture_output=True, text=True)
        assert git.returncode == 0 and "created" in git.stdout, git.stderr
    for p in (ws, ws / "created", ws / "hello.txt", ws / "sub", ws / "sub" / "b.txt", ws / ".git" / "HEAD"):
        assert p.stat().st_uid == 0, p
    assert ws.stat().st_mode == mode


def test_missing_image_is_a_clear_error(docker_engine, ws):
    sb = DockerSandbox(ws, image="repoloop-no-such-image:1", base_url=docker_engine.base_url)
    with pytest.raises(RepoloopError, match="repoloop-no-such-image:1.*not available"):
        sb.start()


def test_auto_selection_prefers_a_reachable_engine(docker_engine, ws):
    assert choose_kind(docker_engine.base_url) == "docker"
    s = open_sandbox(None, ws, image=docker_engine.image, docker_url=docker_engine.base_url)
    assert s.kind == "docker"


def test_unreachable_engine_is_a_clear_error(ws, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/repoloop/docker.sock")
    assert "no Docker engine reachable" in (engine_reachable() or "")
    with pytest.raises(RepoloopError, match="no Docker engine reachable at unix:///nonexistent/repoloop/docker.sock"):
        DockerSandbox(ws, image="anything").start()
