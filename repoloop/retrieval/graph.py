"""Queries over the persisted dependency graph: callers, callees, references, file deps, PageRank.

Neighbour queries (callers/callees/deps) go straight to SQLite through the `edges_src`/`edges_dst`
indexes: no graph needs loading for them. PageRank needs the whole graph; `load_graph` reads the
edges once into a sparse matrix (scipy), on which a personalized PageRank is a few dozen sparse
mat-vecs — cheap enough per query for a long-running Retriever that keeps the graph. `load_nx`
gives the same weighted graph as a networkx DiGraph for anyone who wants networkx algorithms;
`pagerank` accepts either (and a store). The global ranking is cached in the index keyed by the
graph generation counter, so `repoloop map` without focus does not load the graph at all.
"""

from __future__ import annotations

import json
import posixpath
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from repoloop.indexer.schema import GENERATION_KEY
from repoloop.indexer.store import IndexStore, read_snapshot, transaction
from repoloop.retrieval.local_rank import ALPHA, CONTAINED_IN_WEIGHT, RANK_WEIGHTS

CALL_KINDS = ("calls",)
REF_KINDS = ("calls", "references", "inherits", "imports")


@dataclass(slots=True)
class RepoGraph:
    """The weighted graph as a sparse matrix, ready for repeated PageRank runs."""

    nodes: list[str]
    index: dict[str, int]
    transition_t: Any  # scipy CSR: [dst, src] = weight(src->dst) / out_weight(src)
    dangling: np.ndarray  # bool per node: no out-edges
    file_of: np.ndarray  # int per node: index of its file node, or -1
    generation: int
    # False: read while an index pass had stored files but not rebuilt their edges yet (the
    # `pending` table), so it may lack edges that come back without a generation bump.
    complete: bool = True

    def __len__(self) -> int:
        return len(self.nodes)


def _conn(store: IndexStore | sqlite3.Connection) -> sqlite3.Connection:
    return store if isinstance(store, sqlite3.Connection) else store.conn


def _generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key=?", (GENERATION_KEY,)).fetchone()
    return int(row[0]) if row else 0


def _weighted_edges(conn: sqlite3.Connection) -> tuple[list[str], dict[str, int], list[int], list[int],
                                                       list[float], dict[int, int]]:
    """Nodes and ranking edges (src idx, dst idx, weight), plus the file node of each symbol."""
    index: dict[str, int] = {}
    nodes: list[str] = []

    def idx(key: str) -> int:
        i = index.get(key)
        if i is None:
            i = index[key] = len(nodes)
            nodes.append(key)
        return i

    paths = {fid: f"f:{p}" for fid, p in conn.execute("SELECT id, path FROM files")}
    src: list[int] = []
    dst: list[int] = []
    wts: list[float] = []
    file_of: dict[int, int] = {}
    for s, d, kind, w, fid in conn.execute("SELECT src, dst, kind, weight, file_id FROM edges"):
        si, di = idx(s), idx(d)
        rw = RANK_WEIGHTS.get(kind, 0.0) * w
        if kind == "contains":
            fnode = paths.get(fid)
            if fnode is not None:
                file_of[di] = idx(fnode)
            src.append(di)
            dst.append(si)
            wts.append(CONTAINED_IN_WEIGHT * w)
        if rw > 0 and si != di:  # recursion says nothing about importance
            src.append(si)
            dst.append(di)
            wts.append(rw)
    return nodes, index, src, dst, wts, file_of


def load_graph(store: IndexStore | sqlite3.Connection) -> RepoGraph:
    """Read every edge into a sparse transition matrix (one pass over the `edges` table)."""
    from scipy import sparse

    conn = _conn(store)
    with read_snapshot(conn):  # the generation, the pending check and the edges agree
        gen = _generation(conn)
        complete = _edges_complete(conn)
        nodes, index, src, dst, wts, file_of = _weighted_edges(conn)
    n = len(nodes)
    s = np.asarray(src, dtype=np.int64)
    d = np.asarray(dst, dtype=np.int64)
    w = np.asarray(wts, dtype=np.float64)
    out_w = np.bincount(s, weights=w, minlength=n) if n else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vals = w / out_w[s] if len(s) else w
    mat = sparse.csr_matrix((vals, (d, s)), shape=(n, n))  # duplicates are summed
    fo = np.full(n, -1, dtype=np.int64)
    for k, v in file_of.items():
        fo[k] = v
    for key, i in index.items():
        if key.startswith("f:"):
            fo[i] = i
    return RepoGraph(nodes, index, mat, out_w == 0, fo, gen, complete)


def _edges_complete(conn: sqlite3.Connection) -> bool:
    """No file is waiting for its edges: stored files lose theirs until the graph step redoes
    them, and an edit that leaves the edges as they were does not bump the generation."""
    try:
        return conn.execute("SELECT 1 FROM pending LIMIT 1").fetchone() is None
    except sqlite3.Error:  # an index without the table: edges were always written with the files
        return True


def load_nx(store: IndexStore | sqlite3.Connection) -> Any:
    """The same weighted ranking graph as a networkx DiGraph (parallel edges summed)."""
    import networkx as nx

    nodes, _index, src, dst, wts, _fo = _weighted_edges(_conn(store))
    agg: dict[tuple[int, int], float] = defaultdict(float)
    for s, d, w in zip(src, dst, wts, strict=True):
        agg[(s, d)] += w
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_weighted_edges_from((nodes[s], nodes[d], w) for (s, d), w in agg.items())
    return g


def pagerank(
    store_or_graph: IndexStore | RepoGraph | Any,
    personalization: Mapping[str, float] | None = None,
    *,
    alpha: float = ALPHA,
    tol: float = 1e-6,
    max_iter: int = 100,
) -> dict[str, float]:
    """PageRank over files and symbols (node keys 'f:<path>', 's:<qualname>'), summing to 1.

    `personalization` maps node keys to seed weights (unknown keys are ignored; none left means
    the global ranking). Same definition as networkx's (dangling mass follows the
    personalization); a networkx graph is ranked by networkx itself.
    """
    if isinstance(store_or_graph, RepoGraph):
        return _pagerank(store_or_graph, personalization, alpha, tol, max_iter)
    if isinstance(store_or_graph, (IndexStore, sqlite3.Connection)):
        conn = _conn(store_or_graph)
        if not personalization:
            cached = _cached_global(conn)
            if cached is not None:
                return cached
        g = load_graph(conn)
        pr = _pagerank(g, personalization, alpha, tol, max_iter)
        if g.complete and (not personalization or not any(k in g.index for k in personalization)):
            _store_global(conn, pr, g.generation)
        return pr
    import networkx as nx

    pers = {k: v for k, v in (personalization or {}).items() if k in store_or_graph and v > 0} or None
    return nx.pagerank(store_or_graph, alpha=alpha, personalization=pers, tol=tol, max_iter=max_iter)


def _pagerank(g: RepoGraph, personalization: Mapping[str, float] | None, alpha: float, tol: float,
              max_iter: int) -> dict[str, float]:
    n = len(g)
    if n == 0:
        return {}
    p = np.zeros(n)
    for k, v in (personalization or {}).items():
        i = g.index.get(k)
        if i is not None and v > 0:
            p[i] += v
    p = p / p.sum() if p.sum() > 0 else np.full(n, 1.0 / n)
    x = p.copy()
    mt = g.transition_t
    dang = g.dangling
    for _ in range(max_iter):
        prev = x
        x = alpha * (mt @ prev + prev[dang].sum() * p) + (1 - alpha) * p
        if np.abs(x - prev).sum() < n * tol:
            break
    return dict(zip(g.nodes, x.tolist(), strict=True))


def _cached_global(conn: sqlite3.Connection) -> dict[str, float] | None:
    try:
        row = conn.execute("SELECT ranks FROM graph_rank_cache WHERE generation=?", (_generation(conn),)).fetchone()
    except sqlite3.Error:  # an index written before the cache table existed
        return None
    return json.loads(row[0]) if row else None


def _store_global(conn: sqlite3.Connection, pr: dict[str, float], gen: int) -> None:
    """Cache the global ranking in the table the indexer's schema made; skipped (never waited for)
    while an indexer holds the write lock."""
    old = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    try:
        conn.execute("PRAGMA busy_timeout=0")
        with transaction(conn):
            conn.execute("DELETE FROM graph_rank_cache")
            conn.execute("INSERT INTO graph_rank_cache(generation, ranks) VALUES (?,?)", (gen, json.dumps(pr)))
    except sqlite3.Error:
        pass  # read-only file, busy, or no cache table: the cache is an optimisation only
    finally:
        conn.execute(f"PRAGMA busy_timeout={int(old)}")


def file_ranks(
    store_or_graph: IndexStore | RepoGraph, personalization: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Importance of each file: its own node's rank plus its symbols' ranks."""
    pr = pagerank(store_or_graph, personalization)
    out: dict[str, float] = defaultdict(float)
    if isinstance(store_or_graph, RepoGraph):
        g = store_or_graph
        for key, i in g.index.items():
            fi = g.file_of[i]
            if fi >= 0:
                out[g.nodes[fi][2:]] += pr.get(key, 0.0)
        return dict(out)
    conn = _conn(store_or_graph)
    sym_file = dict(conn.execute(
        "SELECT e.dst, f.path FROM edges e JOIN files f ON f.id=e.file_id WHERE e.kind='contains'"
    ))
    for key, score in pr.items():
        if key.startswith("f:"):
            out[key[2:]] += score
        elif key in sym_file:
            out[sym_file[key]] += score
    return dict(out)


def personalization_for(store: IndexStore, seeds: Iterable[str]) -> tuple[dict[str, float], list[str]]:
    """Seed nodes from user words: node keys, file paths, directories, qualnames, bare or dotted
    symbol names. Returns (personalization, the seeds that matched nothing)."""
    conn = store.conn
    pers: dict[str, float] = {}
    unmatched: list[str] = []
    for seed in seeds:
        s = seed.strip().strip("/") if not seed.startswith(("f:", "s:")) else seed
        if s.startswith("./"):
            s = s[2:]
        nodes: list[str] = []
        if s.startswith(("f:", "s:")):
            nodes = [s]
        elif conn.execute("SELECT 1 FROM files WHERE path=?", (s,)).fetchone():
            nodes = [f"f:{s}"]
        else:
            nodes = [f"f:{p}" for (p,) in conn.execute(
                "SELECT path FROM files WHERE substr(path, 1, ?) = ? LIMIT 1000", (len(s) + 1, s + "/"))]
            if not nodes:
                q = [r[0] for r in conn.execute("SELECT DISTINCT qualname FROM symbols WHERE qualname=?", (s,))]
                if not q:
                    last = s.replace("::", ".").rsplit(".", 1)[-1]
                    q = [r[0] for r in conn.execute(
                        "SELECT DISTINCT qualname FROM symbols WHERE name=? LIMIT 200", (last,))]
                    if last != s:
                        q = [x for x in q if x.replace("::", ".").endswith(s.replace("::", "."))]
                nodes = [f"s:{x}" for x in q]
        if not nodes:
            unmatched.append(seed)
            continue
        for n in nodes:
            pers[n] = pers.get(n, 0.0) + 1.0 / len(nodes)
    return pers, unmatched


# -- neighbours -----------------------------------------------------------------------------------
def _walk(store: IndexStore, start: str, depth: int, kinds: tuple[str, ...], forward: bool
          ) -> list[tuple[int, str, str, int | None, float, str]]:
    """BFS over edges: (depth, other node, key of the edge's near side, line, weight, edge file)."""
    conn = store.conn
    near, far = ("src", "dst") if forward else ("dst", "src")
    kq = ",".join("?" * len(kinds))
    seen = {start}
    frontier = [start]
    out = []
    for level in range(1, max(1, depth) + 1):
        nxt: list[str] = []
        for i in range(0, len(frontier), 500):
            part = frontier[i:i + 500]
            rows = conn.execute(
                f"SELECT e.{far}, e.{near}, e.line, e.weight, f.path FROM edges e JOIN files f ON f.id=e.file_id"
                f" WHERE e.{near} IN ({','.join('?' * len(part))}) AND e.kind IN ({kq})"
                " ORDER BY e.weight DESC, f.path, e.line",
                [*part, *kinds],
            ).fetchall()
            for other, via, line, w, path in rows:
                if other in seen:
                    continue
                seen.add(other)
                out.append((level, other, via, line, w, path))
                if other.startswith("s:"):
                    nxt.append(other)
        frontier = nxt
        if not frontier:
            break
    return out


def _module_of(conn: sqlite3.Connection, path: str) -> str | None:
    row = conn.execute("SELECT module FROM files WHERE path=?", (path,)).fetchone()
    return row[0] if row and row[0] else None


def callers(store: IndexStore, qualname: str, depth: int = 1, *, kinds: tuple[str, ...] = CALL_KINDS
            ) -> list[dict]:
    """Who calls `qualname`: [{"qualname" (caller; the module for top-level code), "path", "line"
    (of the call), "depth", "weight" (1 = certain, less = one of several same-named candidates),
    "confidence" ("high" or "low", see `confidence`)}]."""
    out = []
    for level, other, _via, line, w, path in _walk(store, f"s:{qualname}", depth, kinds, forward=False):
        q = other[2:] if other.startswith("s:") else _module_of(store.conn, path)
        out.append({"qualname": q, "path": path, "line": line, "depth": level, "weight": round(w, 4),
                     "confidence": confidence(w)})
    return out


def confidence(weight: float) -> str:
    """"high": resolved by what the code declares (imports, scopes, declared types); "low": one of
    several same-named candidates, or a name matched without knowing the receiver's type."""
    return "high" if weight >= 1.0 else "low"


NEIGHBOURS = 15  # callers and callees a symbol tool (MCP get_symbol, the agent's) shows per definition


def neighbour_lines(d: dict, indent: str = "    ") -> list[str]:
    """`calls:` / `called by:` lines for a definition that carries `callees`/`callers`; guesses
    are marked `(guess)`, so a reader can tell them from edges the code declares."""
    out: list[str] = []
    for key, title in (("callees", "calls"), ("callers", "called by")):
        items = d.get(key) or []
        if items:
            names = [f"{x.get('qualname') or x.get('path')}" + ("" if x.get("confidence") == "high" else " (guess)")
                     for x in items]
            out.append(f"{indent}{title}: " + ", ".join(names))
    return out


def neighbours(store: IndexStore, qualname: str, limit: int = 20) -> dict[str, list[dict]]:
    """Direct callers and callees of one symbol for a symbol tool: certain edges first, then
    guesses, each list cut at `limit`."""
    def top(items: list[dict]) -> list[dict]:
        return sorted(items, key=lambda d: (d["confidence"] != "high", -d["weight"]))[:limit]

    return {"callers": top(callers(store, qualname)), "callees": top(callees(store, qualname))}


def callees(store: IndexStore, qualname: str, depth: int = 1, *, kinds: tuple[str, ...] = CALL_KINDS
            ) -> list[dict]:
    """What `qualname` calls: [{"qualname", "path" and "line" (of the callee's definition),
    "call_line" (where it is called), "depth", "weight"}]."""
    out = []
    conn = store.conn
    for level, other, _via, line, w, _path in _walk(store, f"s:{qualname}", depth, kinds, forward=True):
        if not other.startswith("s:"):
            continue
        q = other[2:]
        row = conn.execute(
            "SELECT f.path, s.start_line FROM symbols s JOIN files f ON f.id=s.file_id WHERE s.qualname=? LIMIT 1",
            (q,),
        ).fetchone()
        out.append({"qualname": q, "path": row[0] if row else None, "line": row[1] if row else None,
                    "call_line": line, "depth": level, "weight": round(w, 4), "confidence": confidence(w)})
    return out


def references(store: IndexStore, qualname: str, depth: int = 1) -> list[dict]:
    """Every resolved use of `qualname` (calls, references, subclasses), like `callers`."""
    return callers(store, qualname, depth, kinds=("calls", "references", "inherits"))


def deps(store: IndexStore, path: str) -> dict:
    """What a file imports and what imports it: {"path", "imports": [{"path", "line"}],
    "imported_by": [{"path", "line"}], "unresolved": [module names outside the repo]}; a Go file
    also gets "packages": its imports grouped by package (`_go_packages`)."""
    from repoloop.indexer.graph.resolve_imports import ImportRef, resolve_imports
    from repoloop.indexer.graph.resolve_refs import repo_files

    conn = store.conn
    node = f"f:{path}"
    imports = [{"path": d[2:], "line": ln} for d, ln in conn.execute(
        "SELECT dst, line FROM edges WHERE src=? AND kind='imports' ORDER BY line, dst", (node,))]
    imported_by = [{"path": s[2:], "line": ln} for s, ln in conn.execute(
        "SELECT src, line FROM edges WHERE dst=? AND kind='imports' ORDER BY src, line", (node,))]
    repo = repo_files(conn)
    me = repo.by_path.get(path)
    unresolved: list[str] = []
    if me is not None:
        rows = conn.execute(
            "SELECT name, line, full, module, alias, scope FROM refs WHERE file_id=? AND kind='import' ORDER BY id",
            (me.id,),
        ).fetchall()
        unresolved = resolve_imports(repo, me, [ImportRef(*r) for r in rows]).unresolved
    out = {"path": path, "imports": imports, "imported_by": imported_by, "unresolved": unresolved}
    if me is not None and me.family == "go":
        out["packages"] = _go_packages(imports)
    return out


def _go_packages(imports: list[dict]) -> list[dict]:
    """A Go file imports packages, and a package is all the files of its directory: the imports
    grouped by directory, `{"package", "line", "files"}`, in import order."""
    groups: dict[str, dict] = {}
    for d in imports:
        pkg = posixpath.dirname(d["path"])
        g = groups.setdefault(pkg, {"package": pkg, "line": d["line"], "files": []})
        g["files"].append(d["path"])
    return sorted(groups.values(), key=lambda g: (g["line"] or 0, g["package"]))
