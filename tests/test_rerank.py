"""The dense re-rank of the top files: ordering, what it embeds and caches, and its failure modes.

The ordering tests use a keyword embedder (a deterministic `Embedder`, so the expected order is
known); the caching tests use the real local model, real SQLite and real chromadb."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from repoloop.indexer.config import VECTOR_CACHE_ENV, EmbedConfig
from repoloop.indexer.embed.embedders import SentenceTransformerEmbedder
from repoloop.indexer.embed.phase import embed_missing
from repoloop.indexer.embed.query_time_cache import VectorCache, cache_path
from repoloop.indexer.store import IndexStore
from repoloop.retrieval.api import RetrievalOptions
from repoloop.retrieval.rerank import reassign
from repoloop.retrieval.retriever import HybridRetriever, open_retriever
from tests.test_embed import CountingEmbedder
from tests.test_retrieval_fixtures import index, write_repo

QUERY = "Cart add_item remove_item total_price should apply the percent"


class KeywordEmbedder:
    """Texts mentioning `word` point one way, the rest another; the query points at `word`."""

    name = "keyword-test"
    dim = 2

    def __init__(self, word: str = "apply_discount", fail: bool = False) -> None:
        self.word = word
        self.fail = fail
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> list[list[float]]:
        if self.fail:
            raise RuntimeError("model exploded")
        self.texts.extend(texts)
        return [[1.0, 0.0] if (self.word in t or "percent" in t) and t != QUERY or t == QUERY else [0.0, 1.0]
                for t in texts]


def _files(r: HybridRetriever, query: str = QUERY) -> list[str]:
    return list(dict.fromkeys(h.path for h in r.search(query, 10)))


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = write_repo(tmp_path / "repo")
    write_repo(root, {"tests/test_pricing.py": '''
        from shop.pricing import apply_discount


        def test_apply_discount_percent():
            assert apply_discount(100, 10) == 90
        '''})
    index(root)
    return root


def test_rerank_moves_the_closest_file_up_and_leaves_tests_in_place(repo: Path) -> None:
    shared = EmbedConfig(vector_cache=repo.parent / "shared-vectors.db")
    with open_retriever(repo, options=RetrievalOptions(rerank=False, embed=shared)) as r:
        before = _files(r)
    assert before[0] == "shop/cart.py" and "shop/pricing.py" in before[1:]
    emb = KeywordEmbedder()
    with open_retriever(repo, options=RetrievalOptions(rerank=True, embed=shared), embedder=emb) as r:
        hits = r.search(QUERY, 10, explain=True)
        after = list(dict.fromkeys(h.path for h in hits))
        assert r.reranking.reranker is not None and r.reranking.reranker.embedded > 0
    assert after[0] == "shop/pricing.py"
    assert sorted(after) == sorted(before)  # re-ordered, nothing lost or added
    assert any("rerank" in h.signals for h in hits if h.path == "shop/pricing.py")
    # Tests are not candidates: never embedded, and at the place the first stage gave them.
    assert not any("test_apply_discount_percent" in t for t in emb.texts)
    if "tests/test_pricing.py" in before:
        assert after.index("tests/test_pricing.py") == before.index("tests/test_pricing.py")
    # The vectors went to the shared cache: a new retriever embeds only its query.
    assert (repo.parent / "shared-vectors.db").exists()
    emb2 = KeywordEmbedder()
    with open_retriever(repo, options=RetrievalOptions(rerank=True, embed=shared), embedder=emb2) as r:
        assert _files(r) == after
    assert emb2.texts == [QUERY]


def test_a_small_similarity_gap_does_not_overturn_the_first_stage(repo: Path) -> None:
    # Every chunk equally close: the first stage's order stands (the rank penalty breaks the tie).
    emb = KeywordEmbedder(word="def ")
    with open_retriever(repo, options=RetrievalOptions(rerank=False)) as r:
        before = _files(r)
    with open_retriever(repo, options=RetrievalOptions(rerank=True), embedder=emb) as r:
        assert _files(r) == before


def test_off_by_default_and_with_lexical_or_without_dense(repo: Path) -> None:
    emb = KeywordEmbedder()
    with open_retriever(repo, options=RetrievalOptions(rerank=False)) as r:
        before = _files(r)
    with open_retriever(repo, embedder=emb) as r:  # the CLI's default: a cold query stays fast
        assert _files(r) == before
    with open_retriever(repo, options=RetrievalOptions(rerank=True, lexical_only=True), embedder=emb) as r:  # --lexical: no model
        assert _files(r) == before
    with open_retriever(repo, options=RetrievalOptions(rerank=True), embedder=emb) as r:  # signals without dense: an ablation
        assert list(dict.fromkeys(h.path for h in r.search(QUERY, 10, signals="bm25,name,graph,trace"))) == before
    assert emb.texts == []
    assert not (repo / ".repoloop" / "vectors.db").exists()


def test_a_failing_model_keeps_the_fused_order(repo: Path, caplog) -> None:
    with open_retriever(repo, options=RetrievalOptions(rerank=False)) as r:
        before = _files(r)
    with caplog.at_level(logging.WARNING), open_retriever(repo, options=RetrievalOptions(rerank=True), embedder=KeywordEmbedder(fail=True)) as r:
        assert _files(r) == before
    assert "re-rank failed" in caplog.text


def test_a_model_that_cannot_load_turns_the_rerank_off_once(repo: Path, caplog) -> None:
    from repoloop.errors import RepoloopError

    class Unloadable(KeywordEmbedder):
        def embed(self, texts: list[str]) -> list[list[float]]:
            raise RepoloopError("cannot load embedding model 'x' offline")

    with open_retriever(repo, options=RetrievalOptions(rerank=False)) as r:
        before = _files(r)
    with caplog.at_level(logging.WARNING), open_retriever(repo, options=RetrievalOptions(rerank=True), embedder=Unloadable()) as r:
        assert _files(r) == before and _files(r, "cart items") is not None
        assert r.reranking.tools(r.rerank_on) is None  # off for this index, not tried again
    assert caplog.text.count("re-rank off") == 1


def test_reassign_gives_new_order_the_old_scores() -> None:
    scale = reassign(["a", "b", "c"], ["c", "a", "b"], {"a": 0.9, "b": 0.5, "c": 0.25})
    new = {p: s * scale[p] for p, s in {"a": 0.9, "b": 0.5, "c": 0.25}.items()}
    assert sorted(new, key=lambda p: -new[p]) == ["c", "a", "b"]
    assert new["c"] == pytest.approx(0.9) and new["a"] == pytest.approx(0.5)


def test_vector_cache_persists_per_model_and_degrades_to_memory(tmp_path: Path, monkeypatch, caplog) -> None:
    db = tmp_path / "v.db"
    c = VectorCache(db, "m1")
    c.put({"k1": [0.6, 0.8], "k2": np.array([1.0, 0.0])})
    c.close()
    again = VectorCache(db, "m1")
    got = again.get(["k1", "k2", "k3"])
    assert set(got) == {"k1", "k2"} and np.allclose(got["k1"], [0.6, 0.8])
    assert VectorCache(db, "m2").get(["k1"]) == {}  # another model's vectors are not these
    # Unusable location (a file where its directory should be): vectors are kept in memory.
    (tmp_path / "blocker").write_text("x")
    with caplog.at_level(logging.WARNING):
        bad = VectorCache(tmp_path / "blocker" / "v.db", "m1")
    bad.put({"k": [1.0, 0.0]})
    assert set(bad.get(["k"])) == {"k"} and "unusable" in caplog.text
    shared = EmbedConfig.from_env({VECTOR_CACHE_ENV: str(tmp_path / "shared.db")}).vector_cache
    assert cache_path(tmp_path / "idx", shared) == tmp_path / "shared.db"
    assert cache_path(tmp_path / "idx", EmbedConfig.from_env({}).vector_cache) == tmp_path / "idx" / "vectors.db"


@pytest.fixture(scope="module")
def model() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


def test_query_time_vectors_are_reused_by_a_later_index(repo: Path, model) -> None:
    """Real model: the re-rank embeds the candidates' chunks once; `repoloop index` then takes
    them from the cache and embeds only the rest."""
    emb = CountingEmbedder(model)
    with open_retriever(repo, options=RetrievalOptions(rerank=True), embedder=emb) as r:
        r.search("discount percent on the cart total", 5)
        assert r.reranking.reranker is not None
        lazily = r.reranking.reranker.embedded
    assert lazily > 0 and (repo / ".repoloop" / "vectors.db").exists()
    later = CountingEmbedder(model)
    with IndexStore.open(repo) as store:
        n = embed_missing(store, repo / ".repoloop", embedder=later)
        total = store.conn.execute("SELECT count(DISTINCT key) FROM embed_keys").fetchone()[0]
    assert n == sum(later.calls) == total - lazily  # the model saw only what the re-rank had not embedded


def test_an_embedded_index_is_not_reranked(repo: Path, model) -> None:
    """Dense is in the fusion already there (and re-ranking it measured worse): --rerank adds nothing."""
    with IndexStore.open(repo) as store:
        embed_missing(store, repo / ".repoloop", embedder=model)
    emb = CountingEmbedder(model)
    with open_retriever(repo, options=RetrievalOptions(rerank=True), embedder=emb) as r:
        hits = r.search("discount percent on the cart total", 5, explain=True)
        assert not r.lexical_only and not r.rerank_on and r.reranking.tools(r.rerank_on) is None
    assert emb.calls == [1]  # the query, for the dense signal
    assert not any("rerank" in h.signals for h in hits) and any("dense" in h.signals for h in hits)


def test_cli_rerank_on_a_no_embed_index_and_the_agent_default(repo: Path, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from repoloop.agent.config import RetrievalConfig
    from repoloop.agent.observe import Observer

    env = {**os.environ, VECTOR_CACHE_ENV: str(tmp_path / "cli-vectors.db")}
    cmd = [sys.executable, "-m", "repoloop.cli", "search", "discount percent on the cart total", "--repo", str(repo),
           "--json", "--explain", "-k", "5"]
    plain = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert plain.returncode == 0, plain.stderr
    assert not any("rerank" in h["signals"] for h in json.loads(plain.stdout)["results"])  # off by default
    assert not (tmp_path / "cli-vectors.db").exists()
    on = subprocess.run([*cmd, "--rerank"], capture_output=True, text=True, env=env, timeout=300)
    assert on.returncode == 0, on.stderr
    assert any("rerank" in h["signals"] for h in json.loads(on.stdout)["results"])
    assert (tmp_path / "cli-vectors.db").exists()
    st = subprocess.run([sys.executable, "-m", "repoloop.cli", "status", "--repo", str(repo), "--json"],
                        capture_output=True, text=True, env=env, timeout=120)
    q = json.loads(st.stdout)["query_time_vectors"]
    assert q["path"] == str(tmp_path / "cli-vectors.db") and sum(q["vectors"].values()) > 0
    st = subprocess.run([sys.executable, "-m", "repoloop.cli", "status", "--repo", str(repo)],
                        capture_output=True, text=True, env=env, timeout=120)
    assert st.returncode == 0 and "query-time vectors (re-rank)" in st.stdout
    # The agent re-ranks by default (its steps wait for a model anyway), and can be told not to.
    assert RetrievalConfig().rerank is True
    obs = Observer.open(repo, None, options=RetrievalOptions(), lexical_only=False)
    try:
        assert isinstance(obs.retriever, HybridRetriever) and obs.retriever.options.rerank is True
        assert obs.retriever.rerank_on  # a --no-embed index: the re-rank runs
    finally:
        obs.close()


def test_a_damaged_vector_cache_is_reported_and_ranking_goes_on(repo: Path, caplog) -> None:
    idx = repo / ".repoloop"
    (idx / "vectors.db").write_bytes(b"not a database" * 100)
    with caplog.at_level(logging.WARNING):
        with open_retriever(repo, options=RetrievalOptions(rerank=True), embedder=KeywordEmbedder()) as r:
            assert _files(r)[0] == "shop/pricing.py"  # re-ranked with vectors kept in memory
        with IndexStore.open(repo) as store:  # a later index pass does not trip over it either
            assert embed_missing(store, idx, embedder=KeywordEmbedder()) > 0
    assert "vector cache" in caplog.text
    assert (idx / "vectors.db").read_bytes().startswith(b"not a database")  # left for the user to inspect


def test_whole_file_bm25_offers_files_the_fused_list_missed(tmp_path: Path) -> None:
    # `spread.py` holds every query word, one per function, so no chunk of it ranks high at the
    # chunk level; `dense.py` has all of them in each chunk. With a shallow first stage only
    # whole-file BM25 finds spread.py, and the re-rank (whose model prefers it) lifts it to the top.
    import dataclasses

    from repoloop.retrieval.weights import DEFAULT

    words = ["ledger", "reconcile", "invoice", "settlement", "quarterly", "audit"]
    query = " ".join(words)
    pad = "".join(f"    x{j} = compute(x{j - 1} if {j} else 0)\n" for j in range(60))  # one chunk per function
    spread = "\n\n".join(f"def step_{i}():\n{pad}    return '{w} marker'\n" for i, w in enumerate(words))
    dense = "\n\n".join(f"def f_{i}():\n{pad}    return '{query}'\n" for i in range(10))
    root = write_repo(tmp_path / "repo", {"pkg/spread.py": spread, "pkg/dense.py": dense,
                                          "pkg/other.py": "def unrelated():\n    return 1\n"})
    index(root)

    class MarkerEmbedder(KeywordEmbedder):  # the query and spread.py's chunks point one way
        def embed(self, texts: list[str]) -> list[list[float]]:
            return [[1.0, 0.0] if t == query or "marker" in t else [0.0, 1.0] for t in texts]

    shallow = dataclasses.replace(DEFAULT, depth=2, rerank_inject=0)
    with open_retriever(root, options=RetrievalOptions(rerank=True, weights=shallow), embedder=MarkerEmbedder()) as r:
        without = _files(r, query)
    assert "pkg/dense.py" in without and "pkg/spread.py" not in without
    with open_retriever(root, options=RetrievalOptions(rerank=True, weights=dataclasses.replace(shallow, rerank_inject=3)), embedder=MarkerEmbedder()) as r:
        files = _files(r, query)
    assert files[0] == "pkg/spread.py"
    assert set(without) <= set(files)  # the first stage's files are all still there
