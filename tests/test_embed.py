"""Embeddings with the real local model and real chromadb: the content-keyed cache (re-index,
rename, edit, delete), consistency checks, dense retrieval, and --lexical staying import-free."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from repoloop.indexer.embed.embedders import SentenceTransformerEmbedder
from repoloop.indexer.embed.phase import check_consistency, embed_missing
from repoloop.indexer.store import IndexStore
from repoloop.retrieval.retriever import open_retriever
from tests.test_retrieval_fixtures import index, write_repo

ROOT = Path(__file__).resolve().parents[1]


class CountingEmbedder:
    """The real model, counting the texts it is asked to embed."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[int] = []

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(len(texts))
        return self.inner.embed(texts)


@pytest.fixture(scope="module")
def model() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder()


def _embed(root: Path, emb) -> int:
    with IndexStore.open(root) as store:
        return embed_missing(store, root / ".repoloop", embedder=emb)


def _check(root: Path) -> dict:
    with IndexStore.open(root) as store:
        return check_consistency(store, root / ".repoloop")


def test_embedding_cache_across_reindex_rename_edit_and_delete(tmp_path: Path, model) -> None:
    root = write_repo(tmp_path / "repo")
    first = index(root, embed=True)  # the pipeline's embedding phase, default (local) model
    assert first.embedded and first.embedded > 0
    c = _check(root)
    assert c["consistent"] and c["enabled"] and c["model"] == SentenceTransformerEmbedder().name
    assert c["vectors"] == c["keys"] == first.embedded

    emb = CountingEmbedder(model)
    # A second run embeds nothing.
    index(root)
    assert _embed(root, emb) == 0 and emb.calls == []

    # A renamed (moved) file embeds nothing: the cache key does not depend on the path.
    (root / "billing").mkdir()
    shutil.move(root / "shop/payment.py", root / "billing/cards.py")
    rep = index(root)
    assert rep.files_deleted == 1
    assert _embed(root, emb) == 0 and emb.calls == []
    c = _check(root)
    assert c["consistent"], c

    # Dense retrieval finds the moved code at its new path.
    r = open_retriever(root, embedder=model)
    try:
        assert not r.lexical_only
        hits = r.search("checksum digits of a credit card", 3, explain=True, signals="dense")
        assert hits[0].path == "billing/cards.py" and hits[0].symbol == "billing.cards.validate_card"
        assert set(hits[0].signals) == {"dense"} and 0 < hits[0].signals["dense"]["score"] <= 1.0
    finally:
        r.close()

    # Editing one function embeds only that chunk.
    p = root / "shop/pricing.py"
    p.write_text(p.read_text().replace("return round(value + 1e-9, 2)", "return round(value, 2)"))
    index(root)
    assert _embed(root, emb) == 1 and emb.calls == [1]

    # Deleting a file leaves orphan vectors until the next run removes them.
    before = _check(root)["vectors"]
    (root / "util/text.py").unlink()
    index(root)
    c = _check(root)
    assert c["orphans"] > 0 and not c["consistent"]
    assert _embed(root, emb) == 0
    c = _check(root)
    assert c["consistent"] and c["orphans"] == 0 and c["vectors"] < before


def test_no_embed_then_index_fills_in_and_lexical_stays_light(tmp_path: Path, model) -> None:
    root = write_repo(tmp_path / "repo")
    index(root)
    c = _check(root)
    assert not c["enabled"] and c["missing"] == c["chunks"] > 0
    assert open_retriever(root).lexical_only
    emb = CountingEmbedder(model)
    n = _embed(root, emb)
    assert n == sum(emb.calls) > 0
    assert _check(root)["consistent"]
    # Even on an embedded index, --lexical imports neither torch nor chromadb.
    code = (
        "import sys, io, contextlib\n"
        "from repoloop.cli import main\n"
        "buf = io.StringIO()\n"
        "with contextlib.redirect_stdout(buf):\n"
        f"    rc = main(['search', 'card checksum', '--repo', {str(root)!r}, '--lexical', '--json'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'chromadb', 'sentence_transformers'})\n"
        "print(rc, heavy, len(__import__('json').loads(buf.getvalue())['results']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("0 [] ")
    # Without --lexical the same index uses dense retrieval (and so chromadb).
    out = subprocess.run([sys.executable, "-m", "repoloop.cli", "search", "card checksum", "--repo", str(root),
                          "--json", "--explain", "-k", "3"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)["results"]
    assert any("dense" in r["signals"] for r in res)
