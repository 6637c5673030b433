"""The docker backend: one container per agent run, reused across steps, removed at the end.

The container never gets a network unless asked (`network_mode="none"`), runs as a non-root user
with no capabilities and a read-only root filesystem (a tmpfs /tmp), under memory, CPU and PID
limits, with the workspace bind-mounted read-write at the same path as on the host. Nothing is
pulled: a missing image is an error that says so. A timeout kills every process of the command
(`kill -9 -1` as the sandbox user spares only the container's init, `sleep`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repoloop.errors import RepoloopError
from repoloop.sandbox.base import (
    KIND_ENV,
    QUOTA_EXIT_CODE,
    TIMEOUT_EXIT_CODE,
    Command,
    Limits,
    RunResult,
    SandboxBase,
    SandboxInfo,
    exit_note,
    shell_argv,
)
from repoloop.sandbox.disk import DiskWatch
from repoloop.sandbox.gitmeta import GIT_ENV, git_mounts
from repoloop.sandbox.lend import SANDBOX_USER, Lend
from repoloop.sandbox.output import CappedBuffer

DEFAULT_IMAGE = "python:3.11-slim"
FALLBACK_USER = SANDBOX_USER  # when the workspace belongs to root: never run the container as root


def _client(base_url: str | None, timeout: int) -> Any:
    import docker

    if base_url:
        return docker.DockerClient(base_url=base_url, timeout=timeout)
    return docker.from_env(timeout=timeout)


def _where(base_url: str | None) -> str:
    return base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def engine_reachable(base_url: str | None = None, timeout: int = 3) -> str | None:
    """None if a Docker engine answers at base_url (or DOCKER_HOST), else why not."""
    try:
        import docker  # noqa: F401
    except ImportError:
        return "the `docker` Python package is not installed"
    try:
        c = _client(base_url, timeout)
        try:
            c.ping()
        finally:
            c.close()
    except Exception as e:  # docker wraps connection errors in several types
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        return f"no Docker engine reachable at {_where(base_url)}: {msg[:200]}"
    return None


class DockerSandbox(SandboxBase):
    kind = "docker"

    def __init__(
        self,
        workspace: Path,
        *,
        network: bool = False,
        limits: Limits | None = None,
        image: str | None = None,
        base_url: str | None = None,
        user: str | None = None,
        hide: Sequence[Path] = (),
    ) -> None:
        super().__init__(workspace, network=network, limits=limits)
        self.hide = [Path(p) for p in hide]
        self.image = image or DEFAULT_IMAGE  # the CLI passes $REPOLOOP_SANDBOX_IMAGE as `image`
        self.base_url = base_url
        self.user = user
        self.client: Any = None
        self.container: Any = None
        self._shell = "sh"
        self._lend: Lend | None = None
        self._disk: DiskWatch | None = None
        self.info = SandboxInfo(kind=self.kind, network=network)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self.started:
            return
        if not self.workspace.is_dir():
            raise RepoloopError(f"sandbox workspace {self.workspace} is not a directory")
        why = engine_reachable(self.base_url)
        if why:
            raise RepoloopError(why)
        import docker
        from docker.types import Ulimit

        self.client = _client(self.base_url, timeout=86400)  # run() enforces its own timeouts
        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            self.client.close()
            raise RepoloopError(
                f"docker image {self.image!r} is not available on this engine and nothing is pulled at "
                f"run time: `docker pull {self.image}` or build it first (or pass --image)"
            ) from None
        from docker.types import Mount

        user = self.user or self._resolve_user()
        self.user = user
        lim = self.limits
        ws = str(self.workspace)
        mounts, masks = [], {}
        for m in git_mounts(self.workspace):  # the workspace's git metadata: read-only, credentials masked
            if m.kind == "tmpfs":
                masks[str(m.dest)] = "ro,size=1m"
            else:
                src = "/dev/null" if m.kind == "null" else str(m.src)
                mounts.append(Mount(str(m.dest), src, type="bind", read_only=True))
        for h in self.hide:
            if h.is_symlink() or not h.exists():
                continue
            if h.is_dir():
                masks[str(h)] = "ro,size=1m"
            else:
                mounts.append(Mount(str(h), "/dev/null", type="bind", read_only=True))
        self._disk = DiskWatch.start(self.workspace, lim.disk_mb)
        opts: dict[str, Any] = dict(
            detach=True,
            network_mode="bridge" if self.network else "none",
            mem_limit=f"{lim.memory_mb}m",
            memswap_limit=f"{lim.memory_mb}m",
            nano_cpus=int(lim.cpus * 1e9),
            pids_limit=lim.processes,
            mounts=[Mount(ws, ws, type="bind", read_only=False), *mounts],
            working_dir=ws,
            read_only=True,
            tmpfs={"/tmp": f"rw,exec,nosuid,mode=1777,size={lim.tmp_mb}m", **masks},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            ulimits=[
                Ulimit(name="fsize", soft=lim.file_size_mb << 20, hard=lim.file_size_mb << 20),
                Ulimit(name="nofile", soft=lim.open_files, hard=lim.open_files),
                *([Ulimit(name="cpu", soft=lim.cpu_seconds, hard=lim.cpu_seconds)] if lim.cpu_seconds else []),
            ],
            environment={"HOME": "/tmp", "LANG": "C.UTF-8", "TERM": "dumb", KIND_ENV: self.kind,
                         **GIT_ENV},
            labels={"repoloop.sandbox": "1"},
        )
        # The idle keeper (an init that reaps orphans, and `sleep`) runs as the image's user with
        # no capabilities; commands run as `user`, so `kill -9 -1` from a command spares the keeper.
        try:
            try:
                self.container = self.client.containers.run(
                    self.image, command=["sleep", "2147483647"], init=True, **opts
                )
            except docker.errors.APIError as e:
                if "init" not in str(e).lower():
                    raise
                # No docker-init on this engine: a shell loop as PID 1 reaps orphans every second.
                self.container = self.client.containers.run(
                    self.image, command=["sh", "-c", "while :; do sleep 1; done"], **opts
                )
        except docker.errors.APIError as e:
            self._restore_owner()
            self.client.close()
            raise RepoloopError(
                f"docker could not start a container from {self.image!r}: {e.explanation or e}"
            ) from None
        self.started = True
        probe = self._exec(["sh", "-c", "command -v bash"], timeout=30, env=None, workdir=ws)
        self._shell = "bash" if probe.exit_code == 0 and probe.stdout.strip() else "sh"
        self.info.enforced = {
            "read_only_host": True,
            "network_isolated": not self.network,
            "memory": True,
            "processes": True,
            "file_size": True,
            "non_root": not user.startswith("0"),
            "git_metadata_read_only": True,
            "disk_quota": True,
        }

    def stop(self) -> None:
        if self.container is not None:
            try:
                self.container.remove(force=True)
            except Exception:
                pass
            self.container = None
        self._restore_owner()
        if self.client is not None:
            self.client.close()
            self.client = None
        self.started = False

    @property
    def container_id(self) -> str | None:
        return self.container.id if self.container is not None else None

    # -- workspace ownership ---------------------------------------------------------------------
    def _resolve_user(self) -> str:
        """The workspace owner's uid:gid, or a fixed non-root one when root owns the workspace
        (then the tree is lent to that uid for the run and given back to its owners at stop)."""
        st = self.workspace.stat()
        if st.st_uid != 0:
            return f"{st.st_uid}:{st.st_gid}"
        uid, gid = FALLBACK_USER
        if Lend.needed(self.workspace):
            self._lend = Lend.lend(self.workspace, FALLBACK_USER)
        return f"{uid}:{gid}"

    def _restore_owner(self) -> None:
        if self._lend is not None:
            self._lend.give_back()
            self._lend = None

    # -- running -------------------------------------------------------------------------------
    def run(
        self,
        command: Command,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> RunResult:
        if not self.started:
            self.start()
        return self._exec(
            shell_argv(command, self._shell), timeout=self._timeout(timeout), env=env, workdir=str(self._workdir(cwd))
        )

    def _exec(self, argv: list[str], *, timeout: float, env: Mapping[str, str] | None, workdir: str) -> RunResult:
        import docker

        api = self.client.api
        start = time.monotonic()

        def create() -> str:
            return api.exec_create(
                self.container.id, argv, stdout=True, stderr=True, user=self.user or "", workdir=workdir,
                environment=dict(env or {}),
            )["Id"]

        try:
            exec_id = create()
        except docker.errors.APIError as e:  # the container stopped (e.g. killed): bring it back once
            try:
                self.container.start()
                exec_id = create()
            except docker.errors.APIError:
                raise RepoloopError(f"the docker sandbox container is not usable: {e.explanation or e}") from None
        out, err = CappedBuffer(self.limits.output_bytes), CappedBuffer(self.limits.output_bytes)
        failure: list[BaseException] = []

        def pump() -> None:
            try:
                for o, e in api.exec_start(exec_id, stream=True, demux=True):
                    if o:
                        out.write(o)
                    if e:
                        err.write(e)
            except Exception as exc:  # engine went away mid-command
                failure.append(exc)

        t = threading.Thread(target=pump, daemon=True, name="repoloop-docker-exec")
        t.start()
        deadline = start + timeout
        wait = 0.02
        over_quota = self._disk.for_command() if self._disk is not None else None
        stopped: str | None = None
        while t.is_alive() and time.monotonic() < deadline:
            t.join(min(wait, max(deadline - time.monotonic(), 0)))
            wait = min(wait * 2, 0.1)
            if t.is_alive() and over_quota is not None:
                stopped = over_quota()
                if stopped:
                    break
            if t.is_alive() and not self._running(exec_id):
                break  # the command ended; a background child still holds its output open
        timed_out = t.is_alive() and time.monotonic() >= deadline
        # Like bwrap, nothing outlives a command: stray background processes are killed.
        self._kill_all()
        t.join(10)
        code = self._exit_code(exec_id)
        if code is None and (failure or t.is_alive()) and not stopped:
            why = failure[0] if failure else "no exit status"
            raise RepoloopError(f"the docker engine lost the command: {why}")
        if timed_out:
            code, note = TIMEOUT_EXIT_CODE, f"timed out after {timeout:g}s; the command's processes were killed"
        elif stopped:
            code, note = QUOTA_EXIT_CODE, f"{stopped}; the command was killed"
        elif over_quota is not None and (late := over_quota()):
            code, note = QUOTA_EXIT_CODE, f"{late}; found as the command ended"
        else:
            code = 1 if code is None else code
            note = exit_note(code, self.limits)
        return RunResult(
            exit_code=code,
            stdout=out.text(),
            stderr=err.text(),
            timed_out=timed_out,
            duration=time.monotonic() - start,
            stdout_cut=out.cut,
            stderr_cut=err.cut,
            note=note,
        )

    def _kill_all(self) -> None:
        """SIGKILL every process the sandbox user may signal, except the container's init.
        Where even that cannot start (the PID limit is exhausted), restart the container: its
        init dies, and with it everything else; the same container comes back (new /tmp)."""
        api = self.client.api
        try:
            eid = api.exec_create(self.container.id, ["sh", "-c", "kill -9 -1"], user=self.user or "")["Id"]
            api.exec_start(eid)
            code = self._exit_code(eid)
        except Exception:
            code = None
        if code in (0, 1):  # 1: nothing left to kill
            return
        try:
            self.container.restart(timeout=0)
        except Exception:
            pass

    def _running(self, exec_id: str) -> bool:
        try:
            return bool(self.client.api.exec_inspect(exec_id).get("Running", True))
        except Exception:  # the engine is busy or gone: keep waiting for the stream or the deadline
            return True

    def _exit_code(self, exec_id: str) -> int | None:
        for _ in range(50):
            try:
                info = self.client.api.exec_inspect(exec_id)
            except Exception:
                return None
            if not info.get("Running") and info.get("ExitCode") is not None:
                return int(info["ExitCode"])
            time.sleep(0.05)
        return None
