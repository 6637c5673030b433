"""Embedding scope: non-test code by default, tests on request, with the real model and chromadb.
Switching scope re-embeds or drops exactly the test chunks and `status` stays consistent."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from repoloop.indexer.config import EmbedConfig
from repoloop.indexer.embed.embedders import SentenceTransformerEmbedder
from repoloop.indexer.embed.phase import check_consistency, embed_missing
from repoloop.indexer.store import IndexStore
from repoloop.retrieval.retriever import open_retriever
from tests.test_retrieval_fixtures import index, write_repo

FILES = {
    "shop/cart.py": '''
        def add_item(cart, sku, quantity):
            """Put quantity units of sku into the cart."""
            cart[sku] = cart.get(sku, 0) + quantity
            return cart
    ''',
    "shop/tax.py": '''
        def vat(amount, rate=0.2):
            return round(amount * rate, 2)
    ''',
    "tests/test_cart.py": '''
        from shop.cart import add_item

        def test_adding_twice_accumulates_quantity():
            assert add_item(add_item({}, "apple", 1), "apple", 2) == {"apple": 3}
    ''',
    "shop/tax_test.py": '''
        def test_vat_rounds_to_cents():
            assert vat(10.005) == 2.0
    ''',
}


def _keyed_paths(root: Path) -> set[str]:
    db = sqlite3.connect(root / ".repoloop" / "index.db")
    try:
        return {r[0] for r in db.execute(
            "SELECT DISTINCT f.path FROM embed_keys e JOIN chunks c ON c.id=e.chunk_id JOIN files f ON f.id=c.file_id")}
    finally:
        db.close()


def test_scope_from_env() -> None:
    assert EmbedConfig.from_env({}).scope == "code"
    assert EmbedConfig.from_env({"REPOLOOP_EMBED_TESTS": "1"}).scope == "all"
    assert EmbedConfig.from_env({"REPOLOOP_EMBED_TESTS": "0"}).scope == "code"


def test_tests_are_not_embedded_by_default_and_can_be(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", FILES)
    rep = index(root, embed=True)
    assert _keyed_paths(root) == {"shop/cart.py", "shop/tax.py"}
    with IndexStore.open(root) as store:
        c = check_consistency(store, root / ".repoloop")
        n_all = store.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert c["consistent"] and c["scope"] == "code" and c["vectors"] == rep.embedded
    assert c["chunks"] < n_all  # the test chunks are out of scope, not "missing"

    model = SentenceTransformerEmbedder()
    r = open_retriever(root, embedder=model)
    try:  # dense answers only with code; the lexical signals still find the tests
        dense = r.search("adding the same item twice accumulates the quantity", 5, signals="dense")
        assert dense and all("test" not in h.path for h in dense)
        lexical = r.search("test_adding_twice_accumulates_quantity", 5, signals="bm25,name")
        assert lexical[0].path == "tests/test_cart.py"
    finally:
        r.close()

    # Asking for tests embeds exactly their chunks; asking for code again drops them.
    with IndexStore.open(root) as store:
        added = embed_missing(store, root / ".repoloop", embedder=model, scope="all")
        c = check_consistency(store, root / ".repoloop")
    assert added == n_all - rep.embedded and c["consistent"] and c["scope"] == "all"
    assert _keyed_paths(root) == set(FILES)
    with IndexStore.open(root) as store:
        assert embed_missing(store, root / ".repoloop", embedder=model, config=EmbedConfig(scope="code")) == 0
        c = check_consistency(store, root / ".repoloop")
    assert c["consistent"] and c["orphans"] == 0 and c["vectors"] == rep.embedded
