"""Confining model-supplied paths to the workspace: no `..` out, no absolute paths, no symlinks out,
and no `.git` anywhere (`sub/.git/HEAD`, `.GIT`: git metadata is never the model's to read or write;
case-insensitively, as case-insensitive file systems and git itself treat it)."""

from __future__ import annotations

import os
from pathlib import Path


class PathError(ValueError):
    """A path the model may not use; the message is shown to the model."""


_HIDDEN = {".git", ".repoloop"}  # top level: off limits
_NEVER = {".git"}  # at any depth
MAX_PATH_CHARS = 4096


def resolve_in(root: Path, path: str, *, must_exist: bool = False) -> Path:
    """`path` (relative to the workspace) resolved inside `root`, or PathError saying why not."""
    if not isinstance(path, str) or not path.strip():
        raise PathError("path is empty; give a path relative to the repository root, e.g. 'src/app.py'")
    p = path.strip()
    if len(p) > MAX_PATH_CHARS:
        raise PathError(f"the path is {len(p):,} characters long; paths are at most {MAX_PATH_CHARS}")
    if "\0" in p:
        raise PathError("the path contains a NUL character")
    if p.startswith("~") or os.path.isabs(p):
        raise PathError(f"absolute paths are not allowed ({p!r}); use a path relative to the repository root")
    parts = Path(p).parts
    if ".." in parts:
        raise PathError(f"'..' is not allowed in paths ({p!r}); stay inside the repository")
    if parts and parts[0].lower() in _HIDDEN:
        raise PathError(f"{parts[0]}/ is off limits")
    hidden = next((part for part in parts if part.lower() in _NEVER), None)
    if hidden is not None:
        raise PathError(f"{hidden}/ is off limits, at any depth ({p!r}): git metadata is not for editing")
    root_real = root.resolve()
    target = (root_real / p).resolve()  # follows symlinks
    if target != root_real and root_real not in target.parents:
        raise PathError(f"{p!r} leads outside the repository (through a symlink); refused")
    inside = target.relative_to(root_real).parts
    if any(part.lower() in _NEVER for part in inside) or (inside and inside[0].lower() in _HIDDEN):
        raise PathError(f"{p!r} leads into git metadata (through a symlink); refused")
    if must_exist and not target.exists():
        raise PathError(f"{p!r} does not exist")
    return target


def rel(root: Path, target: Path) -> str:
    return target.relative_to(root.resolve()).as_posix() or "."
