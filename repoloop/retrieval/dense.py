"""Dense retrieval: the query embedded with the model the index was built with, nearest vectors
from the index's compact array (repoloop.indexer.embed.vector_array: numpy, exact) or, where an index
has none yet, from chromadb; mapped back to chunks through `embed_keys` (one vector may serve
several chunks). `use_array=False` (REPOLOOP_DENSE_STORE=chroma) asks chromadb even where the array exists.

Imported only when dense retrieval is on. The array path imports neither chromadb nor torch: a
one-shot search pays only for the query's numpy encoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from repoloop.indexer.config import EmbedConfig
from repoloop.indexer.embed.embedders import Embedder, embedder_by_name
from repoloop.indexer.embed.phase import MAX_EMBED_CHARS, stored_chroma_url
from repoloop.indexer.embed.vector_array import VectorArray, array_path
from repoloop.indexer.schema import META_MODEL, META_TAG
from repoloop.indexer.store import IndexStore
from repoloop.retrieval.dense_signal import nearest_chunks
from repoloop.retrieval.fusion import Ranked


class Dense:
    """Warm dense search: model, client and collection are opened once, on first use."""

    def __init__(self, store: IndexStore, index_dir: Path, *, embedder: Embedder | None = None,
                 chroma_url: str | None = None, use_array: bool = True,
                 embed_config: EmbedConfig | None = None) -> None:
        self.store = store
        self.embed_config = embed_config  # how the query embedder is made (None: EmbedConfig())
        self.index_dir = Path(index_dir)
        self.model = store.get_meta(META_MODEL) or ""
        self.embedder = embedder
        self.chroma_url = chroma_url or stored_chroma_url(store)
        self.use_array = use_array  # False: chromadb even where the array exists (comparisons, benchmarks)
        self._coll: Any = None
        self._tag: str | None = None  # the collection's tag when it was opened
        self._count: int | None = None  # collection size, read once per index generation (refresh)
        self._array: VectorArray | None = None  # the compact copy, when the index has one

    @property
    def available(self) -> bool:
        return bool(self.model)

    def _collection(self) -> Any:
        if self._coll is None:
            from repoloop.indexer.embed.vector_store import VectorStore

            vs = VectorStore.open(self.index_dir, self.chroma_url)
            self._tag = self.store.get_meta(META_TAG) or ""
            self._coll = vs.collection(self._tag, self.model, create=False)
        return self._coll

    def warm(self) -> None:
        """Load the model and open the collection now (a long-running process pays this once)."""
        if self.available and self.prepare():
            self.search("warm up", 1)

    def refresh(self) -> None:
        """After an index pass: re-read the collection's size; the model and the client stay. A
        different model or collection (the index re-made) is opened afresh on next use."""
        self._count = None
        self._array = None  # re-read: the pass may have rewritten it
        model, tag = self.store.get_meta(META_MODEL) or "", self.store.get_meta(META_TAG) or ""
        if model != self.model or tag != self._tag:
            self.model, self._coll = model, None

    def prepare(self) -> bool:
        """Open what `nearest` needs (on the thread that owns the SQLite connection); False if
        there is nothing to search."""
        if not self.available:
            return False
        if not self.open_array():
            coll = self._collection()
            if coll is None:
                return False
            if self._count is None:
                self._count = coll.count()
        if self.embedder is None or self.embedder.name != self.model:  # a given one only if it made the index
            self.embedder = embedder_by_name(self.model, self.embed_config)
        return True

    def open_array(self) -> bool:
        """Open the index's compact array (not chromadb); False where there is none to read."""
        if self._array is None and self.use_array:
            self._array = VectorArray.load(array_path(self.index_dir, self.store.get_meta(META_TAG) or "", self.model))
        return self._array is not None

    def nearest(self, query: str, limit: int) -> list[tuple[str, float]]:
        """Embed the query and ask chroma; touches no SQLite, so it may run on another thread
        (torch and chroma release the GIL) while the lexical signals run. Call `prepare` first."""
        if not query.strip() or (self._coll is None and self._array is None) or self.embedder is None:
            return []
        vec = self.embedder.embed([query[: MAX_EMBED_CHARS * 2]])[0]
        if self._array is not None:
            return self._array.nearest(np.asarray(vec, dtype=np.float32), limit)
        from repoloop.indexer.embed.vector_store import VectorStore

        return VectorStore.query(self._coll, vec, limit, self._count)

    def search(self, query: str, limit: int) -> Ranked:
        if not self.prepare():
            return Ranked("dense", [], [])
        return nearest_chunks(self.store.conn, self.nearest(query, limit), limit)
