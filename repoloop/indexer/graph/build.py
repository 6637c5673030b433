"""Build and persist the dependency graph's edges (table `edges`) from the stored symbols and refs.

Edges (node keys 'f:<path>' and 's:<qualname>'): `contains` (file -> top-level symbol, class ->
method), `imports` (file -> file), `calls` and `references` (symbol or file -> symbol), `inherits`
(class -> base). Each edge belongs to the file whose references produced it (`edges.file_id`).

Incremental: a file's edges depend on its own refs and on the *interface* of other files (which
qualnames they define, what they import/re-export, their classes' bases), never on their bodies.
So the table `graph_files` remembers, per file, the content hash its edges were built from and its
interface. An update re-resolves (1) files whose hash changed or that have no graph row yet (this
also heals a run killed between storing files and building edges), (2) files whose refs mention a
name whose definitions changed (added, removed or moved qualnames, changed imports/bases), and (3)
files owning edges that now dangle. Everything is written in one transaction.

The generation (`graph_generation` in meta, the key every cached graph is read under) is bumped
only when the ranking graph changed: `graph_edge_sums` keeps a digest of each file's edges as graph
consumers read them (src, dst, kind, weight; `line` is only shown by the SQLite queries, which read
the table directly), and an incremental update compares the redone files' digests. An edit inside
a function body, a comment or a docstring re-writes that file's edges but leaves the generation,
so a warm server keeps its graph. A full rebuild always bumps.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

from repoloop.indexer.graph.resolve_imports import RepoFiles
from repoloop.indexer.graph.resolve_refs import TYPED_FAMILIES, Resolver
from repoloop.indexer.schema import CODE_KEY, EDGE_INDEXES, GENERATION_KEY, GRAPH_SCHEMA, JS_PACKAGES_KEY
from repoloop.indexer.store import IndexStore, transaction

_CODE = ("build.py", "resolve_refs.py", "resolve_imports.py", "lazy_defs.py", "rust_crates.py",
         "typed/engine.py", "typed/langs.py", "typed/syntax.py", "typed/go.py", "typed/rust.py", "typed/ts.py",
         "typed/java.py")
FULL_REBUILD_FRACTION = 0.3  # above this share of files changed, rebuilding everything is cheaper
_BATCH = 500
_IFACE_BATCH = 1000  # files whose interfaces are read and written together (full builds)
PARALLEL_MIN_FILES = 300  # files to redo before resolving them in worker processes pays for their start
_WORKER_BATCH = 64  # files per task handed to a resolver worker
GRAPH_MAX_WORKERS = 4
GRAPH_WORKERS_BYTES = 1.5e9  # the resolver workers' symbol tables together (peak RSS target: < 2 GB)
_BYTES_PER_SYMBOL = 1100  # a full build per symbol (graph_rss.py: 692 MiB peak for 722k symbols)


def code_fingerprint() -> str:
    """A digest of the resolution code: edges built by other code (a repoloop upgrade) are rebuilt,
    as files parsed by another parser are parsed again."""
    here = Path(__file__).parent
    h = hashlib.sha1()
    for name in _CODE:
        h.update(name.encode())
        h.update((here / name).read_bytes())
    return h.hexdigest()


def _js_config(repo: RepoFiles) -> str:
    """What JS/TS import resolution read besides the files (workspace packages, tsconfig paths), as
    the resolver holds it: stored with the edges, compared on the next update."""
    packages = {k: [v.dir, *v.entries] for k, v in sorted(repo.js_packages.items())}
    paths = [[p.pattern, p.base, *p.targets] for p in repo.ts_paths]
    return json.dumps({"packages": packages, "paths": paths}) if packages or paths else "{}"


def stale(store: IndexStore) -> bool:
    """True when the edges need work although no file changed: built by other code, or by code that
    did not record the JS configuration (package.json names, tsconfig paths) it read. Cheap: no
    configuration file is read here; a changed one is a changed file."""
    return store.get_meta(CODE_KEY) != code_fingerprint() or store.get_meta(JS_PACKAGES_KEY) is None


def generation(store: IndexStore) -> int:
    """A counter bumped by every update that changed the ranking graph's edges (src, dst, kind,
    weight): the cache key for graph results. Not bumped when only edge lines moved."""
    return int(store.get_meta(GENERATION_KEY, "0") or 0)


def update_edges(
    store: IndexStore, changed_paths: set[str], deleted_paths: set[str], *, full: bool = False, jobs: int = 1
) -> int:
    """Bring the edges up to date after the pipeline stored/deleted files; returns the edge count.

    `changed_paths`/`deleted_paths` are hints: files whose hash differs from the one their edges
    were built from are found and redone anyway. `jobs` > 1: when many files are redone, their
    edges are resolved in that many worker processes (each reads the committed symbols and refs
    through its own connection), and this process only writes them.
    """
    conn = store.conn
    conn.executescript(GRAPH_SCHEMA)  # an index written before the graph tables existed
    files = {r[0]: (r[1], r[2]) for r in conn.execute("SELECT path, id, hash FROM files")}
    built = dict(conn.execute("SELECT path, hash FROM graph_files"))  # interfaces: only the changed ones
    changed = {p for p, (_fid, h) in files.items() if p not in built or built[p] != h}
    changed |= {p for p in changed_paths if p in files}
    deleted = {p for p in built if p not in files} | {p for p in deleted_paths if p in built}
    has_edges = store.get_meta(GENERATION_KEY) is not None
    stored = store.get_meta(JS_PACKAGES_KEY)
    code = code_fingerprint()
    new_code = store.get_meta(CODE_KEY) != code
    if not changed and not deleted and has_edges and not full and not new_code and stored is not None:
        return _count(conn)

    full = (full or not has_edges or new_code
            or len(changed) + len(deleted) > FULL_REBUILD_FRACTION * max(len(files), 1))
    redo_n = len(files) if full else len(changed)  # a lower bound of the files redone
    jobs = graph_workers(conn, jobs)
    parallel = jobs > 1 and redo_n >= PARALLEL_MIN_FILES
    # A few changed files resolve a few hundred references: read symbols as needed, not all. When
    # workers resolve, this process needs the symbol tables only to find what dangles.
    resolver = Resolver(conn, lazy=not full or parallel)
    # A JS/TS file's imports of workspace packages (`@scope/pkg`) and path aliases resolve through
    # every package.json and tsconfig: when those change, every JS file is redone (not the whole graph).
    packages = _js_config(resolver.repo)
    packages_moved = stored is not None and packages != stored
    new_iface: dict[str, dict] = {}
    if full:
        redo = set(files)
    else:
        new_iface = {p: _interface(conn, files[p][0]) for p in changed}
        redo = set(changed)
        names, stems, chained = set(), set(), set()
        old_ifaces = _old_interfaces(conn, changed | deleted)
        for p in changed | deleted:
            old = old_ifaces.get(p)
            new = new_iface.get(p)
            names |= _trigger_names(old, new)
            chained |= _type_fact_names(old or {}, new or {})
            if old is None or new is None:
                stems |= _stems(p)
        redo |= _files_referring(conn, names, stems)
        redo |= _files_chaining(conn, chained)
        redo |= _files_with_dangling_edges(conn, resolver, old_ifaces, deleted)
        if packages_moved:
            redo |= {p for (p,) in conn.execute(
                "SELECT path FROM files WHERE language IN ('javascript', 'typescript', 'tsx')")}
        redo &= set(files)

    sums: dict[str, str] = {}  # path -> digest of the edges just built (one file's at a time in memory)

    def edge_rows() -> Iterator[tuple]:
        """Streamed into executemany: a monorepo's millions of edges are never all in memory."""
        for p in sorted(redo):
            fid = files[p][0]
            edges = file_edges(resolver, fid)
            sums[p] = edges_digest(edges)
            for e in edges:
                yield (fid, *e)

    def worker_rows() -> Iterator[tuple]:
        for p, fid, digest, edges in _resolve_in_workers(store.db_path, [(p, files[p][0]) for p in sorted(redo)],
                                                         jobs, lazy=not full):
            sums[p] = digest
            for e in edges:
                yield (fid, *e)

    parallel = jobs > 1 and len(redo) >= PARALLEL_MIN_FILES
    rows = worker_rows() if parallel else edge_rows()

    with transaction(conn):
        if full:
            conn.execute("DELETE FROM edges")
            conn.execute("DELETE FROM graph_files")
            for name in EDGE_INDEXES:  # one sort at the end beats 3 index updates per row
                conn.execute(f"DROP INDEX IF EXISTS {name}")
        else:
            ids = [files[p][0] for p in redo]
            for i in range(0, len(ids), _BATCH):
                chunk = ids[i:i + _BATCH]
                conn.execute(f"DELETE FROM edges WHERE file_id IN ({','.join('?' * len(chunk))})", chunk)
            conn.executemany("DELETE FROM graph_files WHERE path=?", [(p,) for p in deleted])
        conn.executemany(
            "INSERT INTO edges(file_id, src, dst, kind, weight, line) VALUES (?,?,?,?,?,?)", rows
        )
        if full:
            for ddl in EDGE_INDEXES.values():
                conn.execute(ddl)
            resolver = None  # type: ignore[assignment]  # free the whole-repo tables before the interfaces
            iface_rows: Iterable[tuple[str, str, str]] = _all_interface_rows(conn, files)
        else:
            empty = {"defs": [], "imports": [], "bases": [], "types": []}
            iface_rows = [(p, files[p][1], json.dumps(new_iface.get(p, empty))) for p in changed]
        conn.executemany("INSERT OR REPLACE INTO graph_files(path, hash, iface) VALUES (?,?,?)", iface_rows)
        moved = full or _edges_moved(conn, sums, deleted, built)
        if full:
            conn.execute("DELETE FROM graph_edge_sums")
        else:
            conn.executemany("DELETE FROM graph_edge_sums WHERE path=?", [(p,) for p in deleted])
        conn.executemany("INSERT OR REPLACE INTO graph_edge_sums(path, digest) VALUES (?,?)", sums.items())
        if moved:
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (GENERATION_KEY, str(generation(store) + 1))
            )
        conn.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                         [(JS_PACKAGES_KEY, packages), (CODE_KEY, code)])
    return _count(conn)


# -- resolution in worker processes ---------------------------------------------------------------
_WORKER: dict[str, Resolver] = {}


def graph_workers(conn: sqlite3.Connection, jobs: int) -> int:
    """How many resolver processes to run: at most `jobs` and GRAPH_MAX_WORKERS, and few enough
    that their whole-repo symbol tables (each holds one, ~1.1 KB a symbol) stay within
    GRAPH_WORKERS_BYTES together: a 560k-symbol monorepo gets 2, not one per core."""
    if jobs <= 1:
        return 1
    symbols = conn.execute("SELECT max(id) FROM symbols").fetchone()[0] or 0
    by_memory = int(GRAPH_WORKERS_BYTES // max(1, symbols * _BYTES_PER_SYMBOL))
    return max(1, min(jobs, GRAPH_MAX_WORKERS, by_memory))


def _worker_init(db_path: str, lazy: bool) -> None:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30.0)
    conn.execute("PRAGMA busy_timeout=30000")
    _WORKER["resolver"] = Resolver(conn, lazy=lazy)


def _worker_edges(batch: list[tuple[str, int]]) -> list[tuple[str, int, str, list[tuple]]]:
    resolver = _WORKER["resolver"]
    out = []
    for p, fid in batch:
        edges = file_edges(resolver, fid)
        out.append((p, fid, edges_digest(edges), edges))
    return out


def _resolve_in_workers(db_path: Path, todo: list[tuple[str, int]], jobs: int, *, lazy: bool
                        ) -> Iterator[tuple[str, int, str, list[tuple]]]:
    """(path, file id, digest, edges) of each file in `todo`, in order, resolved by `jobs` worker
    processes over the committed index (a file's edges depend only on the index, never on which
    other files a resolver saw before). Batches go back in order, so rows are written as before."""
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["repoloop.indexer.graph.build"])
    n = max(8, min(_WORKER_BATCH, len(todo) // (jobs * 8) or 1))
    batches = [todo[i:i + n] for i in range(0, len(todo), n)]
    with ctx.Pool(jobs, initializer=_worker_init, initargs=(str(db_path), lazy)) as pool:
        for part in pool.imap(_worker_edges, batches):
            yield from part


def rebuild_edges(store: IndexStore) -> int:
    """Recompute every edge from scratch (the reference the incremental path is tested against)."""
    return update_edges(store, set(), set(), full=True)


def file_edges(resolver: Resolver, file_id: int) -> list[tuple[str, str, str, float, int | None]]:
    """All edges one file's symbols and references produce: (src, dst, kind, weight, line)."""
    f = resolver.repo.by_id[file_id]
    fnode = f"f:{f.path}"
    best: dict[tuple[str, str, str], tuple[float, int | None]] = {}

    def add(src: str, dst: str, kind: str, weight: float, line: int | None) -> None:
        if src == dst and kind != "calls":
            return  # recursion is a real call; anything else pointing at itself is noise
        key = (src, dst, kind)
        old = best.get(key)
        if old is None:
            best[key] = (weight, line)
        elif weight > old[0]:
            best[key] = (weight, old[1])

    for qual, parent, line in resolver.conn.execute(
        "SELECT qualname, parent, start_line FROM symbols WHERE file_id=? ORDER BY start_line", (file_id,)
    ):
        src = f"s:{parent}" if parent and parent in resolver.defs else fnode
        add(src, f"s:{qual}", "contains", 1.0, line)
    imp = resolver.imports(file_id)
    for tid, line in imp.edges:
        add(fnode, f"f:{resolver.repo.by_id[tid].path}", "imports", 1.0, line)
    kinds = {"call": "calls", "inherit": "inherits", "ref": "references"}
    memo: dict[tuple, list[tuple[str, float]]] = {}  # repeated calls (tests!) resolve once
    typed = f.family in TYPED_FAMILIES
    for name, rkind, line, scope, full in resolver.ref_rows(file_id):
        kind = kinds.get(rkind)
        if kind is None:
            continue
        key = (rkind, scope, name, full)
        targets = memo.get(key)
        if targets is None and typed:  # a local's declared type holds from its line to its block's end
            targets = memo.get((*key, line))
        if targets is None:
            resolver.typed.line_sensitive = False
            targets = resolver.resolve_ref(f, rkind, scope, name, full, line)
            memo[(*key, line) if typed and resolver.typed.line_sensitive else key] = targets
        src = f"s:{scope}" if scope else fnode
        for q, w in targets:
            add(src, f"s:{q}", kind, w, line)
    return [(s, d, k, w, ln) for (s, d, k), (w, ln) in best.items()]


# -- did the ranking graph change? ----------------------------------------------------------------
EMPTY_DIGEST = hashlib.blake2b(digest_size=16).hexdigest()  # a file without edges


def edges_digest(edges: Iterable[tuple[str, str, str, float, int | None]]) -> str:
    """Digest of a file's edges as a multiset of what graph consumers read: (src, dst, kind,
    weight). `line` is left out on purpose: a line moving changes no ranking, and the queries that
    show lines (callers, callees, deps) read the rewritten rows from SQLite anyway."""
    h = hashlib.blake2b(digest_size=16)
    for s, d, k, w in sorted((s, d, k, float(w)) for s, d, k, w, _line in edges):
        h.update(f"{s}\0{d}\0{k}\0{w!r}\n".encode())
    return h.hexdigest()


def _edges_moved(conn: sqlite3.Connection, sums: dict[str, str], deleted: set[str], built: dict[str, str]) -> bool:
    """Whether the redone files' edges differ from the ones they replace, or deleted files took
    edges with them. A file never built before had none; a built file without a digest (an index
    from before digests) counts as changed, so an old index is never trusted blindly."""
    old: dict[str, str] = {}
    for batch in _batches(sorted(set(sums) | deleted)):
        old.update(conn.execute(
            f"SELECT path, digest FROM graph_edge_sums WHERE path IN ({','.join('?' * len(batch))})", batch
        ).fetchall())

    def before(p: str) -> str | None:
        return old.get(p, None if p in built else EMPTY_DIGEST)

    if any(before(p) != d for p, d in sums.items()):
        return True
    return any(before(p) != EMPTY_DIGEST for p in deleted)


# -- incremental helpers --------------------------------------------------------------------------
def _interface(conn: sqlite3.Connection, file_id: int) -> dict:
    defs = sorted(
        [n, q, k, p or ""] for n, q, k, p in conn.execute(
            "SELECT name, qualname, kind, parent FROM symbols WHERE file_id=?", (file_id,)
        )
    )
    imports = sorted(
        [n, m or "", a or "", fu] for n, m, a, fu in conn.execute(
            "SELECT name, module, alias, full FROM refs WHERE file_id=? AND kind='import'", (file_id,)
        )
    )
    bases = sorted(
        [s or "", fu] for s, fu in conn.execute(
            "SELECT scope, full FROM refs WHERE file_id=? AND kind='inherit'", (file_id,)
        )
    )
    types = sorted(
        [n, sc or "", ro, fu] for n, sc, ro, fu in conn.execute(
            "SELECT name, scope, module, full FROM refs WHERE file_id=? AND kind='type'", (file_id,)
        ) if _shared_type_fact(sc, ro)
    )
    return {"defs": defs, "imports": imports, "bases": bases, "types": types}


def _shared_type_fact(scope: str | None, role: str | None) -> bool:
    """Declared types other files' resolution reads: fields, results, aliases, type parameters and
    file-level variables; a function's parameters and locals matter to its own file only."""
    base = (role or "").partition(":")[0]
    return base not in ("param", "local") or scope is None


def _all_interface_rows(conn: sqlite3.Connection, files: dict[str, tuple[int, str]],
                        batch: int = _IFACE_BATCH) -> Iterator[tuple[str, str, str]]:
    """(path, hash, `_interface` as JSON) of every file (full builds), read by ranges of file ids
    and streamed: the whole repo's interfaces never sit in memory at once (on a 50k-file repo they
    were the last, highest step of the index run's peak RSS)."""
    by_id = sorted((fid, p, h) for p, (fid, h) in files.items())
    for i in range(0, len(by_id), batch):
        part = by_id[i:i + batch]
        lo, hi = part[0][0], part[-1][0]
        out: dict[int, dict] = {fid: {"defs": [], "imports": [], "bases": [], "types": []} for fid, _p, _h in part}
        for fid, n, q, k, p in conn.execute(
            "SELECT file_id, name, qualname, kind, parent FROM symbols WHERE file_id BETWEEN ? AND ?", (lo, hi)
        ):
            if fid in out:
                out[fid]["defs"].append([n, q, k, p or ""])
        for fid, n, m, a, fu in conn.execute(
            "SELECT file_id, name, module, alias, full FROM refs WHERE file_id BETWEEN ? AND ? AND kind='import'",
            (lo, hi),
        ):
            if fid in out:
                out[fid]["imports"].append([n, m or "", a or "", fu])
        for fid, sc, fu in conn.execute(
            "SELECT file_id, scope, full FROM refs WHERE file_id BETWEEN ? AND ? AND kind='inherit'", (lo, hi)
        ):
            if fid in out:
                out[fid]["bases"].append([sc or "", fu])
        for fid, n, sc, ro, fu in conn.execute(
            "SELECT file_id, name, scope, module, full FROM refs WHERE file_id BETWEEN ? AND ? AND kind='type'",
            (lo, hi),
        ):
            if fid in out and _shared_type_fact(sc, ro):
                out[fid]["types"].append([n, sc or "", ro, fu])
        for fid, p, h in part:
            iface = out.pop(fid)
            for v in iface.values():
                v.sort()
            yield p, h, json.dumps(iface)


def _trigger_names(old: dict | None, new: dict | None) -> set[str]:
    """Names whose resolution elsewhere may differ because this file's interface changed."""
    empty: dict = {"defs": [], "imports": [], "bases": []}
    old, new = old or empty, new or empty
    names: set[str] = set()
    od = {tuple(d) for d in old["defs"]}
    nd = {tuple(d) for d in new["defs"]}
    names |= {d[0] for d in od ^ nd}
    oi = {tuple(i) for i in old["imports"]}
    ni = {tuple(i) for i in new["imports"]}
    for n, _m, a, _f in oi ^ ni:
        names.add(a or n)
        names.add(n)
    if {tuple(b) for b in old["bases"]} != {tuple(b) for b in new["bases"]}:
        names |= {d[0] for d in od | nd}  # members reachable through changed bases
    names |= _type_fact_names(old, new)
    return names


def _type_fact_names(old: dict, new: dict) -> set[str]:
    """Names whose uses may resolve differently because a declared type changed: the field, result
    or alias itself and the name of its owner (a struct, a function)."""
    ot = {tuple(t) for t in old.get("types", [])}
    nt = {tuple(t) for t in new.get("types", [])}
    out: set[str] = set()
    for name, scope, _role, _full in ot ^ nt:
        if not name.startswith("return"):
            out.add(name)
        if scope:
            out.add(re.split(r"::|\.|/", scope)[-1])
    return out


def _stems(path: str) -> set[str]:
    """Names an import of this file may use: its stem and, for package index files, its dir."""
    d, base = posixpath.split(path)
    stem = base.split(".", 1)[0]
    out = {stem}
    if stem in ("__init__", "index", "mod", "lib", "main") and d:
        out.add(posixpath.basename(d))
    return out


def _files_referring(conn: sqlite3.Connection, names: set[str], stems: set[str]) -> set[str]:
    out: set[str] = set()
    names = set(names)
    for batch in _batches(sorted(names)):
        out |= {r[0] for r in conn.execute(
            "SELECT DISTINCT f.path FROM refs r JOIN files f ON f.id=r.file_id "
            f"WHERE r.name IN ({','.join('?' * len(batch))})", batch,
        )}
    if stems:
        for fid_path, module, full in conn.execute(
            "SELECT f.path, r.module, r.full FROM refs r JOIN files f ON f.id=r.file_id WHERE r.kind='import'"
        ):
            text = f"{module or ''} {full or ''}"
            if any(s in text for s in stems):
                out.add(fid_path)
    return out


def _files_chaining(conn: sqlite3.Connection, names: set[str]) -> set[str]:
    """Files whose call chains or initializers go through one of `names` (`h.pool.Get()` reads
    the type of field pool): a substring match over those references' text, a superset."""
    out: set[str] = set()
    for n in sorted(names):
        out |= {r[0] for r in conn.execute(
            "SELECT DISTINCT f.path FROM refs r JOIN files f ON f.id=r.file_id"
            " WHERE r.kind IN ('call', 'type') AND instr(r.full, ?) > 0", (n,))}
    return out


def _old_interfaces(conn: sqlite3.Connection, paths: set[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for batch in _batches(sorted(paths)):
        for p, iface in conn.execute(
            f"SELECT path, iface FROM graph_files WHERE path IN ({','.join('?' * len(batch))})", batch
        ):
            out[p] = json.loads(iface)
    return out


def _files_with_dangling_edges(conn: sqlite3.Connection, resolver: Resolver, old_ifaces: dict[str, dict],
                               deleted: set[str]) -> set[str]:
    """Files with edges into what the update removed: qualnames the changed/deleted files used to
    define and no file defines now, and deleted files. (Every other edge pointed at something
    defined when it was built, and nothing else was removed since.)"""
    paths = resolver.repo.by_path
    gone = {d[1] for iface in old_ifaces.values() for d in iface["defs"]}
    dangling = [f"s:{q}" for q in sorted(gone) if q not in resolver.defs]
    dangling += [f"f:{p}" for p in sorted(deleted) if p not in paths]
    out: set[str] = set()
    for batch in _batches(dangling):
        out |= {r[0] for r in conn.execute(
            "SELECT DISTINCT f.path FROM edges e JOIN files f ON f.id=e.file_id "
            f"WHERE e.dst IN ({','.join('?' * len(batch))})", batch,
        )}
    return out


def _batches(items: Iterable[str], n: int = _BATCH) -> Iterable[list[str]]:
    items = list(items)
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _count(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM edges").fetchone()[0]
