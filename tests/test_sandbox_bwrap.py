"""The bubblewrap sandbox against the real bwrap: isolation, limits, timeouts, faithful results."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from repoloop.errors import RepoloopError
from repoloop.sandbox import Limits, open_sandbox
from repoloop.sandbox.bwrap import BwrapSandbox

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    w = tmp_path / "ws"
    w.mkdir()
    (w / "hello.txt").write_text("hi\n")
    return w


@pytest.fixture
def sb(ws: Path):
    with BwrapSandbox(ws, limits=Limits(timeout=30)) as s:
        yield s


def _procs_with(token: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if token.encode() in (d / "cmdline").read_bytes():
                    found.append(int(d.name))
            except OSError:
                pass
    return found


def test_write_inside_workspace_reaches_host(sb, ws):
    r = sb.run("cat hello.txt && echo made > new.txt && mkdir -p sub && echo x > sub/y")
    assert r.exit_code == 0, r
    assert r.stdout == "hi\n"
    assert (ws / "new.txt").read_text() == "made\n"
    assert (ws / "sub" / "y").exists()


def test_writes_outside_workspace_fail(sb, ws, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    for target in ("/etc/repoloop-probe", "/usr/repoloop-probe", str(outside / "f")):
        r = sb.run(["sh", "-c", f"echo x > {target}"])
        assert r.exit_code != 0, (target, r)
        assert not Path(target).exists()
    r = sb.run("echo x > /etc/hostname")
    assert r.exit_code != 0 and "Read-only" in r.stderr


def test_fresh_tmp_is_writable_and_not_the_hosts(sb, tmp_path):
    marker = Path("/tmp") / f"repoloop-host-{uuid.uuid4().hex}"
    marker.write_text("host")
    try:
        r = sb.run(f"ls /tmp; test -e {marker} && echo VISIBLE; echo t > /tmp/mine && cat /tmp/mine")
        assert r.exit_code == 0, r
        assert "VISIBLE" not in r.stdout
        assert r.stdout.endswith("t\n")
    finally:
        marker.unlink()
    assert not Path("/tmp/mine").exists()


def test_home_directory_is_not_visible(sb):
    home = Path(os.environ.get("HOME") or "/root")
    marker = home / f".repoloop-secret-{uuid.uuid4().hex}"
    marker.write_text("secret-credential")
    try:
        r = sb.run(["cat", str(marker)])
        assert r.exit_code != 0 and "secret-credential" not in r.stdout
        r = sb.run(["ls", "-A", str(home), "/root"])
        assert r.exit_code == 0 and marker.name not in r.stdout
        r = sb.run("cat /etc/shadow")
        assert "root:" not in r.stdout
    finally:
        marker.unlink()


def test_host_loopback_server_is_unreachable(ws):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    port = srv.getsockname()[1]
    accepted: list[bytes] = []

    def serve() -> None:
        srv.settimeout(10)
        try:
            while True:
                c, _ = srv.accept()
                accepted.append(c.recv(100))
                c.close()
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    probe = (
        "import socket,sys\n"
        f"s=socket.create_connection(('127.0.0.1',{port}),timeout=3); s.sendall(b'PING'); s.close(); print('connected')"
    )
    try:
        with BwrapSandbox(ws) as sb:
            r = sb.run(["python3", "-c", probe], timeout=20)
            assert r.exit_code != 0 and "connected" not in r.stdout
            assert "Connection refused" in r.stderr or "unreachable" in r.stderr.lower()
            r = sb.run("cat /proc/net/dev")
            ifaces = {line.split(":")[0].strip() for line in r.stdout.splitlines()[2:]}
            assert ifaces == {"lo"}
        time.sleep(0.2)
        assert accepted == []
        # The same probe with the network explicitly given does connect: the test can fail.
        with BwrapSandbox(ws, network=True) as sb:
            r = sb.run(["python3", "-c", probe], timeout=20)
            assert r.exit_code == 0 and "connected" in r.stdout, r
        deadline = time.monotonic() + 60  # the server thread may wait for a CPU on a busy machine
        while not accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert accepted == [b"PING"]
    finally:
        srv.close()


def test_timeout_kills_children_and_grandchildren(sb, ws):
    token = f"hb{uuid.uuid4().hex}"
    hb = ws / "heartbeat"
    script = (
        f"sh -c 'while :; do echo beat >> {hb}; sleep 0.1; done' {token}-grandchild & "
        f"sh -c 'sleep 1000' {token}-child & "
        f"while [ ! -s {hb} ]; do sleep 0.05; done; sleep 1000"  # the tree is up before the timeout can hit
    )
    start = time.monotonic()
    r = sb.run(script, timeout=5)
    assert r.timed_out and r.exit_code == 124
    assert "timed out" in r.note
    assert time.monotonic() - start < 60  # killed at its 5 s timeout, not after its 1000 s (busy machines: slack)
    assert hb.exists()
    size = hb.stat().st_size
    time.sleep(0.6)
    assert hb.stat().st_size == size, "the grandchild still writes its heartbeat"
    assert _procs_with(token) == []


def test_fork_bomb_is_contained(ws):
    token = f"bomb{uuid.uuid4().hex}"
    with BwrapSandbox(ws, limits=Limits(processes=64, timeout=30)) as sb:
        if not sb.info.enforced["processes"]:
            pytest.skip("no process limit can be enforced here (root without a writable pids cgroup)")
        start = time.monotonic()
        r = sb.run(f"# {token}\nbomb() {{ bomb | bomb & }}; bomb; sleep 60", timeout=4)
        assert r.exit_code != 0
        assert r.timed_out
        assert "process limit 64 reached" in r.note
        assert time.monotonic() - start < 45  # stopped at its 4 s timeout, not its 60 s sleep (busy machines)
        assert _procs_with(token) == []
        # The host is fine and the sandbox still works.
        assert subprocess.run(["true"]).returncode == 0
        assert sb.run("echo alive").stdout == "alive\n"


def test_memory_hog_is_contained(ws):
    with BwrapSandbox(ws, limits=Limits(memory_mb=256, timeout=30)) as sb:
        r = sb.run(["python3", "-c", "x = bytearray(1 << 30); print('allocated')"])
        assert r.exit_code != 0
        assert "allocated" not in r.stdout
        assert "MemoryError" in r.stderr or "memory" in r.note
        assert sb.run(["python3", "-c", "x = bytearray(50 << 20); print('ok')"]).stdout == "ok\n"


def test_memory_cgroup_caps_the_whole_tree(ws):
    """Three children each under RLIMIT_AS, together over the limit: the cgroup OOM-kills some."""
    hog = "import time; x = bytes([1]) * (120 << 20); time.sleep(1)"
    parent = (
        "import subprocess, sys\n"
        f"ps = [subprocess.Popen([sys.executable, '-c', {hog!r}]) for _ in range(3)]\n"
        "codes = [p.wait() for p in ps]; print(codes); sys.exit(max(abs(c) for c in codes))"
    )
    with BwrapSandbox(ws, limits=Limits(memory_mb=200, timeout=30)) as sb:
        if not sb.info.enforced["memory_cgroup"]:
            pytest.skip("no memory cgroup can be created here")
        r = sb.run(["python3", "-c", parent])
        assert r.exit_code == 9 and "-9" in r.stdout, r
        assert "memory limit 200 MB exceeded" in r.note


def test_file_size_limit(ws):
    with BwrapSandbox(ws, limits=Limits(file_size_mb=1)) as sb:
        r = sb.run("head -c 3000000 /dev/zero > big")
        assert r.exit_code != 0
        assert (ws / "big").stat().st_size <= 1 << 20


def test_huge_and_binary_output_is_capped(ws):
    with BwrapSandbox(ws, limits=Limits(output_bytes=10_000)) as sb:
        r = sb.run("printf START; head -c 30000000 /dev/zero | tr '\\0' a; printf END")
        assert r.exit_code == 0
        assert r.stdout.startswith("STARTaaa") and r.stdout.endswith("aaaEND")
        assert r.stdout_cut == 30_000_008 - 10_000
        assert "bytes cut" in r.stdout
        assert len(r.stdout) < 10_200
        r = sb.run("head -c 200000 /dev/urandom; head -c 200000 /dev/urandom >&2")
        assert r.exit_code == 0
        assert isinstance(r.stdout, str) and r.stdout_cut > 0 and r.stderr_cut > 0


def test_exit_code_stdout_and_stderr_are_faithful(sb):
    r = sb.run("echo out; echo err >&2; exit 42")
    assert (r.exit_code, r.stdout, r.stderr, r.timed_out) == (42, "out\n", "err\n", False)
    r = sb.run(["printf", "%s|", "a b", "$HOME", "c"])
    assert r.stdout == "a b|$HOME|c|" and r.exit_code == 0
    r = sb.run("kill -9 $$")
    assert r.exit_code == 137 and "SIGKILL" in r.note
    r = sb.run(["no-such-command-xyz"])
    assert r.exit_code == 127


def test_environment_is_clean_and_passed(sb, monkeypatch):
    monkeypatch.setenv("REPOLOOP_HOST_SECRET", "s3cret")
    r = sb.run("env", env={"FOO": "bar baz"})
    assert "FOO=bar baz" in r.stdout
    assert "s3cret" not in r.stdout


def test_path_is_kept_and_the_workspace_venv_comes_first(ws):
    (ws / ".venv" / "bin").mkdir(parents=True)
    tool = ws / ".venv" / "bin" / "mytool"
    tool.write_text("#!/bin/sh\necho from-venv\n")
    tool.chmod(0o755)
    with BwrapSandbox(ws) as sb:
        r = sb.run("mytool; echo $PATH")
        assert r.stdout.splitlines()[0] == "from-venv", r
        assert r.stdout.splitlines()[1].startswith(f"{ws}/.venv/bin:")
        r = sb.run("echo $PATH", env={"PATH": "/opt/custom/bin:/usr/bin:/bin"})
        assert r.stdout == "/opt/custom/bin:/usr/bin:/bin\n"


def test_cwd_inside_workspace_only(sb, ws):
    (ws / "sub").mkdir()
    assert sb.run("pwd", cwd="sub").stdout.strip() == str(ws / "sub")
    with pytest.raises(RepoloopError):
        sb.run("pwd", cwd="../..")


def test_open_sandbox_by_name_and_auto(ws, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with open_sandbox(None, ws) as s:  # no engine answers: bubblewrap
        assert s.kind == "bwrap"
        assert s.run("echo ok").stdout == "ok\n"
    with pytest.raises(RepoloopError, match="unknown sandbox"):
        open_sandbox("chroot", ws)


def test_missing_workspace_is_a_clear_error(tmp_path):
    with pytest.raises(RepoloopError, match="not a directory"):
        BwrapSandbox(tmp_path / "nope").start()


def test_sandbox_dies_with_its_parent(ws):
    """Kill the Python process that owns the sandbox with SIGKILL: the command dies too."""
    import signal
    import sys

    token = f"orphan{uuid.uuid4().hex}"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from repoloop.sandbox.bwrap import BwrapSandbox\n"
        f"sb = BwrapSandbox(Path({str(ws)!r})); sb.start()\n"
        f"sb.run(\"touch started; sh -c 'sleep 1000' {token}\", timeout=60)\n"
    )
    owner = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1])
    try:
        for _ in range(200):
            if (ws / "started").exists() and _procs_with(token):
                break
            time.sleep(0.05)
        assert _procs_with(token), "the sandboxed command never started"
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        for _ in range(100):
            if not _procs_with(token):
                break
            time.sleep(0.05)
        assert _procs_with(token) == []
    finally:
        if owner.poll() is None:
            owner.kill()
