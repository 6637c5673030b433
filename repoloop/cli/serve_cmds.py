"""`repoloop serve` (MCP server) and `repoloop watch` (keep the index fresh)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from repoloop.cli.common import add_repo_args, index_dir, repo_root
from repoloop.errors import RepoloopError
from repoloop.retrieval.limits import DEFAULT_QUERY_TIMEOUT_S


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="MCP server with the retrieval tools (stdio, or streamable HTTP with --http PORT)",
        description="Serve search_code, get_symbol, get_context, repo_map and outline over the Model "
        "Context Protocol: stdio by default, streamable HTTP on 127.0.0.1 with --http PORT.",
    )
    add_repo_args(p, json_flag=False)
    p.add_argument("--http", type=int, metavar="PORT", default=None,
                   help="serve streamable HTTP on 127.0.0.1:PORT/mcp instead of stdio (0: any free port)")
    p.add_argument("--watch", action="store_true", help="also follow file changes and keep the index fresh")
    p.add_argument("--lexical", action="store_true",
                   help="no embedding model: lexical, graph and name signals only (starts faster)")
    p.add_argument("--rerank", action="store_true",
                   help="on an index built with --no-embed: re-order the top files by embedding similarity, "
                        "embedding their chunks at query time (cached; seconds for files not seen before)")
    p.add_argument("--query-timeout", type=float, default=None, metavar="SECONDS",
                   help="stop a tool call that runs longer and answer a tool error, so one slow call "
                        f"cannot hold the others (default {DEFAULT_QUERY_TIMEOUT_S:g}; 0: no limit)")
    _add_watch_args(p)
    p.set_defaults(func=_serve)

    w = sub.add_parser(
        "watch",
        help="follow file changes and re-index what changed (debounced)",
        description="Bring the index up to date, then re-index changed files as they change, until Ctrl-C.",
    )
    add_repo_args(w, json_flag=False)
    _add_watch_args(w)
    w.add_argument("--poll", action="store_true", help="poll the file system instead of inotify")
    w.set_defaults(func=_watch)


def _add_watch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-embed", action="store_true", help="re-index without computing embeddings")
    p.add_argument("--debounce", type=float, default=0.3, metavar="SECONDS",
                   help="quiet period before re-indexing (default 0.3)")


def _serve(args: argparse.Namespace) -> int:
    from repoloop.retrieval import RetrievalOptions
    from repoloop.service.mcp_server import ServeOptions, serve

    serve(ServeOptions(
        repo=repo_root(args.repo),
        index_dir=index_dir(args),
        http_port=args.http,
        watch=args.watch,
        retrieval=RetrievalOptions.from_env(lexical_only=args.lexical, rerank=args.rerank),
        embed=not args.no_embed,
        debounce=_debounce(args.debounce),
        query_timeout=_query_timeout(args.query_timeout),
    ))
    return 0


def _query_timeout(value: float | None) -> float | None:
    """--query-timeout: seconds per tool call; 0 turns the limit off."""
    if value is None:
        return DEFAULT_QUERY_TIMEOUT_S
    if not value >= 0:  # also NaN
        raise RepoloopError(f"--query-timeout {value}: must be a number of seconds, 0 or more")
    return value or None


def _watch(args: argparse.Namespace) -> int:
    from repoloop.service.warm import ModelLoads
    from repoloop.service.watch import PipelineIndexer, UpdateReport, Watcher

    repo = repo_root(args.repo)
    idx = index_dir(args)

    def report(r: UpdateReport) -> None:
        print(f"repoloop: {r.line()}", file=sys.stderr, flush=True)

    # One embedder for every pass (the model is read once), and a log line when it is read.
    from repoloop.indexer.config import EmbedConfig

    embed_config = EmbedConfig.from_env(os.environ)  # the user's REPOLOOP_EMBED_*, read once
    indexer = PipelineIndexer(repo, idx, embed=not args.no_embed, embed_config=embed_config)
    watcher = Watcher(repo, indexer, index_dir=idx,
                      debounce=_debounce(args.debounce), on_update=report, polling=args.poll)
    with ModelLoads(sys.stderr):
        first = watcher.run_pass(None)
        if first.error:
            return 1
        watcher.start()
        signal.signal(signal.SIGTERM, _interrupt)  # stop between passes, like Ctrl-C
        print(f"repoloop: watching {repo} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        try:
            watcher.run_forever()
        except KeyboardInterrupt:
            pass
        finally:
            watcher.stop()
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _debounce(value: float) -> float:
    from repoloop.errors import RepoloopError

    if not 0 <= value <= 60:
        raise RepoloopError(f"--debounce {value}: must be between 0 and 60 seconds")
    return value
