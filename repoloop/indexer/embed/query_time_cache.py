"""Vectors embedded outside the index pass, in SQLite: (model, text key) -> float32 vector.

Why: the dense re-rank (repoloop.retrieval.rerank) embeds, at query time, only the chunks of the
files a query ranks highest, on an index built with `--no-embed` (a monorepo too big to embed on a
CPU). Those vectors must survive the process (the next query, the next session, another worktree of
the same code: `EmbedConfig.vector_cache`, REPOLOOP_VECTOR_CACHE, points many indexes at one file)
and must not be embedded a second time by a later `repoloop index`, which reads them from here
before it calls the model.

Keys are `repoloop.indexer.embed.phase.embed_key` of the embedded text, so the same text is the same entry whatever
file or snapshot it came from. SQLite rather than chroma: readers hold the index read-only, several
processes may write at once (WAL, short transactions), and a lookup by key needs no vector index.
A cache that cannot be opened or written (read-only directory, damaged file) degrades to memory.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

CACHE_NAME = "vectors.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    model TEXT NOT NULL,
    key TEXT NOT NULL,
    vec BLOB NOT NULL,  -- float32, little-endian, unit length
    PRIMARY KEY (model, key)
);  -- a rowid table: 1.5 kB blobs make a WITHOUT ROWID b-tree ~3x bigger
"""


def cache_path(index_dir: Path, shared: Path | None = None) -> Path:
    """`shared` if given (`EmbedConfig.vector_cache`: one cache for many indexes), else beside the index."""
    return Path(shared).expanduser() if shared else Path(index_dir) / CACHE_NAME


class VectorCache:
    """Get and put unit vectors for one model; never raises for storage problems (logged once)."""

    def __init__(self, path: Path | None, model: str) -> None:
        self.path = path
        self.model = model
        self._memory: dict[str, np.ndarray] = {}  # where the file is unusable
        self._conn: sqlite3.Connection | None = None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(path, timeout=30.0, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                self._conn = conn
            except (OSError, sqlite3.Error) as e:
                log.warning("vector cache %s unusable, keeping vectors in memory: %s", path, e)

    def get(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        keys = list(dict.fromkeys(keys))
        out = {k: self._memory[k] for k in keys if k in self._memory}
        want = [k for k in keys if k not in out]
        if self._conn is None or not want:
            return out
        try:
            for i in range(0, len(want), 900):
                part = want[i : i + 900]
                rows = self._conn.execute(
                    f"SELECT key, vec FROM vectors WHERE model=? AND key IN ({','.join('?' * len(part))})",
                    [self.model, *part])
                out.update((k, np.frombuffer(blob, dtype="<f4")) for k, blob in rows)
        except sqlite3.Error as e:
            self._degrade(e)
        return out

    def put(self, vectors: Mapping[str, Sequence[float] | np.ndarray]) -> None:
        arrays = {k: np.asarray(v, dtype="<f4") for k, v in vectors.items()}
        if self._conn is None:
            self._memory.update(arrays)
            return
        try:
            with self._conn:
                self._conn.executemany("INSERT OR REPLACE INTO vectors(model, key, vec) VALUES (?,?,?)",
                                       [(self.model, k, a.tobytes()) for k, a in arrays.items()])
        except sqlite3.Error as e:
            self._degrade(e)
            self._memory.update(arrays)

    def _degrade(self, e: Exception) -> None:
        log.warning("vector cache %s failed, keeping vectors in memory: %s", self.path, e)
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
