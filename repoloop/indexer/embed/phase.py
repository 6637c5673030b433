"""The embedding phase of indexing: embed every chunk text not yet in the vector store.

Cache: a vector's id is `key = sha1(embedded text)`; the text embedded is the chunk's local symbol
name (its qualname without the module prefix) plus its code, so it does not change when the file is
renamed or moved. `embed_keys` (in index.db) maps chunk ids to keys; a collection per model holds
the vectors, so the same text is embedded once per model, across re-indexes and renames.

Crash safety: keys are written in SQLite transactions and vectors are upserted batch by batch, so a
run killed at any point leaves some keys without vectors; `check_consistency` reports them
("missing") and the next `embed_missing` embeds exactly those. Vectors whose key no chunk uses any
more ("orphans", after deletes) are removed by the next run.

Scope: by default only non-test code is embedded (`EmbedConfig.scope` "all": `index --embed-tests`
or REPOLOOP_EMBED_TESTS=1, embeds tests too). Embedding is the slow phase on a CPU and tests are often most of a repository's
chunks (django: 62 %), while "where is the code for this?" wants the code; tests stay searchable
through BM25, names and the graph.
"""

from __future__ import annotations

import hashlib
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from repoloop.indexer.config import SCOPES, EmbedConfig
from repoloop.indexer.embed.embedders import Embedder, embedder_from_config
from repoloop.indexer.schema import EMBED_KEYS_SCHEMA, META_DIM, META_MODEL, META_SCOPE, META_TAG, META_URL
from repoloop.indexer.store import IndexStore, transaction
from repoloop.indexer.testpaths import is_test_path

EMBED_TEXT_VERSION = "v1"
MAX_EMBED_CHARS = 1500  # the model reads <= 256 word pieces (~1,000 chars of code; 128 by default)
BATCH = 128  # texts per embed+upsert round: the unit of progress lost to a kill -9
_SORT_WINDOW = 8  # rounds' worth of texts sorted by length together (less padding per batch)


def embed_text(text: str, symbol: str | None, module: str) -> str:
    """What is embedded for a chunk: its local name and code, truncated to what the model reads."""
    local = symbol or ""
    if module and local.startswith(module + "."):
        local = local[len(module) + 1 :]
    body = f"{local}\n{text}" if local else text
    return body[:MAX_EMBED_CHARS]


def embed_key(text: str) -> str:
    return hashlib.sha1(f"{EMBED_TEXT_VERSION}\n{text}".encode("utf-8", "surrogatepass")).hexdigest()


def ensure_keys_table(store: IndexStore) -> None:
    store.conn.executescript(EMBED_KEYS_SCHEMA)  # an index written before the table existed


def _scope_sql(store: IndexStore, scope: str) -> str:
    """A condition on `f.path` (files alias f) selecting the chunks the scope embeds."""
    if scope not in SCOPES:
        raise ValueError(f"embedding scope must be one of {SCOPES}, not {scope!r}")
    if scope == "all":
        return "1"
    store.conn.create_function("repoloop_is_test", 1, is_test_path, deterministic=True)
    return "NOT repoloop_is_test(f.path)"


def sync_keys(store: IndexStore, scope: str = "code") -> int:
    """Drop key rows of chunks that are gone, changed or out of scope, add rows for new in-scope
    chunks; returns rows added."""
    ensure_keys_table(store)
    in_scope = _scope_sql(store, scope)
    c = store.conn
    with transaction(c):
        c.execute(
            "DELETE FROM embed_keys WHERE NOT EXISTS (SELECT 1 FROM chunks c JOIN files f ON f.id=c.file_id"
            f" WHERE c.id=embed_keys.chunk_id AND c.hash=embed_keys.chunk_hash AND {in_scope})"
        )
        rows = c.execute(
            "SELECT c.id, c.hash, c.text, c.symbol, f.module FROM chunks c JOIN files f ON f.id=c.file_id"
            f" WHERE NOT EXISTS (SELECT 1 FROM embed_keys e WHERE e.chunk_id=c.id) AND {in_scope}"
        ).fetchall()
        c.executemany(
            "INSERT OR REPLACE INTO embed_keys(chunk_id, chunk_hash, key) VALUES (?,?,?)",
            [(r[0], r[1], embed_key(embed_text(r[2], r[3], r[4]))) for r in rows],
        )
    return len(rows)


def _by_length(items: Iterator[tuple[str, str]], window: int) -> Iterator[tuple[str, str]]:
    """Texts regrouped by length within windows, so each encode batch pads to similar lengths
    (`encode` sorts only within one call; keys come in hash order, lengths at random)."""
    buf: list[tuple[str, str]] = []
    for item in items:
        buf.append(item)
        if len(buf) >= window:
            buf.sort(key=lambda kt: len(kt[1]))
            yield from buf
            buf = []
    buf.sort(key=lambda kt: len(kt[1]))
    yield from buf


def _texts_for(store: IndexStore, keys: list[str]) -> Iterator[tuple[str, str]]:
    """(key, embedded text) for each key, from one chunk that uses it."""
    for i in range(0, len(keys), 500):
        part = keys[i : i + 500]
        q = ",".join("?" * len(part))
        seen: set[str] = set()
        for key, text, symbol, module in store.conn.execute(
            "SELECT e.key, c.text, c.symbol, f.module FROM embed_keys e JOIN chunks c ON c.id=e.chunk_id"
            f" JOIN files f ON f.id=c.file_id WHERE e.key IN ({q})", part
        ):
            if key not in seen:
                seen.add(key)
                yield key, embed_text(text, symbol, module)


def _chroma_tag(store: IndexStore) -> str:
    tag = store.get_meta(META_TAG)
    if not tag:
        tag = uuid.uuid4().hex[:10]
        store.set_meta(META_TAG, tag)
    return tag


def stored_chroma_url(store: IndexStore) -> str | None:
    return store.get_meta(META_URL) or None


def embed_missing(
    store: IndexStore,
    index_dir: Path,
    progress: bool = False,
    embedder: Embedder | None = None,
    chroma_url: str | None = None,
    *,
    batch: int = BATCH,
    scope: str | None = None,
    config: EmbedConfig | None = None,
) -> int:
    """Embed every in-scope chunk text that has no vector yet for this model; returns how many were
    embedded. Also removes orphan vectors. The model is loaded only if something is missing.
    `config` (default `EmbedConfig()`) gives what the other arguments leave unset: the model, the
    Chroma server (else the one the index was built with), the scope ("code" or "all", see the
    module docstring) and the query-time vector cache read before the model is called."""
    from repoloop.indexer.embed.vector_store import VectorStore

    config = config or EmbedConfig()
    embedder = embedder or embedder_from_config(config)
    chroma_url = chroma_url or config.chroma_url or stored_chroma_url(store)
    scope = scope or config.scope
    sync_keys(store, scope)
    store.set_meta(META_SCOPE, scope)
    vs = VectorStore.open(index_dir, chroma_url)
    store.set_meta(META_URL, chroma_url or "")
    coll = vs.collection(_chroma_tag(store), embedder.name)
    store.set_meta(META_MODEL, embedder.name)
    have = VectorStore.ids(coll)
    needed = {r[0] for r in store.conn.execute("SELECT DISTINCT key FROM embed_keys")}
    orphans = have - needed
    if orphans:
        VectorStore.delete(coll, orphans)
    missing = sorted(needed - have)
    from repoloop.indexer.embed.query_time_cache import cache_path
    from repoloop.indexer.embed.vector_array import array_path

    mirror = _Mirror(array_path(index_dir, _chroma_tag(store), embedder.name), coll, needed, have - orphans,
                     int(store.get_meta(META_DIM) or 0))
    done = 0
    bar = None
    try:
        missing = _from_vector_cache(coll, missing, cache_path(index_dir, config.vector_cache), embedder.name,
                                     store, mirror)
        team = None
        if chroma_url:  # the server is also the team's embedding cache (repoloop.indexer.embed.team_cache)
            from repoloop.indexer.embed import team_cache

            team = team_cache.team_collection(vs, embedder.name)
            missing = _keep_found(coll, store, mirror, missing, *team_cache.find(team, missing))
        mirror.maybe_write(now=True)  # a search during this pass reads the vectors so far, without chromadb
        if not missing:
            return 0
        bar = _progress(progress, len(missing))
        pending: list[tuple[str, str]] = []
        for item in _by_length(_texts_for(store, missing), batch * _SORT_WINDOW):
            pending.append(item)
            if len(pending) >= batch:
                done += _flush(embedder, coll, pending, store, mirror, team)
                bar.advance(len(pending)) if bar else None
                pending = []
        if pending:
            done += _flush(embedder, coll, pending, store, mirror, team)
            bar.advance(len(pending)) if bar else None
    except KeyboardInterrupt:
        if bar:
            bar.stop()
            bar = None
        if sys.stderr.isatty():
            print(f"embedding interrupted: {done:,} of {len(missing):,} chunks embedded this run are kept"
                  " (search uses them; the next `repoloop index` embeds the rest)", file=sys.stderr)
        raise
    finally:
        if bar:
            bar.stop()
        mirror.write()
    return done


class _Mirror:
    """Keeps `dense/<collection>.npy` (repoloop.indexer.embed.vector_array) equal to the vectors the
    index's keys use: loaded from the last file, topped up from the store where it lacks some
    (an older index, a shared server, a pass killed before it wrote), then every vector embedded
    now; rewritten every so often during a pass and at its end, also when interrupted."""

    def __init__(self, path: Path, coll: object, needed: set[str], have: set[str], dim: int) -> None:
        from repoloop.indexer.embed.vector_array import VectorArray

        self.path, self.dim = path, dim
        old = VectorArray.load(path)
        self.vecs = {k: v for k, v in old.as_dict().items() if k in needed} if old is not None else {}
        self.dirty = old is None or len(self.vecs) != len(old)
        absent = sorted((needed & have) - self.vecs.keys())
        for i in range(0, len(absent), 5000):
            got = coll.get(ids=absent[i : i + 5000], include=["embeddings"])  # type: ignore[attr-defined]
            self.add(got["ids"], got["embeddings"])
        self.last = time.monotonic()
        self.cost = 0.0  # seconds the last write took

    def add(self, keys: Iterable[str], vecs: Iterable[object]) -> None:
        for k, v in zip(keys, vecs, strict=True):
            self.vecs[k] = np.asarray(v, dtype=np.float16)
            self.dirty = True

    def maybe_write(self, now: bool = False) -> None:
        """Write if changed and (now, or) the last write is long enough ago (at most ~10 % of the time)."""
        if self.dirty and (now or time.monotonic() - self.last > max(20.0, 10 * self.cost)):
            self.write()

    def write(self) -> None:
        if not self.dirty:
            return
        from repoloop.indexer.embed.vector_array import VectorArray

        t = time.monotonic()
        VectorArray.write(self.path, self.vecs, self.dim)
        self.dirty = False
        self.last = time.monotonic()
        self.cost = self.last - t


def _from_vector_cache(coll: object, keys: list[str], path: Path, model: str, store: IndexStore,
                       mirror: _Mirror | None = None) -> list[str]:
    """Store the vectors that query-time embedding (the dense re-rank) already made for these keys
    (the cache at `path`); returns the keys still missing."""
    from repoloop.indexer.embed.query_time_cache import VectorCache

    if not keys or not path.exists():
        return keys
    cache = VectorCache(path, model)
    try:
        got = cache.get(keys)
    finally:
        cache.close()
    return _keep_found(coll, store, mirror, keys, list(got), list(got.values()))


def _keep_found(coll: object, store: IndexStore, mirror: _Mirror | None, keys: list[str],
                found: list[str], vecs: list[Any]) -> list[str]:
    """Make vectors found elsewhere (the query-time cache, the team's server) this index's own: into
    its collection, its array and its recorded dimension. Returns the keys still missing."""
    from repoloop.indexer.embed.vector_store import VectorStore

    if not found:
        return keys
    VectorStore.upsert(coll, found, [list(map(float, v)) for v in vecs])
    if mirror is not None:
        mirror.add(found, vecs)
    store.set_meta(META_DIM, str(len(vecs[0])))
    got = set(found)
    return [k for k in keys if k not in got]


def _flush(embedder: Embedder, coll: object, pending: list[tuple[str, str]], store: IndexStore,
           mirror: _Mirror | None = None, team: object = None) -> int:
    from repoloop.indexer.embed.vector_store import VectorStore

    vecs = embedder.embed([t for _, t in pending])
    VectorStore.upsert(coll, [k for k, _ in pending], vecs)
    if team is not None:
        VectorStore.upsert(team, [k for k, _ in pending], vecs)
    if mirror is not None:
        mirror.add([k for k, _ in pending], vecs)
        mirror.maybe_write()
    if vecs and store.get_meta(META_DIM) != str(len(vecs[0])):
        store.set_meta(META_DIM, str(len(vecs[0])))
    return len(pending)


class _Bar:
    """A rich progress bar on a terminal (stderr); nothing otherwise."""

    def __init__(self, total: int) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.p = Progress(TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                          TextColumn("ETA"), TimeRemainingColumn(), transient=True)
        self.task = self.p.add_task("embed", total=total, rate="")
        self.start, self.done = time.monotonic(), 0
        self.p.start()

    def advance(self, n: int) -> None:
        self.done += n
        rate = self.done / max(time.monotonic() - self.start, 1e-6)
        self.p.update(self.task, advance=n, rate=f"{rate:.1f} chunks/s")

    def stop(self) -> None:
        self.p.stop()


def _progress(enabled: bool, total: int) -> _Bar | None:
    return _Bar(total) if enabled and sys.stderr.isatty() else None


def check_consistency(store: IndexStore, index_dir: Path) -> dict:
    """Compare the chunks in SQLite with the vectors in chroma, without loading any model.

    Returns {"enabled", "model", "location", "chunks", "unkeyed_chunks", "keys", "vectors",
    "missing", "orphans", "consistent"}: `missing` counts chunk texts without a vector (including
    chunks the embedding phase has not seen), `orphans` vectors no chunk uses."""
    scope = store.get_meta(META_SCOPE) or "all"
    in_scope = _scope_sql(store, scope)
    n_chunks = store.conn.execute(
        f"SELECT count(*) FROM chunks c JOIN files f ON f.id=c.file_id WHERE {in_scope}"
    ).fetchone()[0]
    model = store.get_meta(META_MODEL)
    if not model:
        return {"enabled": False, "model": None, "location": None, "chunks": n_chunks,
                "unkeyed_chunks": n_chunks, "keys": 0, "vectors": 0, "missing": n_chunks, "orphans": 0,
                "consistent": n_chunks == 0}
    from repoloop.errors import RepoloopError
    from repoloop.indexer.embed.vector_store import VectorStore

    ensure_keys_table(store)
    valid = (
        "FROM embed_keys e JOIN chunks c ON c.id=e.chunk_id AND c.hash=e.chunk_hash"
        f" JOIN files f ON f.id=c.file_id WHERE {in_scope}"
    )
    keyed = store.conn.execute(f"SELECT count(*) {valid}").fetchone()[0]
    keys = {r[0] for r in store.conn.execute(f"SELECT DISTINCT e.key {valid}")}
    unkeyed = n_chunks - keyed
    out = {"enabled": True, "model": model, "location": None, "chunks": n_chunks, "unkeyed_chunks": unkeyed,
           "keys": len(keys), "scope": scope}
    try:
        vs = VectorStore.open(index_dir, stored_chroma_url(store))
        out["location"] = vs.location
        coll = vs.collection(store.get_meta(META_TAG) or "", model, create=False)
        have = VectorStore.ids(coll) if coll is not None else set()
    except RepoloopError as e:
        out.update(vectors=None, missing=None, orphans=None, consistent=False, error=str(e))
        return out
    missing = len(keys - have)
    orphans = len(have - keys)
    out.update(vectors=len(have), missing=missing + unkeyed, orphans=orphans,
               consistent=missing == 0 and orphans == 0 and unkeyed == 0)
    return out


def describe_consistency(c: dict) -> str:
    """One line for people (`repoloop status`): what the vector store holds versus the chunks."""
    if not c.get("enabled"):
        return f"embeddings: none ({c.get('chunks', 0):,} chunks; `repoloop index` without --no-embed adds them)"
    if c.get("error"):
        return f"embeddings ({c.get('model')}): vector store unavailable: {c['error']}"
    state = "consistent" if c.get("consistent") else (
        f"{c.get('missing', 0):,} missing, {c.get('orphans', 0):,} orphan"
        " (the next `repoloop index` fixes this)")
    scope = " of non-test code" if c.get("scope") == "code" else ""
    return f"embeddings ({c.get('model')}, {c.get('location')}): {c.get('vectors', 0):,} vectors{scope}, {state}"
