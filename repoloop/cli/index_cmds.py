"""`repoloop index | status | outline | symbol`: build the index and read symbols out of it."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repoloop.cli.common import add_repo_args, console, index_dir, print_json, repo_root, styled
from repoloop.errors import RepoloopError

if TYPE_CHECKING:
    from repoloop.indexer.config import IndexConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("index", help="build or incrementally update the index")
    p.add_argument("path", nargs="?", default=None, help="repository to index (default: --repo or the cwd's)")
    add_repo_args(p)
    p.add_argument("--no-embed", action="store_true", help="skip the embedding phase")
    p.add_argument("--jobs", type=int, default=None, help="parser processes (default: all cores)")
    p.add_argument("--max-file-size", type=int, default=None, metavar="BYTES",
                   help="skip files bigger than this (default 1 MiB)")
    p.add_argument("--wait", action="store_true", help="wait for another run on this index instead of refusing")
    p.add_argument("--quiet", action="store_true", help="no progress bars, no summary")
    # Embedding options: each over its environment variable, read once into an EmbedConfig (cmd_index).
    p.add_argument("--embed-model", default=None, metavar="PATH_OR_NAME",
                   help="local sentence-transformers model (env REPOLOOP_EMBED_MODEL; default all-MiniLM-L6-v2)")
    p.add_argument("--embed-max-tokens", default=None, metavar="N",
                   help="word pieces of each chunk the local model reads (env REPOLOOP_EMBED_MAX_TOKENS;"
                        " part of the embedding cache key; default: see `repoloop.indexer.embed.embedders`)")
    p.add_argument("--embed-tests", action="store_true",
                   help="embed test files' chunks too (env REPOLOOP_EMBED_TESTS=1; default: non-test code only)")
    p.add_argument("--embed-base-url", default=None, metavar="URL",
                   help="OpenAI-compatible embeddings endpoint (env REPOLOOP_EMBED_BASE_URL)")
    p.add_argument("--chroma-url", default=None, metavar="URL",
                   help="Chroma server http://HOST:PORT (env REPOLOOP_CHROMA_URL; default: embedded in the index dir)")
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="parse and embed on a Ray cluster: HOST:PORT, ray://..., or 'local' (env RAY_ADDRESS;"
                        " needs repoloop[cluster])")
    p.add_argument("--seed-from", default=None, metavar="PATH",
                   help="start a new index from a sibling checkout's (a clone or worktree of the same repository)")
    p.add_argument("--no-seed", action="store_true",
                   help="do not seed a new git worktree's index from another worktree's")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("status", help="what is indexed, what is skipped, what is stale")
    add_repo_args(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("outline", help="every definition in one file, in order")
    p.add_argument("file")
    add_repo_args(p)
    p.set_defaults(func=cmd_outline)

    p = sub.add_parser("symbol", help="definitions of a symbol; with flags, references, callers, callees")
    p.add_argument("name", help="bare name, qualified name or dotted suffix (Class.method)")
    add_repo_args(p)
    p.add_argument("--refs", action="store_true", help="list references")
    p.add_argument("--callers", action="store_true", help="list callers (graph)")
    p.add_argument("--callees", action="store_true", help="list callees (graph)")
    p.add_argument("--depth", type=int, default=1, help="graph hops for --callers/--callees (default 1)")
    p.set_defaults(func=cmd_symbol)


# -- index ----------------------------------------------------------------------------------------
def cmd_index(args: argparse.Namespace) -> int:
    from repoloop.indexer.pipeline import index_repo
    from repoloop.indexer.walk import DEFAULT_MAX_FILE_SIZE

    if args.path and args.repo and Path(args.path).resolve() != Path(args.repo).resolve():
        raise RepoloopError("give the repository either as PATH or as --repo, not both")
    if args.path:
        repo = Path(args.path).expanduser().resolve()
        if not repo.is_dir():
            raise RepoloopError(f"{args.path}: not a directory")
    else:
        repo = repo_root(args.repo)
    config = index_config(args, os.environ)  # bad values fail here, before any work
    from repoloop.indexer.seed import maybe_seed

    seeded = maybe_seed(repo, index_dir(args), args.seed_from, auto=config.auto_seed and not args.no_seed,
                        wait=args.wait, vector_cache=config.embed.vector_cache)
    progress = not args.quiet and not args.json and sys.stderr.isatty()
    max_size = args.max_file_size or DEFAULT_MAX_FILE_SIZE
    cluster = None
    if config.cluster.address:
        from repoloop.indexer.cluster import index_repo_cluster

        report, cluster = index_repo_cluster(repo, config.cluster.address, index_dir(args), embed=not args.no_embed,
                                             progress=progress, max_file_size=max_size, wait=args.wait,
                                             jobs=args.jobs, cluster=config.cluster, embed_config=config.embed)
    else:
        report = index_repo(repo, index_dir(args), jobs=args.jobs, embed=not args.no_embed, progress=progress,
                            max_file_size=max_size, wait=args.wait, embed_config=config.embed)
    if args.json:
        out = report.to_json()
        if cluster is not None:
            out["cluster"] = cluster.to_json()
        if seeded is not None:
            out["seeded_from"] = seeded
        print_json(out)
        return 0
    if report.damaged_index:
        print(f"repoloop: warning: the index was damaged; set aside as {report.damaged_index} and rebuilt",
              file=sys.stderr)
    for path, err in report.errors[:10]:
        print(f"repoloop: warning: {path}: parser failed, indexed as text ({err})", file=sys.stderr)
    if not args.quiet:
        if seeded is not None:
            print(f"seeded from {seeded['from']} ({seeded['files']:,} files, {seeded['vectors']:,} vectors)")
        print(report.summary())
        if cluster is not None:
            print(f"cluster {cluster.address}: {cluster.nodes} nodes, {cluster.cpus:g} CPUs, {cluster.gpus:g} GPUs"
                  f" · {cluster.files_shipped:,} files in {cluster.batches:,} parse tasks"
                  f" · {cluster.embed_actors} embedding actors ({cluster.actor_device or 'none needed'})")
    return 0


def index_config(args: argparse.Namespace, environ: Mapping[str, str]) -> IndexConfig:
    """The user's environment (REPOLOOP_EMBED_*, REPOLOOP_CHROMA_URL, REPOLOOP_VECTOR_CACHE,
    RAY_ADDRESS, ...; see repoloop.indexer.config), read once, with `index`'s flags on top."""
    from repoloop.indexer.config import ClusterConfig, IndexConfig, parse_max_tokens

    config = IndexConfig.from_env(environ)
    embed = config.embed.replace(
        model=args.embed_model or None, base_url=args.embed_base_url or None, chroma_url=args.chroma_url or None,
        max_tokens=parse_max_tokens(args.embed_max_tokens, "--embed-max-tokens"),
        scope="all" if args.embed_tests else None)
    return dataclasses.replace(config, embed=embed, cluster=ClusterConfig.from_env(environ, args.cluster))


# -- status ---------------------------------------------------------------------------------------
def _open_store(args: argparse.Namespace) -> tuple[Path, Any]:
    from repoloop.indexer.store import DB_NAME, IndexStore, index_dir_for

    repo = repo_root(args.repo)
    idx = index_dir_for(repo, index_dir(args))
    if not (idx / DB_NAME).exists():
        raise RepoloopError(f"no index for {repo} (run `repoloop index` first)")
    return repo, IndexStore(idx / DB_NAME, readonly=True)


def status_data(repo: Path, store: Any, idx: Path, *, stale_limit: int = 50,
                vector_cache: Path | None = None) -> dict[str, Any]:
    """Everything `status` shows; `vector_cache`: the user's shared query-time cache, if any."""
    from repoloop.indexer.pipeline import changed_since_index, parser_fingerprint
    from repoloop.indexer.schema import LAST_RUN_KEY, PARSER_FINGERPRINT_KEY, SCHEMA_VERSION

    conn = store.conn
    counts = store.counts()
    languages = {r[0]: r[1] for r in conn.execute(
        "SELECT language, count(*) FROM files GROUP BY language ORDER BY count(*) DESC")}
    partial = conn.execute("SELECT count(*) FROM files WHERE syntax_errors > 0").fetchone()[0]
    decode = conn.execute("SELECT count(*) FROM files WHERE decode_errors > 0").fetchone()[0]
    # Every skip, not the first N: a program reading `status --json` must see all of them.
    skipped = [{"path": r[0], "reason": r[1]} for r in conn.execute(
        "SELECT path, reason FROM skips ORDER BY reason, path")]
    stale = changed_since_index(repo, store)
    last_run = store.get_meta(LAST_RUN_KEY)
    data: dict[str, Any] = {
        "repo": str(repo),
        "index_dir": str(idx),
        "schema_version": SCHEMA_VERSION,
        "files": counts["files"],
        "languages": languages,
        "symbols": counts["symbols"],
        "refs": counts["refs"],
        "chunks": counts["chunks"],
        "edges": counts["edges"],
        "embeddings": None,
        "partial_parses": partial,
        "decode_errors": decode,
        "skips": store.skip_counts(),
        "skipped": skipped,
        "stale": {k: v[:stale_limit] for k, v in stale.items()},
        "stale_counts": {k: len(v) for k, v in stale.items()},
        # False when the parser changed since the index was built: the next index re-parses all.
        "parser_current": store.get_meta(PARSER_FINGERPRINT_KEY) == parser_fingerprint(),
        "up_to_date": not any(stale.values()) and store.get_meta(PARSER_FINGERPRINT_KEY) == parser_fingerprint(),
        "last_run": json.loads(last_run) if last_run else None,
    }
    data["query_time_vectors"] = _query_time_vectors(idx, vector_cache)
    consistency = _consistency(store, idx)
    if consistency is not None:
        data["consistency"] = consistency
        if isinstance(consistency, dict):
            for key in ("embeddings", "embedded", "vectors"):
                if isinstance(consistency.get(key), int):
                    data["embeddings"] = consistency[key]
                    break
    return data


def _query_time_vectors(idx: Path, vector_cache: Path | None) -> dict[str, Any] | None:
    """What the dense re-rank embedded at query time (`search --rerank`, the agent), if anything."""
    from repoloop.indexer.embed.query_time_cache import cache_path

    path = cache_path(idx, vector_cache)
    if not path.exists():
        return None
    import sqlite3

    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            by_model = dict(conn.execute("SELECT model, count(*) FROM vectors GROUP BY model").fetchall())
        finally:
            conn.close()
    except sqlite3.Error as e:
        return {"path": str(path), "error": f"{type(e).__name__}: {e}"}
    return {"path": str(path), "vectors": by_model}


def _consistency(store: Any, idx: Path) -> Any:
    """Do the vector store and the index agree (counts, model)? Never fatal to `status`."""
    from repoloop.indexer.embed.phase import check_consistency

    try:
        result = check_consistency(store, idx)
    except Exception as e:  # a broken vector store must not hide the rest of the status
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return dataclasses.asdict(result)
    return result


def cmd_status(args: argparse.Namespace) -> int:
    repo, store = _open_store(args)
    with store:
        from repoloop.indexer.config import vector_cache_from_env

        data = status_data(repo, store, store.db_path.parent, vector_cache=vector_cache_from_env(os.environ))
    if args.json:
        print_json(data)
        return 0
    _print_status(data)
    return 0


def _print_status(d: dict[str, Any]) -> None:
    from rich.table import Table

    con = console()
    con.print(styled((d["repo"], "bold"), f"  (index: {d['index_dir']})"))
    langs = ", ".join(f"{k} {v:,}" for k, v in d["languages"].items()) or "none"
    con.print(f"files {d['files']:,} ({langs})")
    emb = "" if d["embeddings"] is None else f" · embeddings {d['embeddings']:,}"
    con.print(f"symbols {d['symbols']:,} · refs {d['refs']:,} · chunks {d['chunks']:,} · edges {d['edges']:,}{emb}")
    if d["partial_parses"] or d["decode_errors"]:
        con.print(f"partial parses (syntax errors) {d['partial_parses']:,} · "
                  f"bad encoding (indexed with replacement) {d['decode_errors']:,}")
    if d["skips"]:
        t = Table("skipped because", "count", box=None)
        for reason, n in sorted(d["skips"].items(), key=lambda kv: -kv[1]):
            t.add_row(reason, f"{n:,}")
        con.print(t)
    sc = d["stale_counts"]
    if not d["parser_current"]:
        con.print(styled(("the parser changed since this index was built", "yellow"),
                         ": `repoloop index` re-parses every file"))
    if d["up_to_date"]:
        con.print(styled(("up to date", "green")))
    elif any(sc.values()):
        con.print(styled(("stale", "yellow"), f": {sc['changed']} changed, {sc['added']} added, "
                         f"{sc['deleted']} deleted since the index (run `repoloop index`)"))
        for kind in ("changed", "added", "deleted"):
            for p in d["stale"][kind][:10]:
                con.print(f"  {kind:8} {p}")
    q = d.get("query_time_vectors")
    if q:
        what = q.get("error") or ", ".join(f"{n:,} ({m})" for m, n in q["vectors"].items()) or "none"
        con.print(f"query-time vectors (re-rank): {what} in {q['path']}")
    if "consistency" in d:
        from repoloop.indexer.embed.phase import describe_consistency

        c = d["consistency"]
        con.print(describe_consistency(c) if isinstance(c, dict) and "enabled" in c else f"consistency: {c}")


# -- outline --------------------------------------------------------------------------------------
def _rel_path(repo: Path, file: str) -> str:
    """FILE as given (relative to the cwd, absolute, or relative to the repo) -> repo-relative."""
    p = Path(file).expanduser()
    candidates = [p] if p.is_absolute() else [Path.cwd() / p, repo / p]
    for c in candidates:
        try:
            return c.resolve().relative_to(repo).as_posix()
        except ValueError:
            continue
    return p.as_posix().lstrip("./") if not p.is_absolute() else p.as_posix()


def cmd_outline(args: argparse.Namespace) -> int:
    from repoloop.indexer.lookup import outline

    repo, store = _open_store(args)
    with store:
        rel = _rel_path(repo, args.file)
        data = outline(store, rel)
        if data is None:
            row = store.conn.execute("SELECT reason FROM skips WHERE path = ?", (rel,)).fetchone()
            why = f" (skipped: {row[0]})" if row else ""
            raise RepoloopError(f"{args.file}: not in the index{why}")
    if args.json:
        print_json(data)
        return 0
    con = console()
    con.print(styled((data["path"], "bold")))
    for s in data["symbols"]:
        depth = s["name"].count(".")
        con.print(styled("  " * depth, (f"{s['kind']:9}", "cyan"), f" {s['signature'] or s['name']}  ",
                         (f"{s['start_line']}-{s['end_line']}", "dim")))
    return 0


# -- symbol ---------------------------------------------------------------------------------------
def _graph_neighbours(store: Any, qualnames: list[str], which: str, depth: int) -> list[dict[str, Any]]:
    """Callers or callees (`which`) of each qualname, up to `depth` hops, without repeats."""
    from repoloop.retrieval import graph

    fn = getattr(graph, which)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for q in qualnames:
        for item in fn(store, q, depth):
            d = _as_dict(item)
            key = json.dumps(d, sort_keys=True, default=str)
            if key not in seen:
                seen.add(key)
                out.append(d)
    return out


def _as_dict(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return item
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    if isinstance(item, str):
        return {"qualname": item}
    return {"value": str(item)}


def cmd_symbol(args: argparse.Namespace) -> int:
    from repoloop.indexer.lookup import find_definitions, find_refs

    if args.depth < 1:
        raise RepoloopError(f"--depth must be at least 1, not {args.depth}")
    repo, store = _open_store(args)
    with store:
        defs = find_definitions(store, args.name)
        data: dict[str, Any] = {"definitions": defs, "refs": [], "callers": [], "callees": []}
        if args.refs:
            data["refs"] = find_refs(store, args.name)
        qualnames = [d["qualname"] for d in defs]
        if args.callers:
            data["callers"] = _graph_neighbours(store, qualnames, "callers", args.depth)
        if args.callees:
            data["callees"] = _graph_neighbours(store, qualnames, "callees", args.depth)
    found = bool(defs or data["refs"])
    if args.json:
        print_json(data)
    else:
        _print_symbol(data, args)
    if not found:
        print(f"repoloop: no symbol named {args.name}", file=sys.stderr)
    elif not defs:
        print(f"repoloop: no definition of {args.name} in the index (references only)", file=sys.stderr)
    return 0 if found else 1


def _print_symbol(d: dict[str, Any], args: argparse.Namespace) -> None:
    con = console()
    for s in d["definitions"]:
        con.print(styled((s["qualname"], "bold"), " ", (s["kind"], "cyan"),
                         f"  {s['path']}:{s['start_line']}-{s['end_line']}"))
        if s["signature"]:
            con.print(f"  {s['signature']}")
        if s["doc"]:
            con.print(styled("  ", (s["doc"].splitlines()[0], "dim")))
    for title, key, flag in (("references", "refs", args.refs), ("callers", "callers", args.callers),
                             ("callees", "callees", args.callees)):
        if not flag:
            continue
        con.print(styled((title, "bold"), f" ({len(d[key])})"))
        for r in d[key]:
            where = f"{r.get('path', '')}:{r.get('line', r.get('start_line', ''))}" if r.get("path") else ""
            con.print(f"  {where}  {r.get('qualname') or '(module level)'}")
