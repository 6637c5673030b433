"""The embedder's input length is part of the model identity: vectors made at different lengths
never share a collection, a changed length re-embeds, an unchanged one embeds nothing, and queries
use the length the index was built with. Real model, real chromadb, real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from repoloop.errors import RepoloopError
from repoloop.indexer.config import EmbedConfig
from repoloop.indexer.embed import embedders as E
from repoloop.indexer.embed.embedders import (
    SentenceTransformerEmbedder,
    embedder_by_name,
    embedder_from_config,
)
from repoloop.indexer.embed.phase import check_consistency, embed_missing
from repoloop.indexer.store import IndexStore
from repoloop.retrieval.retriever import open_retriever
from tests.test_embed import CountingEmbedder
from tests.test_retrieval_fixtures import index, write_repo

ROOT = Path(__file__).resolve().parents[1]


def test_names_carry_the_length_and_round_trip() -> None:
    default = embedder_from_config(EmbedConfig.from_env({}))
    expected = E.DEFAULT_MODEL + (f"@{E.DEFAULT_MAX_TOKENS}" if E.DEFAULT_MAX_TOKENS not in (None, 256) else "")
    assert default.name == expected == SentenceTransformerEmbedder().name  # the pipeline's and the class's
    assert embedder_from_config(EmbedConfig(max_tokens=128)).name == "all-MiniLM-L6-v2@128"
    # The model's own length is the plain name: indexes made before the setting keep their vectors.
    assert embedder_from_config(EmbedConfig(max_tokens=256)).name == "all-MiniLM-L6-v2"
    assert embedder_from_config(EmbedConfig.from_env({E.MAX_TOKENS_ENV: "192"})).name == "all-MiniLM-L6-v2@192"
    # Queries re-create the embedder from the stored name, length included.
    for name, tokens in (("all-MiniLM-L6-v2@128", 128), ("all-MiniLM-L6-v2", 256), ("/m/my@model", None),
                         ("/m/model@64", 64)):
        e = embedder_by_name(name)
        assert isinstance(e, SentenceTransformerEmbedder) and e.max_tokens == tokens and e.name == name
    for bad in ("0", "-3", "many", "1.5"):
        with pytest.raises(RepoloopError, match=f"{E.MAX_TOKENS_ENV} must be a positive number of tokens"):
            EmbedConfig.from_env({E.MAX_TOKENS_ENV: bad})


def test_a_shorter_default_leaves_old_indexes_at_their_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(E, "DEFAULT_MAX_TOKENS", 128)
    assert SentenceTransformerEmbedder().name == embedder_from_config().name == "all-MiniLM-L6-v2@128"
    assert SentenceTransformerEmbedder(model="/some/model").max_tokens is None  # other models: their own
    old = embedder_by_name("all-MiniLM-L6-v2")  # an index embedded before the setting existed
    assert isinstance(old, SentenceTransformerEmbedder) and old.max_tokens == 256 and old.name == "all-MiniLM-L6-v2"


def test_length_truncates_what_the_model_reads() -> None:
    short, long_ = SentenceTransformerEmbedder(max_tokens=128), SentenceTransformerEmbedder(max_tokens=256)
    head = "def handler(request):\n" + "    value = compute(request.path, request.args)\n" * 15  # > 128 pieces
    a, b = head + "    return render(value)\n" * 20, head + "    raise PermissionDenied(value)\n" * 20
    s, lg = np.array(short.embed([a, b])), np.array(long_.embed([a, b]))
    assert np.allclose(s[0], s[1], atol=1e-5)  # the tails differ only past 128 word pieces
    assert not np.allclose(lg[0], lg[1], atol=1e-3)
    with pytest.raises(RepoloopError, match="more than model"):
        SentenceTransformerEmbedder(max_tokens=4096).embed(["x"])


def _embed(root: Path, emb) -> int:  # noqa: ANN001
    with IndexStore.open(root) as store:
        return embed_missing(store, root / ".repoloop", embedder=emb)


def _check(root: Path) -> dict:
    with IndexStore.open(root) as store:
        return check_consistency(store, root / ".repoloop")


def test_changed_length_reembeds_and_the_cache_still_holds(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    index(root)
    at256 = CountingEmbedder(SentenceTransformerEmbedder(max_tokens=256))
    n256 = _embed(root, at256)
    assert n256 > 0 and _check(root)["model"] == "all-MiniLM-L6-v2"
    assert _embed(root, at256) == 0  # a second index embeds nothing

    at128 = CountingEmbedder(SentenceTransformerEmbedder(max_tokens=128))
    assert _embed(root, at128) == n256  # every text again, into its own collection
    c = _check(root)
    assert c["model"] == "all-MiniLM-L6-v2@128" and c["consistent"] and c["vectors"] == n256
    assert _embed(root, at128) == 0 and sum(at128.calls) == n256

    # Queries embed at the index's length (the stored name), and find the code.
    r = open_retriever(root)
    try:
        hits = r.search("checksum digits of a credit card", 3, signals="dense")
        assert hits and hits[0].symbol == "shop.payment.validate_card"
        assert r.dense.dense.embedder.name == "all-MiniLM-L6-v2@128"  # type: ignore[union-attr]
    finally:
        r.close()

    # Back to 256: those vectors are still there, nothing is embedded.
    assert _embed(root, at256) == 0 and _check(root)["consistent"]


def test_cli_option_sets_the_length_and_rejects_bad_values(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    run = [sys.executable, "-m", "repoloop.cli", "index", str(root), "--quiet"]
    bad = subprocess.run([*run, "--embed-max-tokens", "zero"], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().count("\n") == 0 and "--embed-max-tokens" in bad.stderr
    assert not (root / ".repoloop").exists()  # refused before any work
    ok = subprocess.run([*run, "--embed-max-tokens", "96"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert ok.returncode == 0, ok.stderr
    c = _check(root)
    assert c["model"] == "all-MiniLM-L6-v2@96" and c["consistent"] and c["vectors"] > 0
