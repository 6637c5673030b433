"""A compact copy of an index's vectors beside it (`<index_dir>/dense/<collection>.npy`): each
embedding key with its vector in float16, searched exactly with numpy.

Why: a one-shot `repoloop search` on an embedded index paid for importing chromadb (~0.5 s idle,
seconds on a busy machine) to ask for 100 nearest of a few thousand vectors, which a matrix-vector
product answers in milliseconds. chromadb stays the store of record (and the team's shared server,
`--chroma-url`); the embedding phase keeps this file equal to the vectors the index's chunks use,
rewriting it while it embeds, so a search during or after an interrupted pass sees the vectors made
so far. Exact search ranks at least as well as chromadb's approximate HNSW; float16 changes a
cosine by < 1e-3.

Format: one .npy of records (key: 20-byte sha1 digest, vec: float16[dim]); written to a temporary
file and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from repoloop.indexer.embed.vector_store import collection_name

DIR = "dense"
_KEY_BYTES = 20  # a sha1 digest (repoloop.indexer.embed.phase.embed_key)
_ROWS = 16384  # rows scored per block (float32 copies stay small)


def array_path(index_dir: Path, tag: str, model: str) -> Path:
    return Path(index_dir) / DIR / f"{collection_name(tag, model)}.npy"


class VectorArray:
    def __init__(self, keys: np.ndarray, vecs: np.ndarray) -> None:
        self.keys = keys  # (n,) S20
        self.vecs = vecs  # (n, dim) float16

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def load(cls, path: Path) -> VectorArray | None:
        """The array at `path`, or None when there is none (or it is unreadable)."""
        try:
            rec = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if rec.dtype.names != ("key", "vec"):
            return None
        return cls(rec["key"], rec["vec"])

    def as_dict(self) -> dict[str, np.ndarray]:
        return {_hex(k): np.asarray(v) for k, v in zip(self.keys, self.vecs, strict=True)}

    def nearest(self, query: np.ndarray, n: int) -> list[tuple[str, float]]:
        """The n keys closest to `query` (unit vectors: cosine), best first, with their cosine."""
        if not len(self) or n <= 0:
            return []
        q = np.asarray(query, dtype=np.float32)
        sims = np.empty(len(self), dtype=np.float32)
        for i in range(0, len(self), _ROWS):
            sims[i : i + _ROWS] = np.asarray(self.vecs[i : i + _ROWS], dtype=np.float32) @ q
        n = min(n, len(sims))
        top = np.argpartition(-sims, n - 1)[:n]
        top = top[np.lexsort((top, -sims[top]))]
        return [(_hex(self.keys[i]), float(sims[i])) for i in top]

    @staticmethod
    def write(path: Path, vectors: Mapping[str, np.ndarray], dim: int) -> None:
        """Replace the file with exactly these vectors (key order: sorted, for stable files)."""
        keys = sorted(vectors)
        if keys:
            dim = len(vectors[keys[0]])
        rec = np.zeros(len(keys), dtype=[("key", f"S{_KEY_BYTES}"), ("vec", "<f2", (dim,))])
        if keys:
            rec["key"] = [bytes.fromhex(k) for k in keys]
            rec["vec"] = np.stack([np.asarray(vectors[k], dtype=np.float32) for k in keys])
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=path.parent)
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)  # as any other file of the index, not mkstemp's 0600
            with os.fdopen(fd, "wb") as f:
                np.save(f, rec, allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _hex(key: bytes) -> str:
    """numpy returns an `S20` value without its trailing zero bytes (1 digest in 256 ends in one),
    so the digest is padded back before it is spelled as the embedding key."""
    return key.ljust(_KEY_BYTES, b"\0").hex()
