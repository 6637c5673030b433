"""`repoloop exec`: run one command in the sandbox exactly as the agent would, to try a set-up."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "exec",
        help="run one command in the sandbox, as the agent would",
        description="Run CMD in a sandbox over the repository (docker if an engine answers, else "
        "bubblewrap; `local` only when asked). The checkout's .git is read-only inside, untracked "
        "secret files (.env, keys) are hidden, and the command never runs as root. The exit code is "
        "the command's; 124 on a timeout, 153 when the workspace outgrew its disk quota.",
    )
    p.add_argument("--repo", default=None, help="workspace: the repository root (default: the current one)")
    p.add_argument("--sandbox", default=None, metavar="KIND", help="bwrap, docker or local (default: auto)")
    p.add_argument("--timeout", type=float, default=300.0, metavar="S", help="wall-clock limit (default 300)")
    p.add_argument("--network", action="store_true", help="give the command a network (default: none)")
    p.add_argument("--image", default=None, help="docker image (default: $REPOLOOP_SANDBOX_IMAGE or python:3.11-slim)")
    p.add_argument("--memory-mb", type=int, default=None, help="memory limit in MB (default 2048)")
    p.add_argument("--processes", type=int, default=None, help="process limit (default 256)")
    p.add_argument("--disk-mb", type=int, default=None,
                   help="how much the workspace may grow, in MB (default 2048); /tmp is 512 MB")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of the output")
    p.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD...",
                   help="the command (one argument runs through the shell, several run as an argv)")
    p.set_defaults(func=_exec)


def untracked_secrets(root: Path, max_entries: int = 200_000) -> list[Path]:
    """Files of the checkout that look like secrets (`.env`, keys, credentials: the indexer's list)
    and that git does not track: a command run over the user's own checkout never reads them.
    Tracked ones are in the repository's history anyway, and tests may need them."""
    from repoloop.gitsafe import git
    from repoloop.indexer.walk import PRUNED_DIRS, is_secret

    found: list[Path] = []
    seen = 0
    for top, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in PRUNED_DIRS and d not in (".git", ".repoloop")]
        found.extend(Path(top) / f for f in files if is_secret(f))
        seen += len(files) + len(dirs)
        if seen > max_entries:
            break
    if not found:
        return []
    out = git(["ls-files", "-z", "--", *(str(p.relative_to(root)) for p in found)], root, check=False)
    tracked = {root / t for t in out.stdout.split("\0") if t} if out.returncode == 0 else set()
    return [p for p in found if p not in tracked]


def _exec(args: argparse.Namespace) -> int:
    from dataclasses import asdict, replace

    from repoloop.cli.common import print_json, repo_root
    from repoloop.errors import RepoloopError
    from repoloop.sandbox import Limits, open_sandbox

    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise RepoloopError("no command given: repoloop exec [options] -- CMD...")
    if args.timeout <= 0:
        raise RepoloopError("--timeout must be positive")
    limits = Limits(timeout=args.timeout)
    if args.memory_mb:
        limits = replace(limits, memory_mb=args.memory_mb)
    if args.processes:
        limits = replace(limits, processes=args.processes)
    if args.disk_mb:
        limits = replace(limits, disk_mb=args.disk_mb)
    command: str | list[str] = cmd[0] if len(cmd) == 1 else cmd
    root = repo_root(args.repo)
    image = args.image or os.environ.get("REPOLOOP_SANDBOX_IMAGE")  # read here, once, and passed down
    sandbox = open_sandbox(args.sandbox, root, network=args.network, image=image, limits=limits,
                           hide=untracked_secrets(root))
    with sandbox:
        result = sandbox.run(command, timeout=args.timeout)
    if args.json:
        print_json({"sandbox": sandbox.kind, **asdict(result)})
    else:
        sys.stdout.write(result.stdout)
        sys.stdout.flush()
        sys.stderr.write(result.stderr)
        if result.timed_out:
            print(f"repoloop: command timed out after {args.timeout:g}s (its process tree was killed)", file=sys.stderr)
        elif result.note:
            print(f"repoloop: {result.note}", file=sys.stderr)
    return result.exit_code
