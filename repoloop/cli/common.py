"""Options and helpers shared by every command group."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from repoloop.errors import RepoloopError


def add_repo_args(p: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    p.add_argument("--repo", default=None, help="repository root (default: the current directory's repository)")
    p.add_argument("--index-dir", default=None, help="index directory (default: REPO/.repoloop)")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print JSON for programs")


def repo_root(arg: str | None) -> Path:
    """The repository root: --repo if given, else the git top-level of the cwd, else the cwd."""
    if arg:
        p = Path(arg).expanduser().resolve()
        if not p.is_dir():
            raise RepoloopError(f"--repo {arg}: not a directory")
        return p
    cwd = Path.cwd()
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip()).resolve()
    except (OSError, subprocess.SubprocessError):
        pass
    return cwd.resolve()


def index_dir(args: argparse.Namespace) -> Path | None:
    return Path(args.index_dir).expanduser().resolve() if getattr(args, "index_dir", None) else None


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, ensure_ascii=False, indent=None)
    sys.stdout.write("\n")


def console(*, stderr: bool = False) -> Any:
    """A rich Console for people, that prints every string literally: no markup, no emoji codes, no
    highlighting. Text from a repository (`dict[str, Any]`, `-> &[u8]`, a `[/x]` in a default value,
    `:smile:` in a docstring) must come out as written, and a stray `[/x]` must not raise; styles
    are given explicitly with `styled()`. Soft-wrapped: a long line (a path, a signature, a diff
    line) is never broken with newlines, which would corrupt output piped to a file or a pager (rich
    wraps at 80 columns when stdout is not a terminal); the terminal wraps it for display."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False, emoji=False)


def styled(*parts: str | tuple[str, str]) -> Any:
    """A rich Text from literal pieces: a str is printed as is, a (text, style) pair in that style.
    The text is never parsed for markup, whatever it holds."""
    from rich.text import Text

    return Text.assemble(*parts)
