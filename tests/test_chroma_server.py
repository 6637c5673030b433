"""Server mode: a real `chroma run` subprocess on 127.0.0.1 (random free port) holds the vectors;
indexing, the consistency check and dense search all go through HttpClient."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repoloop.errors import RepoloopError
from repoloop.indexer.embed.embedders import SentenceTransformerEmbedder
from repoloop.indexer.embed.phase import check_consistency, embed_missing
from repoloop.indexer.store import IndexStore
from repoloop.retrieval.retriever import open_retriever
from tests.test_embed_endpoint import endpoint  # noqa: F401, F811 - the fake embeddings endpoint fixture
from tests.test_retrieval_fixtures import index, write_repo

ROOT = Path(__file__).resolve().parents[1]
CHROMA = Path(sys.executable).with_name("chroma")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path: Path):
    if not CHROMA.exists():
        pytest.fail(f"{CHROMA} missing: chromadb's CLI should be installed in the venv")
    port = _free_port()
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen([str(CHROMA), "run", "--path", str(tmp_path / "chroma-data"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            assert proc.poll() is None, "chroma run exited"
            assert time.monotonic() < deadline, "chroma server did not start"
            time.sleep(0.2)
    yield url, tmp_path / "chroma-data"
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_index_check_and_search_through_a_chroma_server(tmp_path: Path, chroma_server) -> None:
    url, data_dir = chroma_server
    root = write_repo(tmp_path / "repo")
    index(root)
    model = SentenceTransformerEmbedder()
    with IndexStore.open(root) as store:
        for _ in range(100):  # the HTTP API may answer a moment after the port opens
            try:
                n = embed_missing(store, root / ".repoloop", embedder=model, chroma_url=url)
                break
            except RepoloopError:
                time.sleep(0.2)
        assert n > 0
        c = check_consistency(store, root / ".repoloop")  # the server URL is remembered in the index
        assert c["consistent"] and c["location"] == url and c["vectors"] > 0
        assert embed_missing(store, root / ".repoloop", embedder=model) == 0  # same server, cache hit
    assert not (root / ".repoloop" / "chroma").exists()  # nothing went to the embedded store
    assert any(data_dir.iterdir())

    r = open_retriever(root, embedder=model)
    try:
        hits = r.search("reduce the price by a percentage", 3, explain=True, signals="dense")
        assert hits[0].symbol == "shop.pricing.apply_discount"
    finally:
        r.close()


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    index(root)
    with IndexStore.open(root) as store, pytest.raises(RepoloopError, match="cannot reach the Chroma server"):
        embed_missing(store, root / ".repoloop", embedder=SentenceTransformerEmbedder(),
                      chroma_url=f"http://127.0.0.1:{_free_port()}")


def test_cli_index_status_search_with_chroma_url_and_embeddings_endpoint(tmp_path: Path, chroma_server,
                                                                          endpoint: str) -> None:  # noqa: F811
    """The CLI end to end in server mode, with an OpenAI-compatible embeddings endpoint."""
    import json

    url, _data = chroma_server
    root = write_repo(tmp_path / "repo")
    env = {**os.environ, "REPOLOOP_EMBED_BASE_URL": endpoint}
    env.pop("REPOLOOP_CHROMA_URL", None)

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "repoloop.cli", *args], capture_output=True, text=True,
                              cwd=ROOT, env=env, timeout=180)

    out = cli("index", str(root), "--embed-model", "hash-64", "--embed-base-url", endpoint, "--chroma-url", url,
              "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["embedded"] > 0
    st = json.loads(cli("status", "--repo", str(root), "--json").stdout)["consistency"]
    assert st["consistent"] and st["model"] == "openai:hash-64" and st["location"] == url
    res = json.loads(cli("search", "reserve stock quantity", "--repo", str(root), "--json", "--explain").stdout)
    assert any("dense" in r["signals"] for r in res["results"])
