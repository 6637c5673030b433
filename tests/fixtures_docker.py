"""A real Docker engine for the docker sandbox tests (a pytest plugin module).

Session-scoped: starts `dockerd` (vfs storage, no bridge, no iptables) in a private directory
when it is installed and we are root, imports a tiny image built from a local rootfs tarball
(busybox, or the host's own sh and coreutils with their libraries; nothing is pulled), and stops
the daemon by its pid at the end. Where no engine can run, the tests that use it skip saying why.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

IMAGE = "repoloop-sandbox-test:latest"
_TOOLS = ("sh", "id", "cat", "sleep", "ls", "dd", "seq", "echo", "touch", "kill", "head", "grep", "rm", "mkdir", "true", "cp",
          "chmod")


@dataclass(frozen=True)
class DockerEngine:
    base_url: str
    image: str


def _libs(binary: str) -> list[str]:
    """Shared libraries a binary needs (empty for a static one)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        for p in parts:
            if p.startswith("/"):
                libs.append(p)
                break
    return libs


def _rootfs_tar(dest: Path) -> None:
    """A minimal image: busybox (applets as links) or host binaries, plus their libraries."""
    files: dict[str, str] = {}  # path in image -> host path
    links: dict[str, str] = {}
    busybox = shutil.which("busybox")
    if busybox:
        files["/bin/busybox"] = os.path.realpath(busybox)
        for t in _TOOLS:
            links[f"/bin/{t}"] = "busybox"
    else:
        for t in _TOOLS:
            host = shutil.which(t)
            if host:
                files[f"/bin/{t}"] = os.path.realpath(host)
    for host in list(files.values()):
        for lib in _libs(host):
            files.setdefault(lib, os.path.realpath(lib))
    with tarfile.open(dest, "w") as tar:

        dirs_done: set[str] = set()

        def add_dir(name: str, mode: int = 0o755) -> None:
            if name in dirs_done:
                return
            dirs_done.add(name)
            ti = tarfile.TarInfo(name.lstrip("/"))
            ti.type, ti.mode = tarfile.DIRTYPE, mode
            tar.addfile(ti)

        for d in ("/bin", "/etc", "/proc", "/sys", "/dev", "/lib", "/lib64", "/usr", "/usr/lib", "/root"):
            add_dir(d)
        add_dir("/tmp", 0o1777)
        for path, host in sorted(files.items()):
            parents = []
            parent = os.path.dirname(path)
            while parent not in ("/", ""):
                parents.append(parent)
                parent = os.path.dirname(parent)
            for p in reversed(parents):
                add_dir(p)
            tar.add(host, arcname=path.lstrip("/"))
        for path, target in links.items():
            ti = tarfile.TarInfo(path.lstrip("/"))
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            tar.addfile(ti)
        passwd = b"root:x:0:0:root:/root:/bin/sh\n"
        ti = tarfile.TarInfo("etc/passwd")
        ti.size = len(passwd)
        tar.addfile(ti, io.BytesIO(passwd))


def _wait_engine(base_url: str, proc: subprocess.Popen, seconds: float) -> str | None:
    import docker

    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"dockerd exited with {proc.returncode}"
        try:
            c = docker.DockerClient(base_url=base_url, timeout=2)
            c.ping()
            c.close()
            return None
        except Exception as e:
            last = str(e)[:200]
        time.sleep(0.2)
    return f"dockerd did not answer within {seconds:g}s: {last}"


def _stop(proc: subprocess.Popen, pidfile: Path) -> None:
    pids = {proc.pid}
    try:
        pids.add(int(pidfile.read_text().strip()))
    except (OSError, ValueError):
        pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=5)


@pytest.fixture(scope="session")
def docker_engine():
    """A running private Docker engine with a tiny local image, or a skip saying why not."""
    dockerd = shutil.which("dockerd")
    if not dockerd:
        pytest.skip("dockerd is not installed (apt-get install docker.io)")
    if os.geteuid() != 0:
        pytest.skip("starting a private dockerd needs root")
    try:
        import docker
    except ImportError:
        pytest.skip("the docker Python package is not installed")
    d = Path(tempfile.mkdtemp(prefix="rld-", dir="/tmp"))  # short: unix socket paths are limited
    sock = d / "docker.sock"
    base_url = f"unix://{sock}"
    log = open(d / "dockerd.log", "wb")
    proc = subprocess.Popen(
        [
            dockerd, "--storage-driver=vfs", "--bridge=none", "--iptables=false", "--ip-forward=false",
            "--data-root", str(d / "root"), "--exec-root", str(d / "exec"), "--pidfile", str(d / "dockerd.pid"),
            "-H", base_url,
        ],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        why = _wait_engine(base_url, proc, 30)
        if why:
            tail = (d / "dockerd.log").read_text(errors="replace")[-500:]
            pytest.skip(f"no Docker engine could run here: {why}; log: {tail}")
        tar = d / "rootfs.tar"
        _rootfs_tar(tar)
        client = docker.DockerClient(base_url=base_url, timeout=60)
        repo, tag = IMAGE.split(":")
        client.api.import_image_from_file(str(tar), repository=repo, tag=tag)
        client.images.get(IMAGE)
        client.close()
        yield DockerEngine(base_url=base_url, image=IMAGE)
    finally:
        try:
            c = docker.DockerClient(base_url=base_url, timeout=10)
            for ct in c.containers.list(all=True):
                ct.remove(force=True)
            c.close()
        except Exception:
            pass
        _stop(proc, d / "dockerd.pid")
        log.close()
        subprocess.run(["umount", "-R", str(d / "exec")], capture_output=True)  # netns mounts, if any
        shutil.rmtree(d, ignore_errors=True)
