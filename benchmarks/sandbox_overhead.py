"""Per-command overhead of each sandbox backend against running on the host (`local`), same run.

    nice .venv/bin/python benchmarks/sandbox_overhead.py [--n 30]

Starts a private dockerd (like the tests) when one is installed and we are root; prints medians
and ratios as a Markdown table. The docker image is the tests' tiny local one (no python in it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repoloop.sandbox import Limits  # noqa: E402
from repoloop.sandbox.bwrap import BwrapSandbox  # noqa: E402
from repoloop.sandbox.docker_backend import DockerSandbox  # noqa: E402
from repoloop.sandbox.local import LocalSandbox  # noqa: E402

# argv commands with absolute paths: the same program everywhere (a string command would run
# `bash -lc`, whose cost is mostly the user's login profile on the host, absent in bwrap).
COMMANDS = {
    "true": ["true"],
    "/bin/sh -c 'echo hi'": ["/bin/sh", "-c", "echo hi"],
    "/usr/bin/python3 -c pass": ["/usr/bin/python3", "-c", "pass"],
}


def median_ms(sb, cmd, n: int) -> float:
    sb.run(cmd)  # warm
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = sb.run(cmd)
        times.append((time.perf_counter() - t) * 1000)
        assert r.exit_code == 0, r
    return statistics.median(times)


def start_engine(d: Path):
    from tests.fixtures_docker import IMAGE, _rootfs_tar, _wait_engine

    base_url = f"unix://{d}/docker.sock"
    proc = subprocess.Popen(
        ["dockerd", "--storage-driver=vfs", "--bridge=none", "--iptables=false", "--ip-forward=false",
         "--data-root", f"{d}/root", "--exec-root", f"{d}/exec", "--pidfile", f"{d}/dockerd.pid", "-H", base_url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    if _wait_engine(base_url, proc, 30):
        return proc, None, None
    import docker

    _rootfs_tar(d / "rootfs.tar")
    c = docker.DockerClient(base_url=base_url)
    repo, tag = IMAGE.split(":")
    c.api.import_image_from_file(str(d / "rootfs.tar"), repository=repo, tag=tag)
    c.close()
    return proc, base_url, IMAGE


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30)
    args = ap.parse_args()
    ws = Path(tempfile.mkdtemp(prefix="rl-bench-ws-"))
    rows: dict[str, dict[str, float]] = {}
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()):
        local = LocalSandbox(ws, limits=Limits())
        local.start()
    with BwrapSandbox(ws) as bw:
        for name, cmd in COMMANDS.items():
            rows[name] = {"local": median_ms(local, cmd, args.n), "bwrap": median_ms(bw, cmd, args.n)}
    d = Path(tempfile.mkdtemp(prefix="rlb-", dir="/tmp"))
    proc = None
    start_stop = None
    try:
        if os.geteuid() == 0 and subprocess.run(["which", "dockerd"], capture_output=True).returncode == 0:
            proc, url, image = start_engine(d)
        else:
            url = image = None
        if url:
            t = time.perf_counter()
            with DockerSandbox(ws, base_url=url, image=image) as dk:
                t_started = time.perf_counter()
                for name, cmd in COMMANDS.items():
                    if "python" not in name:
                        rows[name]["docker"] = median_ms(dk, cmd, args.n)
                t_stop = time.perf_counter()
            start_stop = ((t_started - t) * 1000, (time.perf_counter() - t_stop) * 1000)
    finally:
        if proc:
            from tests.fixtures_docker import _stop

            _stop(proc, d / "dockerd.pid")
        subprocess.run(["rm", "-rf", str(d)])
    print(f"n={args.n} per command, median ms (ratio to local)\n")
    print("| command | local | bwrap | docker |\n|---|---|---|---|")
    for name, r in rows.items():
        cells = [f"{r['local']:.1f}"]
        for k in ("bwrap", "docker"):
            cells.append(f"{r[k]:.1f} ({r[k] / r['local']:.1f}x)" if k in r else "n/a")
        print(f"| {name} | " + " | ".join(cells) + " |")
    if start_stop:
        print(f"\ndocker sandbox start (container create+start+probe): {start_stop[0]:.0f} ms; stop (remove): {start_stop[1]:.0f} ms")
    subprocess.run(["rm", "-rf", str(ws)])


if __name__ == "__main__":
    main()
