"""A team's shared embedding cache on a Chroma server (`--chroma-url`).

Each index keeps its own collection on the server (`rl-<tag>-<model>`: the vectors its chunks use,
orphans pruned on every run). Beside them, one collection per model and input length,
`rl-team-<model>` (`vector_store.collection_name("team", model)`; the model's name carries its input
length, `all-MiniLM-L6-v2@128`), holds every vector any index embedded through that server, keyed
like everything else by `phase.embed_key` (a hash of the embedded text). It is never pruned:
a vector is a pure function of (text, model, length), so one made on any clone, branch or worktree
serves every other. Before calling the model, `embed_missing` takes what it can from here; after
each batch it embeds, it adds the new vectors here too. A second clone of the same repository (at
another path, on another branch) thus embeds only the texts nobody embedded yet.
"""

from __future__ import annotations

from typing import Any

from repoloop.indexer.embed.vector_store import MAX_BATCH, VectorStore, collection_name

TEAM_TAG = "team"


def team_collection(vs: VectorStore, model: str) -> Any:
    return vs.client.get_or_create_collection(
        collection_name(TEAM_TAG, model), metadata={"hnsw:space": "cosine", "model": model, "team_cache": True},
        embedding_function=None)


def find(team: Any, keys: list[str]) -> tuple[list[str], list[Any]]:
    """The vectors `team` has for `keys`: (keys found, their vectors)."""
    found: list[str] = []
    vecs: list[Any] = []
    for i in range(0, len(keys), MAX_BATCH):
        got = team.get(ids=keys[i : i + MAX_BATCH], include=["embeddings"])
        if len(got["ids"]):
            found.extend(got["ids"])
            vecs.extend(got["embeddings"])
    return found, vecs

