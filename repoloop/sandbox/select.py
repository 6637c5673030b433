"""Choosing a backend: docker if an engine answers, else bubblewrap if installed, else a clear
error. `local` is never chosen silently: only when asked for by name."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from repoloop.errors import RepoloopError
from repoloop.sandbox.base import Limits, SandboxBase

KINDS = ("bwrap", "docker", "local")


def docker_available(base_url: str | None = None) -> bool:
    from repoloop.sandbox.docker_backend import engine_reachable

    return engine_reachable(base_url) is None


def choose_kind(base_url: str | None = None) -> str:
    from repoloop.sandbox.bwrap import bwrap_path

    if docker_available(base_url):
        return "docker"
    if bwrap_path():
        return "bwrap"
    raise RepoloopError(
        "no sandbox available: start a Docker engine (the `docker` backend) or install bubblewrap "
        "(apt-get install bubblewrap); `--sandbox local` runs unisolated and must be asked for"
    )


def open_sandbox(
    kind: str | None,
    workspace: Path,
    *,
    network: bool = False,
    image: str | None = None,
    limits: Limits | None = None,
    ro_binds: Sequence[Path] = (),
    docker_url: str | None = None,
    hide: Sequence[Path] = (),
) -> SandboxBase:
    """A sandbox of `kind` (None: auto) over `workspace`, not yet started (use `with` or start()).
    `hide`: paths inside the workspace the command must not read (masked by an empty file/dir)."""
    kind = (kind or "").strip().lower() or None
    if kind is not None and kind not in KINDS:
        raise RepoloopError(f"unknown sandbox {kind!r}: choose one of {', '.join(KINDS)}")
    if kind is None:
        kind = choose_kind(docker_url)
    if kind == "bwrap":
        from repoloop.sandbox.bwrap import BwrapSandbox

        return BwrapSandbox(workspace, network=network, limits=limits, ro_binds=ro_binds, hide=hide)
    if kind == "docker":
        from repoloop.sandbox.docker_backend import DockerSandbox

        return DockerSandbox(workspace, network=network, limits=limits, image=image, base_url=docker_url,
                             hide=hide)
    from repoloop.sandbox.local import LocalSandbox

    return LocalSandbox(workspace, network=network, limits=limits)
