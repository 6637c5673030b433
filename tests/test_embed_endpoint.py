"""Any OpenAI-compatible embeddings endpoint: a real HTTP server on 127.0.0.1 (the only fake is
the model behind it: hashed bag-of-words vectors) serving /v1/embeddings to the `openai` client."""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from repoloop.errors import RepoloopError
from repoloop.indexer.config import EmbedConfig
from repoloop.indexer.embed.embedders import OpenAIEmbedder, embedder_from_config
from repoloop.indexer.embed.phase import check_consistency, embed_missing
from repoloop.indexer.store import IndexStore
from repoloop.retrieval.api import RetrievalOptions
from repoloop.retrieval.retriever import open_retriever
from tests.test_retrieval_fixtures import index, write_repo

DIM = 64


def _vec(text: str) -> list[float]:
    v = [0.0] * DIM
    for w in re.findall(r"[a-z]+", text.lower()):
        v[int(hashlib.md5(w.encode()).hexdigest(), 16) % DIM] += 1.0
    n = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / n for x in v]


class _Handler(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.requests.append(body)
        if self.path != "/v1/embeddings":
            self.send_error(404)
            return
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = {"object": "list", "model": body["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1},
                "data": [{"object": "embedding", "index": i, "embedding": _vec(t)} for i, t in enumerate(inputs)]}
        raw = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    _Handler.requests.clear()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def test_endpoint_embedder_indexes_and_searches(tmp_path: Path, endpoint: str) -> None:
    config = EmbedConfig.from_env({"REPOLOOP_EMBED_BASE_URL": endpoint}, model="hash-64")  # as the CLI reads them
    emb = embedder_from_config(config)
    assert isinstance(emb, OpenAIEmbedder) and emb.name == "openai:hash-64"
    root = write_repo(tmp_path / "repo")
    index(root)
    with IndexStore.open(root) as store:
        n = embed_missing(store, root / ".repoloop", embedder=emb)
        assert n > 0 and emb.dim == DIM
        assert {r["model"] for r in _Handler.requests} == {"hash-64"}
        c = check_consistency(store, root / ".repoloop")
        assert c["consistent"] and c["model"] == "openai:hash-64" and c["vectors"] == n
        assert embed_missing(store, root / ".repoloop", embedder=emb) == 0
    # The query side re-creates the endpoint embedder from the index's model name and the configured URL.
    r = open_retriever(root, options=RetrievalOptions.from_env({"REPOLOOP_EMBED_BASE_URL": endpoint}))
    try:
        hits = r.search("stock reserve quantity", 3, explain=True, signals="dense")
        assert hits[0].symbol in {"shop.inventory.Inventory", "shop.inventory.Inventory.reserve_stock"}
        assert "dense" in hits[0].signals
    finally:
        r.close()


def test_unreachable_endpoint_is_a_clear_error(tmp_path: Path) -> None:
    emb = OpenAIEmbedder(model="m", base_url="http://127.0.0.1:9/v1")
    emb._client = None
    with pytest.raises(RepoloopError, match="embeddings endpoint"):
        emb.embed(["x"])


def test_unreachable_vector_store_degrades_to_lexical_search(tmp_path: Path, endpoint: str, caplog,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_repo(tmp_path / "repo")
    index(root)
    emb = OpenAIEmbedder(model="hash-64", base_url=endpoint)
    with IndexStore.open(root) as store:
        assert embed_missing(store, root / ".repoloop", embedder=emb) > 0
    # The index's own float16 copy of its vectors needs no store: dense works with the server down ...
    r = open_retriever(root, options=RetrievalOptions(chroma_url="http://127.0.0.1:9"), embedder=emb)
    try:
        hits = r.search("reserve stock quantity", 3, explain=True)
        assert any("dense" in h.signals for h in hits) and not r.lexical_only
    finally:
        r.close()
    # ... and where the store itself is asked (no array, or REPOLOOP_DENSE_STORE=chroma), it degrades.
    monkeypatch.setenv("REPOLOOP_DENSE_STORE", "chroma")  # read at the edge, as the CLI does
    r = open_retriever(root, options=RetrievalOptions.from_env(chroma_url="http://127.0.0.1:9"), embedder=emb)
    try:
        assert not r.lexical_only
        hits = r.search("reserve stock quantity", 3, explain=True)
        assert hits and all("dense" not in h.signals for h in hits) and r.lexical_only
        assert "dense retrieval unavailable" in caplog.text
    finally:
        r.close()


def test_endpoint_down_at_query_time_degrades_that_query(tmp_path: Path, endpoint: str, caplog) -> None:
    root = write_repo(tmp_path / "repo")
    index(root)
    with IndexStore.open(root) as store:
        assert embed_missing(store, root / ".repoloop", embedder=OpenAIEmbedder(model="hash-64", base_url=endpoint)) > 0
    dead = OpenAIEmbedder(model="hash-64", base_url="http://127.0.0.1:9/v1")
    r = open_retriever(root, embedder=dead)
    try:
        hits = r.search("reserve stock quantity", 3, explain=True)
        assert hits and all("dense" not in h.signals for h in hits)
        assert "dense retrieval failed for this query" in caplog.text
    finally:
        r.close()
