"""`repoloop search | context`: ranked snippets, and the budgeted context the agent would get.

Heavy imports stay inside the handlers; with --lexical (or a --no-embed index) neither torch nor
chromadb is ever imported.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from repoloop.cli.common import add_repo_args, console, index_dir, print_json, repo_root, styled
from repoloop.errors import RepoloopError

if TYPE_CHECKING:
    from repoloop.retrieval import Retriever, SearchHit


_SEARCH_FILES_DEPTH = 50  # chunks `search --files` ranks files from


def _retrieval_args(p: argparse.ArgumentParser) -> None:
    add_repo_args(p)
    p.add_argument("--lexical", action="store_true", help="no dense retrieval (never loads the model)")
    p.add_argument("--signals", default=None, metavar="LIST",
                   help="comma list of signals to use: bm25,dense,name,graph,trace (default: all)")
    p.add_argument("--chroma-url", default=None, metavar="URL",
                   help="Chroma server (default: the one the index was built with, else embedded)")
    p.add_argument("--rerank", action="store_true",
                   help="on an index built with --no-embed: re-order the top 20 files by embedding "
                        "similarity, embedding their chunks now (seconds for files not seen before, "
                        "then cached in the index's vectors.db)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="ranked code snippets for a query")
    p.add_argument("query")
    p.add_argument("-k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--explain", action="store_true", help="each signal's rank and score per result")
    p.add_argument("--files", action="store_true", help="rank files instead of chunks")
    _retrieval_args(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("locate", help="the files an issue most likely touches, each with its likeliest functions")
    p.add_argument("query", metavar="ISSUE_TEXT")
    p.add_argument("-k", type=int, default=10, help="number of files (default 10)")
    p.add_argument("--functions", type=int, default=5, metavar="N",
                   help="definitions listed per file (default 5)")
    _retrieval_args(p)
    p.set_defaults(func=cmd_locate)

    p = sub.add_parser("context", help="the context the agent would get for a task, within a token budget")
    p.add_argument("task")
    p.add_argument("--budget", type=int, default=4000, help="token budget (default 4000)")
    _retrieval_args(p)
    p.set_defaults(func=cmd_context)


def _open(args: argparse.Namespace, query: str | None = None, k: int = 0) -> tuple[Retriever, tuple[str, ...]]:
    """The retriever the flags ask for (and the user's REPOLOOP_DENSE_STORE, REPOLOOP_TOKENIZER),
    and the signals to search with. `query`, `k`: what the command ranks first (`fused(query, k)`):
    its dense half starts now, in a forked child (repoloop.retrieval.dense_ahead), before this
    process imports the retrieval code."""
    _one_blas_thread()
    from repoloop.retrieval.api import RetrievalOptions, parse_signals

    signals = parse_signals(args.signals)
    lexical = args.lexical or "dense" not in signals
    options = RetrievalOptions.from_env(lexical_only=lexical, chroma_url=args.chroma_url, rerank=args.rerank)
    repo, idx = repo_root(args.repo), index_dir(args)
    ahead = None
    if query is not None and not lexical and options.dense_store != "chroma":
        from repoloop.retrieval.dense_ahead import DenseAhead
        from repoloop.retrieval.weights import DEFAULT

        ahead = DenseAhead.start(repo, idx, query, max(DEFAULT.depth, k), options.embed)
    try:
        from repoloop.retrieval import open_retriever

        return open_retriever(repo, idx, options, dense_ahead=ahead), signals
    except BaseException:  # the retriever owns the child only once it is open
        if ahead is not None:
            ahead.discard()
        raise


def _one_blas_thread() -> None:
    """One OpenBLAS thread for a one-shot query, unless the user chose: its products are a query's
    (the numpy encoder already runs them on one thread), and OpenBLAS starts its pool of threads
    when numpy is imported, ~30 ms wall and ~60 ms CPU of a 0.3 s embedded search on 2 cores.
    An environment variable because OpenBLAS reads it once, when it loads; the only program a
    query may start is git, which does not read it."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def cmd_search(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise RepoloopError(f"-k must be at least 1, not {args.k}")
    if not args.query.strip():
        raise RepoloopError("the query is empty")
    r, signals = _open(args, args.query, _SEARCH_FILES_DEPTH if args.files else args.k)
    if set(signals) <= {"dense"} and r.lexical_only:
        r.close()
        raise RepoloopError("this index has no embeddings (built with --no-embed?): run `repoloop index` "
                            "to add them, or choose other --signals")
    try:
        if args.files:
            ranked = r.search_files(args.query, args.k, signals=signals, depth=_SEARCH_FILES_DEPTH)
            if args.json:
                print_json({"files": [{"path": p, "score": round(s, 6)} for p, s in ranked]})
            else:
                for p, s in ranked:
                    print(f"{s:.3f}  {p}")
            return 0
        hits = r.search(args.query, args.k, explain=args.explain, signals=signals)
    finally:
        r.close()
    if args.json:
        print_json({"results": [h.to_json(explain=args.explain) for h in hits]})
        return 0
    _print_hits(hits, args.explain)
    return 0


def cmd_locate(args: argparse.Namespace) -> int:
    """Files with their most likely functions (repoloop.retrieval.locate); exit 1 when nothing is found."""
    if args.k < 1:
        raise RepoloopError(f"-k must be at least 1, not {args.k}")
    if args.functions < 0:
        raise RepoloopError(f"--functions must not be negative, not {args.functions}")
    if not args.query.strip():
        raise RepoloopError("the issue text is empty")
    r, signals = _open(args, args.query, args.k)
    try:
        located = r.locate(args.query, args.k, functions=args.functions, signals=signals)
    finally:
        r.close()
    if args.json:
        print_json(located.to_json())
    else:
        con = console()
        if not located.files:
            con.print("no files found")
        for f in located.files:
            con.print(styled((f.path, "cyan"), f"  score {f.score:.3f}"))
            for fn in f.functions:
                why = ", ".join(f"{k} {v:.2f}" for k, v in sorted(fn.evidence.items(), key=lambda kv: -kv[1]))
                con.print(styled("    ", (fn.symbol, "bold"), f" ({fn.kind}) {fn.start_line}-{fn.end_line}"
                                 f"  {fn.score:.3f}  [{why}]"))
    return 0 if located.files else 1


def _print_hits(hits: list[SearchHit], explain: bool) -> None:
    con = console()
    if not hits:
        con.print("no results")
    for h in hits:
        sym = ("  ", (h.symbol, "bold"), f" ({h.kind})") if h.symbol else (f"  ({h.kind})",)
        con.print(styled((f"{h.path}:{h.start_line}-{h.end_line}", "cyan"), *sym, f"  score {h.score:.3f}"))
        if explain and h.signals:
            con.print("    " + "  ".join(f"{s}: #{v['rank']} ({v['score']:.3g})" for s, v in h.signals.items()))
        lines = h.text.split("\n")
        for ln in lines[:6]:
            con.print("    " + ln)
        if len(lines) > 6:
            con.print(f"    ... ({len(lines) - 6} more lines)")


def cmd_context(args: argparse.Namespace) -> int:
    if args.budget < 0:
        raise RepoloopError(f"--budget must not be negative, not {args.budget}")
    from repoloop.retrieval.limits import CONTEXT_HITS, bounded_prefix

    r, _signals = _open(args, bounded_prefix(args.task), CONTEXT_HITS)
    try:
        pack = r.context(args.task, args.budget)
        counter = r.counter
    finally:
        r.close()
    if args.json:
        print_json({
            "budget": pack.budget, "tokens": pack.tokens, "tokenizer": counter.name, "exact": counter.exact,
            "items": [{"path": i.path, "start_line": i.start_line, "end_line": i.end_line, "symbol": i.symbol,
                       "kind": i.kind, "score": i.score, "tokens": i.tokens} for i in pack.items],
            "text": pack.text,
        })
        return 0
    sys.stdout.write(pack.text + ("\n" if pack.text else ""))
    print(f"-- {pack.tokens} of {pack.budget} tokens ({counter.name})", file=sys.stderr)
    return 0
