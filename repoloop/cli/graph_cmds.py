"""`repoloop deps` (what a file imports, what imports it) and `repoloop map` (the repo map)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from repoloop.cli.common import add_repo_args, index_dir, print_json, repo_root
from repoloop.errors import RepoloopError

DEFAULT_MAP_BUDGET = 1024


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deps", help="what a file imports and what imports it")
    p.add_argument("file", metavar="FILE", help="a file of the repository (relative to the repo or the cwd)")
    p.add_argument("--files", action="store_true",
                   help="Go: list every file of each imported package (default: each package once)")
    add_repo_args(p)
    p.set_defaults(func=cmd_deps)

    p = sub.add_parser("map", help="the repo map: the most important files' signatures, within a budget")
    add_repo_args(p)
    p.add_argument("--budget", type=int, default=DEFAULT_MAP_BUDGET, metavar="TOKENS",
                   help=f"token budget (default {DEFAULT_MAP_BUDGET})")
    p.add_argument("--focus", nargs="+", default=[], metavar="PATH_OR_SYMBOL",
                   help="files, directories or symbols to center the ranking on")
    p.set_defaults(func=cmd_map)


def _open(args: argparse.Namespace):
    from repoloop.indexer.store import IndexStore

    repo = repo_root(args.repo)
    return repo, IndexStore.open(repo, index_dir(args), readonly=True)


def _rel_path(repo: Path, arg: str, known) -> str:
    """FILE as the index names it: relative to the repo root, given relative to it or to the cwd."""
    cand = arg.replace(os.sep, "/")
    if cand.startswith("./"):
        cand = cand[2:]
    if known(cand):
        return cand
    p = Path(arg).expanduser()
    p = p if p.is_absolute() else Path.cwd() / p
    try:
        rel = os.path.relpath(os.path.normpath(p), repo).replace(os.sep, "/")
    except ValueError:
        rel = ""
    if rel and not rel.startswith("../") and known(rel):
        return rel
    raise RepoloopError(f"{arg}: not a file in the index of {repo}")


def cmd_deps(args: argparse.Namespace) -> int:
    from repoloop.retrieval.graph import deps

    repo, store = _open(args)
    with store:
        path = _rel_path(repo, args.file, lambda p: store.file(p) is not None)
        data = deps(store, path)
    if args.json:
        print_json(data)
        return 0
    print(f"{data['path']}")
    packages = data.get("packages")
    if packages is not None and not args.files:  # Go: a package once, its files with --files
        print(f"imports ({len(packages)} packages, {len(data['imports'])} files; --files lists them):")
        for g in packages:
            print(f"  {g['package'] or '.'}/ ({len(g['files'])} files):{g['line']}")
    else:
        print(f"imports ({len(data['imports'])}):")
        for d in data["imports"]:
            print(f"  {d['path']}:{d['line']}")
    print(f"imported by ({len(data['imported_by'])}):")
    for d in data["imported_by"]:
        print(f"  {d['path']}:{d['line']}")
    if data["unresolved"]:
        print(f"outside the repo ({len(data['unresolved'])}): {', '.join(data['unresolved'])}")
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    from repoloop.retrieval import RetrievalOptions
    from repoloop.retrieval.repomap import build_repo_map
    from repoloop.retrieval.tokens_count import get_counter

    if args.budget < 1:
        raise RepoloopError(f"--budget must be at least 1, not {args.budget}")
    counter = get_counter(RetrievalOptions.from_env().tokenizer)  # the user's REPOLOOP_TOKENIZER
    _repo, store = _open(args)
    with store:
        m = build_repo_map(store, args.budget, args.focus, counter)
    if args.json:
        print_json(m.to_json())
        return 0
    for seed in m.unmatched_focus:
        print(f"repoloop: warning: --focus {seed}: no such file or symbol in the index", file=sys.stderr)
    if m.text:
        print(m.text)
    return 0
