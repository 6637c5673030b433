"""Helpers for the graph tests: index a directory into a real SQLite store.

Uses the real pipeline when it exists (it calls `update_edges` itself); otherwise the real parser
plus `IndexStore.replace_file` and an explicit `update_edges`, the same calls the pipeline makes.
"""

from __future__ import annotations

import hashlib
import shutil
import sysconfig
from pathlib import Path

from repoloop.indexer.graph.build import update_edges
from repoloop.indexer.store import IndexStore

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def copy_stdlib_packages(dest: Path, names: list[str]) -> Path:
    for n in names:
        shutil.copytree(STDLIB / n, dest / n, ignore=shutil.ignore_patterns("__pycache__", "test", "tests"))
    return dest


def index_dir(root: Path, index_dir: Path | None = None) -> IndexStore:
    """Index `root` (no embeddings) and return the open store."""
    idx = index_dir or root / ".repoloop"
    try:
        from repoloop.indexer.pipeline import index_repo
    except ImportError:
        index_repo = None
    if index_repo is not None:
        index_repo(root, idx, embed=False)
        store = IndexStore(idx / "index.db")
        update_edges(store, set(), set())  # no-op when the pipeline already built them
        return store
    return _index_by_hand(root, idx)


def _index_by_hand(root: Path, idx: Path) -> IndexStore:
    from repoloop.indexer.parse.languages import detect_language
    from repoloop.indexer.parse.parser import parse_source

    store = IndexStore(idx / "index.db")
    seen: set[str] = set()
    changed: set[str] = set()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if not p.is_file() or rel.startswith(".repoloop/") or "__pycache__" in rel:
            continue
        lang = detect_language(rel)
        if lang is None:
            continue
        data = p.read_bytes()
        h = hashlib.sha1(data).hexdigest()
        seen.add(rel)
        old = store.file(rel)
        if old is not None and old.hash == h:
            continue
        try:
            parsed = parse_source(rel, data, lang)
        except ValueError:  # a language the parser does not handle yet
            continue
        store.replace_file(parsed, hash=h, size=len(data), mtime=p.stat().st_mtime)
        changed.add(rel)
    gone = {f.path for f in store.files()} - seen
    store.delete_files(gone)
    update_edges(store, changed, gone)
    return store


def reindex(root: Path, store: IndexStore) -> IndexStore:
    """Incrementally re-index after edits to `root`; returns a fresh store handle."""
    idx = store.db_path.parent
    store.close()
    return index_dir(root, idx)


def edges(store: IndexStore, kind: str | None = None) -> set[tuple[str, str, str]]:
    q = "SELECT src, dst, kind FROM edges" + (" WHERE kind=?" if kind else "")
    return {tuple(r) for r in store.conn.execute(q, (kind,) if kind else ())}
