"""Start a new index from a sibling's: `repoloop index --seed-from PATH`, and by itself in a new
git worktree whose repository has another worktree with an index.

What is copied: the sibling's `index.db` (SQLite's online backup: a consistent snapshot even while
the sibling is being indexed), and the vectors its chunks use, into this index's vector cache
(`vectors.db`, read by the next embedding phase before it calls the model). Paths in the index are
relative to the repository root, so rows carry over as they are. Every file's `indexed_at` is
cleared, so the run that follows reads and hashes every file once (a checkout's mtimes say nothing
about its content) and re-parses only the files whose content differs from the sibling's; files
only the sibling has leave, new ones are added; the graph is rebuilt for what changed. The Chroma
collection tag is not copied: this index gets its own collection (on a shared server too), so the
two never prune each other's vectors.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from repoloop.errors import RepoloopError
from repoloop.indexer.lock import IndexLock
from repoloop.indexer.schema import LAST_RUN_KEY, META_MODEL, META_TAG, META_URL
from repoloop.indexer.store import DB_NAME, INDEX_DIRNAME, index_dir_for, prepare_index_dir


def _index_of(path: Path) -> Path | None:
    """The index directory a sibling path names: PATH/.repoloop, or PATH itself if it is one."""
    for d in (path / INDEX_DIRNAME, path):
        if (d / DB_NAME).is_file():
            return d
    return None


def worktree_siblings(repo: Path) -> list[Path]:
    """The other worktrees of `repo`'s git repository (main checkout first); [] outside git, and
    for a directory below a worktree's top (its index would hold other paths than the sibling's)."""
    here = repo.resolve()
    try:
        top = subprocess.run(["git", "-C", str(repo), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=30, check=True).stdout.strip()
        if not top or Path(top).resolve() != here:
            return []
        out = subprocess.run(["git", "-C", str(repo), "worktree", "list", "--porcelain"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    paths = [Path(line[len("worktree "):]) for line in out.splitlines() if line.startswith("worktree ")]
    return [p for p in paths if p.resolve() != here]


def maybe_seed(repo: Path, index_dir: Path | None, seed_from: str | None, *, auto: bool = True,
               wait: bool = False, vector_cache: Path | None = None) -> dict[str, Any] | None:
    """Seed `repo`'s index if it has none yet: from `seed_from`, else (auto: neither --no-seed nor
    REPOLOOP_NO_SEED, decided by the caller) from the first other worktree of the same git repository
    that has an index. The sibling's vectors go to the query-time cache (`vector_cache`, the shared
    one if the caller has one, else beside the index). Returns what was done, or None."""
    idx = index_dir_for(repo, index_dir)
    if (idx / DB_NAME).exists():
        return None  # an index is never replaced by a seed
    source: Path | None = None
    if seed_from:
        source = _index_of(Path(seed_from).expanduser().resolve())
        if source is None:
            raise RepoloopError(f"--seed-from {seed_from}: no repoloop index there (run `repoloop index` in it first)")
    elif auto and index_dir is None:
        for sib in worktree_siblings(repo):
            source = _index_of(sib)
            if source is not None:
                break
    if source is None or source.resolve() == idx.resolve():
        return None
    return seed_index(idx, source, wait=wait, vector_cache=vector_cache)


def seed_index(idx: Path, source: Path, *, wait: bool = False,
               vector_cache: Path | None = None) -> dict[str, Any] | None:
    prepare_index_dir(idx)
    with IndexLock(idx, wait=wait):
        db = idx / DB_NAME
        if db.exists():
            return None
        tmp = idx / (DB_NAME + ".seed")
        tmp.unlink(missing_ok=True)
        src = sqlite3.connect(f"file:{source / DB_NAME}?mode=ro", uri=True, timeout=60)
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
            dst.execute("UPDATE files SET indexed_at=0")
            meta = dict(dst.execute("SELECT key, value FROM meta"))
            dst.execute("DELETE FROM meta WHERE key IN (?, ?)", (META_TAG, LAST_RUN_KEY))
            dst.commit()
            files = dst.execute("SELECT count(*) FROM files").fetchone()[0]
        finally:
            src.close()
            dst.close()
        vectors = _copy_vectors(source, idx, meta, vector_cache)
        os.replace(tmp, db)  # last: a seed killed before this leaves no index, and the next run seeds again
    return {"from": str(source), "files": files, "vectors": vectors}


def _copy_vectors(source: Path, idx: Path, meta: dict[str, str], vector_cache: Path | None = None) -> int:
    """The sibling's vectors into this index's vector cache; 0 if it has none or they cannot be read."""
    model, tag = meta.get(META_MODEL), meta.get(META_TAG)
    if not model or not tag:
        return 0
    from repoloop.indexer.embed.query_time_cache import VectorCache, cache_path
    from repoloop.indexer.embed.vector_store import VectorStore

    try:
        vs = VectorStore.open(source, meta.get(META_URL) or None)
        coll = vs.collection(tag, model, create=False)
    except RepoloopError:
        return 0
    if coll is None:
        return 0
    cache = VectorCache(cache_path(idx, vector_cache), model)
    n, offset, page = 0, 0, 5000
    try:
        while True:
            got = coll.get(include=["embeddings"], limit=page, offset=offset)
            if len(got["ids"]):
                cache.put(dict(zip(got["ids"], got["embeddings"], strict=True)))
                n += len(got["ids"])
            if len(got["ids"]) < page:
                break
            offset += page
    finally:
        cache.close()
    return n
