"""chromadb's HNSW search depth: a collection the indexer writes is searched SEARCH_EF deep, also
one created by an older version with chromadb's default (100 candidates for 100 neighbours, which
missed up to 15 % of the exact nearest on a real index)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from repoloop.indexer.embed.vector_store import SEARCH_EF, VectorStore, collection_name

_READ = """
import sys, chromadb
c = chromadb.PersistentClient(path=sys.argv[1]).get_collection(sys.argv[2])
print(c.configuration["hnsw"]["ef_search"])
"""


def _ef_seen_by_a_new_process(index_dir: Path, name: str) -> int:
    out = subprocess.run([sys.executable, "-c", _READ, str(index_dir / "chroma"), name],
                         capture_output=True, text=True, timeout=120, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_a_new_collection_is_searched_deep(tmp_path: Path) -> None:
    vs = VectorStore.open(tmp_path)
    coll = vs.collection("t1", "m")
    VectorStore.upsert(coll, ["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
    assert SEARCH_EF > 100
    assert _ef_seen_by_a_new_process(tmp_path, collection_name("t1", "m")) == SEARCH_EF


def test_an_older_collection_is_brought_up_to_depth_by_the_next_writer(tmp_path: Path) -> None:
    vs = VectorStore.open(tmp_path)
    name = collection_name("t2", "m")
    vs.client.get_or_create_collection(name, metadata={"hnsw:space": "cosine", "model": "m"},
                                       embedding_function=None)  # as older versions made it
    assert _ef_seen_by_a_new_process(tmp_path, name) == 100
    assert vs.collection("t2", "m", create=False) is not None  # a reader changes nothing
    assert _ef_seen_by_a_new_process(tmp_path, name) == 100
    vs.collection("t2", "m")  # the embedding phase opens it to write
    assert _ef_seen_by_a_new_process(tmp_path, name) == SEARCH_EF
