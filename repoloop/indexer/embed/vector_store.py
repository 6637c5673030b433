"""The vector store: chromadb, embedded (`PersistentClient` under `<index_dir>/chroma`) or a
Chroma server (`--chroma-url http://host:port`). Telemetry is off.

One collection per (index, model); a vector's id is the embedding key of the text it was made
from (see `phase.embed_key`), so equal texts share one vector and a renamed file costs nothing. We
always supply embeddings: chroma's default embedding function would try to download a model.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from repoloop.errors import RepoloopError

MAX_BATCH = 5000  # chromadb's add limit is ~5461 per call
# chromadb keeps one client system per path in a class-level registry that it fills without a lock:
# two threads opening the same path at once (a server's index pass and its Retriever warming) get
# a half-built system ("no attribute 'bindings'", KeyError). Opening is rare; serialise it.
_OPEN_LOCK = threading.Lock()


def collection_name(tag: str, model: str) -> str:
    """A valid chroma collection name (3-63 chars, [a-zA-Z0-9._-], alnum at both ends)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model.rsplit("/", 1)[-1]).strip("-._")[:24] or "model"
    digest = hashlib.sha1(model.encode()).hexdigest()[:8]
    return f"rl-{tag[:12]}-{slug}-{digest}"


# HNSW candidates per query. chromadb's default (100) equals the 100 neighbours a search asks for
# and found 96.2 % of the exact 100 nearest on vue core (40 queries, recall as low as 85 %); 300
# found 99.4 % (never below 98 %) at the same latency, so the store of record answers what the
# exact float16 array does (benchmarks/RESULTS.md, "Embeddings at the CPU's limit").
SEARCH_EF = 300


def _ensure_search_ef(coll: Any) -> None:
    """Persisted in the collection: clients opened afterwards (any process) search this deep."""
    conf = getattr(coll, "configuration", None)
    hnsw = conf.get("hnsw") if isinstance(conf, dict) else None
    if isinstance(hnsw, dict) and int(hnsw.get("ef_search") or 0) < SEARCH_EF:
        coll.modify(configuration={"hnsw": {"ef_search": SEARCH_EF}})


@dataclass
class VectorStore:
    client: Any
    location: str  # a path or a URL, for messages

    @classmethod
    def open(cls, index_dir: Path, chroma_url: str | None = None) -> VectorStore:
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if chroma_url:
            u = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
            if not u.hostname:
                raise RepoloopError(f"--chroma-url {chroma_url}: expected http://HOST:PORT")
            try:
                client = chromadb.HttpClient(host=u.hostname, port=u.port or 8000, ssl=u.scheme == "https",
                                             settings=settings)
                client.heartbeat()
            except Exception as e:  # noqa: BLE001 - unreachable server is a user error
                raise RepoloopError(f"cannot reach the Chroma server at {chroma_url}: {e}") from e
            return cls(client, chroma_url)
        path = Path(index_dir) / "chroma"
        path.mkdir(parents=True, exist_ok=True)
        with _OPEN_LOCK:
            return cls(chromadb.PersistentClient(path=str(path), settings=settings), str(path))

    def collection(self, tag: str, model: str, *, create: bool = True) -> Any | None:
        name = collection_name(tag, model)
        if create:  # a writer: also brings an older collection's search depth up to SEARCH_EF
            coll = self.client.get_or_create_collection(
                name, metadata={"hnsw:space": "cosine", "model": model}, embedding_function=None
            )
            _ensure_search_ef(coll)
            return coll
        try:
            return self.client.get_collection(name, embedding_function=None)
        except Exception:  # noqa: BLE001 - chroma raises various NotFound types across versions
            return None

    @staticmethod
    def ids(coll: Any, page: int = 20000) -> set[str]:
        out: set[str] = set()
        offset = 0
        while True:
            got = coll.get(include=[], limit=page, offset=offset)["ids"]
            out.update(got)
            if len(got) < page:
                return out
            offset += page

    @staticmethod
    def upsert(coll: Any, ids: Sequence[str], vectors: Sequence[Sequence[float]]) -> None:
        for i in range(0, len(ids), MAX_BATCH):
            coll.upsert(ids=list(ids[i : i + MAX_BATCH]), embeddings=[list(v) for v in vectors[i : i + MAX_BATCH]])

    @staticmethod
    def delete(coll: Any, ids: Iterable[str]) -> None:
        ids = list(ids)
        for i in range(0, len(ids), MAX_BATCH):
            coll.delete(ids=ids[i : i + MAX_BATCH])

    @staticmethod
    def query(coll: Any, vector: Sequence[float], n: int, count: int | None = None) -> list[tuple[str, float]]:
        """Nearest ids with cosine similarity (1 - distance), best first. `count` (the collection's
        size, if the caller keeps it) saves a round trip per query."""
        count = coll.count() if count is None else count
        if count == 0:
            return []
        res = coll.query(query_embeddings=[list(vector)], n_results=min(n, count), include=["distances"])
        return [(i, 1.0 - float(d)) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)]
