"""A BERT sentence encoder (mean pooling, unit length) in numpy, for embedding a query or two.

Why by hand: a one-shot `repoloop search` on an embedded index needs one query vector, and
importing sentence-transformers (with transformers and torch) costs ~4 s of the ~6.5 s such a
search took on this 2-core machine, while the forward pass of all-MiniLM-L6-v2 over one query is a
few milliseconds of matrix products. This reads the same files sentence-transformers reads
(tokenizer.json through the `tokenizers` library, model.safetensors memory-mapped) and
computes the same vectors (tests/test_bert_numpy.py: cosine > 0.99999 against sentence-transformers
on code, prose, unicode, empty and over-long texts). Bulk embedding (indexing, the re-rank's
chunks) stays with sentence-transformers. Only the architecture the default model has is accepted:
a BERT encoder with absolute positions and GELU, then mean pooling and, optionally, normalisation;
anything else raises `Unsupported` and the caller uses sentence-transformers.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class Unsupported(Exception):
    """The model directory is not a plain BERT + mean-pooling sentence encoder."""


_ST_MODULES = ("sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling")
_NORMALIZE = "sentence_transformers.models.Normalize"


class NumpyBert:
    def __init__(self, tokenizer: object, weights: dict[str, np.ndarray], config: dict, *, max_tokens: int,
                 normalize: bool) -> None:
        # Limiting OpenBLAS to one thread per call needs threadpoolctl (~9 ms to import and to find
        # the libraries): not where OpenBLAS was told one thread (a one-shot query sets it before
        # numpy loads).
        self._blas: Any = None
        if os.environ.get("OPENBLAS_NUM_THREADS") != "1":
            from threadpoolctl import ThreadpoolController

            self._blas = ThreadpoolController()
        self.tokenizer = tokenizer
        self.w = weights
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.dim = int(config["hidden_size"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.max_tokens = max_tokens
        self.normalize = normalize

    @classmethod
    def load(cls, path: str | Path, max_tokens: int | None) -> NumpyBert:
        path = Path(path)
        config, normalize = inspect_model(path)
        try:
            weights = map_safetensors(path / "model.safetensors")
        except (OSError, ValueError, KeyError, TypeError) as e:  # sentence-transformers decides
            raise Unsupported(f"cannot read the model files: {e}") from e
        tok, max_tokens = load_tokenizer(path, config, max_tokens)
        if weights.get("embeddings.word_embeddings.weight") is None:
            raise Unsupported("no BERT embeddings in model.safetensors")
        log.info("Loading numpy query encoder: model from %s", path)  # service.warm.ModelLoads counts it
        return cls(tok, weights, config, max_tokens=max_tokens, normalize=normalize)

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 sentence vectors."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # One BLAS thread: a query's matrices are small, and on a busy machine the threads' spin-waits
        # cost more than they give (2 cores, 4 busy processes: p50 50 vs 75 ms, p90 60 vs 230 ms;
        # idle: 17 vs 10 ms).
        if self._blas is None:
            return self._encode(texts)
        with self._blas.limit(limits=1, user_api="blas"):
            return self._encode(texts)

    def ffn_peaks(self, texts: list[str]) -> np.ndarray:
        """(layers, inner size): the largest |GELU output| of each feed-forward channel over
        `texts`, padding excluded. Why: the int8 ONNX graph keeps the few channels with outlier
        activations in fp32 (repoloop.indexer.embed.bert_onnx), and this finds them."""
        peaks: list[np.ndarray] = []
        self._encode(texts, peaks)
        return np.stack([np.max(np.stack(peaks[layer::self.layers]), 0) for layer in range(self.layers)])

    def _encode(self, texts: list[str], peaks: list[np.ndarray] | None = None) -> np.ndarray:
        encs = self.tokenizer.encode_batch(list(texts))  # type: ignore[attr-defined]
        n = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), n), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros((len(encs), n), dtype=np.float32)
        for i, e in enumerate(encs):
            ids[i, : len(e.ids)] = e.ids
            types[i, : len(e.type_ids)] = e.type_ids
            mask[i, : len(e.ids)] = 1.0
        w = self.w
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n][None]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = self._norm(x, "embeddings.LayerNorm")
        bias = (1.0 - mask)[:, None, None, :] * np.float32(np.finfo(np.float32).min)  # no attention to padding
        for i in range(self.layers):
            x = self._layer(x, bias, f"encoder.layer.{i}.", mask, peaks)
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        if self.normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return pooled.astype(np.float32)

    # -- the encoder ----------------------------------------------------------------------------
    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.w[name + ".weight"] + self.w[name + ".bias"]

    def _layer(self, x: np.ndarray, bias: np.ndarray, p: str, mask: np.ndarray,
               peaks: list[np.ndarray] | None) -> np.ndarray:
        b, n, d = x.shape
        h, hd = self.heads, d // self.heads

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(b, n, h, hd).transpose(0, 2, 1, 3)

        q = split(self._dense(x, p + "attention.self.query"))
        k = split(self._dense(x, p + "attention.self.key"))
        v = split(self._dense(x, p + "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(hd)) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        ctx = (scores / scores.sum(-1, keepdims=True)) @ v
        ctx = ctx.transpose(0, 2, 1, 3).reshape(b, n, d)
        x = self._norm(self._dense(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        inner = _gelu(self._dense(x, p + "intermediate.dense"))
        if peaks is not None:
            peaks.append(np.abs(inner[mask > 0]).max(0))
        return self._norm(self._dense(inner, p + "output.dense") + x, p + "output.LayerNorm")


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Phi(x), with erf to float32 precision (Abramowitz-Stegun 7.1.26's
    error, 1.5e-7, is below float32's step at 1); numpy has no erf and scipy costs an import."""
    z = x * np.float32(1 / math.sqrt(2))
    a = np.abs(z)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(z) * (1.0 - poly * np.exp(-a * a))
    return (x * 0.5 * (1.0 + erf)).astype(np.float32)


_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def map_safetensors(path: Path) -> dict[str, np.ndarray]:
    """A safetensors file's tensors as read-only views of one memory map: nothing is copied.

    Why by hand: `safetensors.numpy.load_file` copies every tensor (86 MB for the default model:
    ~0.2 s wall and ~0.08 s CPU of a one-shot search that needs a few of the embedding rows and one
    pass over the layers). The format is an 8-byte little-endian header length, a JSON header of
    {name: {dtype, shape, data_offsets}}, then the raw little-endian data; the pages a query touches
    are read from the page cache on use. A misaligned tensor (never in files safetensors writes) is
    copied rather than viewed."""
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    if mm.size < 8:
        raise ValueError(f"{path.name}: too short for a safetensors file")
    n = int(mm[:8].view("<u8")[0])
    if n <= 0 or 8 + n > mm.size:
        raise ValueError(f"{path.name}: bad safetensors header length {n}")
    header = json.loads(bytes(mm[8:8 + n]))
    base = 8 + n
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
        begin, end = (base + int(o) for o in info["data_offsets"])
        shape = tuple(int(d) for d in info["shape"])
        if end > mm.size or end - begin != dtype.itemsize * math.prod(shape):
            raise ValueError(f"{path.name}: tensor {name} does not fit its offsets")
        raw = mm[begin:end]
        arr = raw.view(dtype) if begin % dtype.itemsize == 0 else np.frombuffer(bytes(raw), dtype)
        out[name] = arr.reshape(shape)
    return out


def inspect_model(path: Path) -> tuple[dict, bool]:
    """(config.json, whether the model normalises) of a plain BERT + mean-pooling sentence encoder
    directory; raises Unsupported for anything else."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        config = json.loads((path / "config.json").read_text())
        kinds = [m["type"] for m in modules]
        pooling = json.loads((path / modules[1]["path"] / "config.json").read_text()) if len(modules) > 1 else {}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Unsupported(f"not a sentence-transformers model directory: {e}") from e
    if (tuple(kinds[:2]) != _ST_MODULES or kinds[2:] not in ([], [_NORMALIZE])
            or config.get("model_type") != "bert" or config.get("hidden_act") != "gelu"
            or config.get("position_embedding_type", "absolute") != "absolute"
            or not pooling.get("pooling_mode_mean_tokens")
            or any(pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                             "pooling_mode_mean_sqrt_len_tokens"))):
        raise Unsupported("only BERT + mean pooling is encoded in numpy")
    return config, len(kinds) > 2


def load_tokenizer(path: Path, config: dict, max_tokens: int | None) -> tuple[object, int]:
    """The model's fast tokenizer truncating at max_tokens (default: the model's own length), and
    that length; no padding (callers pad per batch)."""
    try:
        tok = _wordpiece(path) if _plain_bert_tokenizer(path) else None
        if tok is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    except Exception as e:  # noqa: BLE001 - missing files or libraries: sentence-transformers decides
        raise Unsupported(f"cannot read the tokenizer: {e}") from e
    limit = int(config.get("max_position_embeddings", 512))
    if max_tokens is not None and max_tokens > limit:
        raise Unsupported(f"{max_tokens} tokens is more than the model reads")  # its error is the loader's
    if max_tokens is None:
        try:
            max_tokens = int(json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"])
        except (OSError, ValueError, KeyError, TypeError):
            max_tokens = limit
    max_tokens = min(max_tokens, limit)
    tok.no_padding()
    tok.enable_truncation(max_length=max_tokens)
    return tok, max_tokens


# The default model's tokenizer.json is a plain BERT one (lower-casing BertNormalizer, BertPreTokenizer,
# WordPiece over vocab.txt, [CLS] ... [SEP]): `tokenizers` builds the same tokenizer from vocab.txt in
# 10 ms, where parsing the 700 KB JSON takes 26 ms, a sixth of a one-shot query's dense half. Only
# for the files this was checked on (tests/test_bert_numpy.py compares the two on code and prose);
# every other model's tokenizer.json is read as it is.
_PLAIN_BERT_TOKENIZERS = {  # sha1 of (tokenizer.json, vocab.txt)
    ("c1346c873f1124e358c6201eac21da13261cc5ff", "c3b4105373feaa5b0b2c332321c1e592d6f39658"),  # all-MiniLM-L6-v2
}


def _plain_bert_tokenizer(path: Path) -> bool:
    import hashlib

    try:
        digests = tuple(hashlib.sha1((path / name).read_bytes()).hexdigest() for name in ("tokenizer.json", "vocab.txt"))
    except OSError:
        return False
    return digests in _PLAIN_BERT_TOKENIZERS


def _wordpiece(path: Path) -> object:
    from tokenizers import BertWordPieceTokenizer

    return BertWordPieceTokenizer(str(path / "vocab.txt"), lowercase=True, clean_text=True,
                                  handle_chinese_chars=True, strip_accents=None)
