"""`repoloop tags`: a ctags-compatible tags file (or JSON) of a tree's definitions, without an index."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from repoloop.cli.common import print_json, repo_root
from repoloop.errors import RepoloopError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tags", help="write a ctags-compatible tags file of every definition (no index needed)")
    p.add_argument("path", nargs="?", default=None, metavar="PATH",
                   help="tree to tag (default: --repo, else the current directory's repository)")
    p.add_argument("--repo", default=None, help="same as PATH")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="tags file to write, '-' for stdout (default: PATH/tags; stdout with --json)")
    p.add_argument("--json", action="store_true", help='print {"tags": [...]} for programs')
    p.add_argument("--jobs", type=int, default=None, metavar="N", help="worker processes (default: one per CPU)")
    p.add_argument("--refs", action="store_true",
                   help="also identifier references: one per name and file, with its first line and count")
    p.add_argument("--no-reuse", action="store_true",
                   help="parse every file even where a fresh index (PATH/.repoloop) already has its symbols")
    p.set_defaults(func=cmd_tags)


def cmd_tags(args: argparse.Namespace) -> int:
    from repoloop.indexer.tags.extract import extract_tags
    from repoloop.indexer.tags.render import ctags_lines, to_json

    if args.jobs is not None and args.jobs < 1:
        raise RepoloopError(f"--jobs {args.jobs}: must be at least 1")
    root = _root(args.path or args.repo)
    out = args.output if args.output is not None else ("-" if args.json else str(root / "tags"))
    target = None if out == "-" else _target(out)
    t = time.perf_counter()
    result = extract_tags(root, jobs=args.jobs, refs=args.refs, reuse=not args.no_reuse)
    if args.json:
        obj = to_json(result, refs=args.refs)
        if target is None:
            print_json(obj)
        else:
            import json

            _write(target, [json.dumps(obj, ensure_ascii=False)])
    else:
        prefix = "" if target is None else _prefix(root, target.parent)
        lines = ctags_lines(result, prefix)
        if target is None:
            sys.stdout.writelines(f"{ln}\n" for ln in lines)
        else:
            _write(target, lines)
    if target is not None:
        skipped = sum(result.skipped.values())
        reused = f", {result.reused} from the index" if result.reused else ""
        print(f"{len(result.tags)} tags{f', {len(result.refs)} refs' if args.refs else ''} from {result.files} files"
              f"{reused} ({skipped} skipped) in {time.perf_counter() - t:.2f} s -> {target}", file=sys.stderr)
    return 0


def _root(arg: str | None) -> Path:
    if arg is None:
        return repo_root(None)
    p = Path(arg).expanduser()
    if not p.exists():
        raise RepoloopError(f"{arg}: no such directory")
    if not p.is_dir():
        raise RepoloopError(f"{arg}: not a directory")
    return p.resolve()


def _target(out: str) -> Path:
    p = Path(out).expanduser()
    p = p if p.is_absolute() else Path.cwd() / p
    # The directory resolved, the name not: a `tags` symlink planted in a repository (to
    # ~/.bashrc, say) is replaced by the new file, never written through.
    p = p.parent.resolve() / p.name
    if p.is_dir() and not p.is_symlink():
        raise RepoloopError(f"-o {out}: is a directory")
    if not p.parent.is_dir():
        raise RepoloopError(f"-o {out}: no such directory {p.parent}")
    return p


def _prefix(root: Path, outdir: Path) -> str:
    """Paths in a tags file are relative to the file's directory (that is how editors resolve them)."""
    rel = os.path.relpath(root, outdir)
    return "" if rel == "." else rel.replace(os.sep, "/")


def _write(target: Path, lines) -> None:  # noqa: ANN001 - an iterable of lines without newlines
    """Write beside the target and rename: an error never leaves a half-written or emptied tags file."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tags.", dir=target.parent)
    except OSError as e:
        raise RepoloopError(f"cannot write {target}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as f:
            f.writelines(f"{ln}\n" for ln in lines)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise RepoloopError(f"cannot write {target}: {e.strerror}") from None
