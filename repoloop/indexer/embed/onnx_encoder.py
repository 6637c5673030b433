"""Bulk sentence embedding through ONNX Runtime: the default model's encoder as an int8 ONNX graph
built from the shipped weights at first use and cached, batches sorted by length (no padding
beyond the batch's own longest text), one ONNX Runtime thread per core, each on its own batch.

Why: embedding is the slow phase of `repoloop index` and of a cold re-rank on a CPU. On this
2-core machine this does ~3x the chunks per second of sentence-transformers at fp32 with vectors
at cosine >= 0.99 to its own (benchmarks/embed_throughput.py, RESULTS.md "Embedding throughput").
Nothing is downloaded and torch is never imported: the graph comes from repoloop.indexer.embed.bert_onnx.

Cache: `<cache dir>/onnx/<model>-<weights fingerprint>-g<graph version>-<precision>.onnx`, where the
cache dir is `EmbedConfig.cache_dir` (REPOLOOP_CACHE_DIR, else $XDG_CACHE_HOME/repoloop), else
~/.cache/repoloop. Precision and threads come from the caller too (`EmbedConfig`). The graph
does not depend on the input length (the tokenizer truncates), so one file serves every
`--embed-max-tokens`. Written to a temporary name and renamed: concurrent builders are harmless.
An unwritable cache builds into a temporary directory for this process only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from repoloop.indexer.config import PRECISIONS, EmbedConfig
from repoloop.indexer.embed.bert_numpy import Unsupported, inspect_model, load_tokenizer

log = logging.getLogger(__name__)

__all__ = ["BATCH", "PRECISIONS", "OnnxBert", "ensure_graph", "graph_path", "usable_threads"]
BATCH = 16  # texts per run: length-sorted, so a batch pads little (16 measured ~5 % faster than 32)


def usable_threads() -> int:
    """The CPUs this process may run on (affinity and cpusets count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def graph_path(model_dir: Path, precision: str, root: Path | None = None) -> Path:
    """Where the graph of this model's weights, this code's graph and this precision is cached
    under `root` (None: the default cache dir)."""
    from repoloop.indexer.embed.bert_onnx import GRAPH_VERSION

    weights = model_dir / "model.safetensors"
    st = weights.stat()
    finger = hashlib.sha1(f"{weights.resolve()}\n{st.st_size}\n{st.st_mtime_ns}".encode()).hexdigest()[:12]
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in model_dir.name)[:40] or "model"
    return (root or EmbedConfig().onnx_cache_dir()) / "onnx" / f"{slug}-{finger}-g{GRAPH_VERSION}-{precision}.onnx"


def ensure_graph(model_dir: Path, precision: str, cache_dir: Path | None = None) -> Path:
    """The cached graph under `cache_dir`, built now if missing (seconds; needs the `onnx` package)."""
    path = graph_path(model_dir, precision, cache_dir)
    if path.exists():
        return path
    from repoloop.indexer.embed import bert_onnx

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = Path(tempfile.mkdtemp(prefix=".build-", dir=path.parent))
    except OSError as e:  # an unwritable cache: build for this process only
        log.warning("ONNX cache %s unwritable (%s); building in a temporary directory", path.parent, e)
        path = graph_path(model_dir, precision, Path(tempfile.mkdtemp(prefix="repoloop-onnx-")))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp_dir = path.parent
    try:
        tmp = tmp_dir / path.name
        try:
            bert_onnx.build(model_dir, tmp, int8=precision == "int8")
        except ImportError as e:
            raise Unsupported(f"building the ONNX encoder needs the onnx package: {e}") from e
        os.replace(tmp, path)
    finally:
        if tmp_dir != path.parent:
            for f in tmp_dir.iterdir():
                f.unlink(missing_ok=True)
            tmp_dir.rmdir()
    return path


class OnnxBert:
    """Sentence vectors (unit length) for many texts at once."""

    def __init__(self, session: Any, tokenizer: Any, *, threads: int, dim: int) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.threads = threads
        self.dim = dim
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def load(cls, model_dir: str | Path, max_tokens: int | None, *, precision: str = "int8",
             threads: int | None = None, cache_dir: Path | None = None) -> OnnxBert:
        """`threads` None: the usable CPUs; `cache_dir` None: the default. Raises Unsupported where
        this model or this installation cannot take the ONNX path."""
        model_dir = Path(model_dir)
        config, _ = inspect_model(model_dir)
        tok, _ = load_tokenizer(model_dir, config, max_tokens)
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise Unsupported(f"onnxruntime is not installed: {e}") from e
        if precision not in PRECISIONS:
            from repoloop.errors import RepoloopError

            raise RepoloopError(f"embedding precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        from repoloop.indexer.embed.bert_onnx import DISABLED_OPTIMIZERS

        path = ensure_graph(model_dir, precision, cache_dir)
        threads = threads or usable_threads()
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1  # parallel batches, not parallel kernels: no barriers, no spinning
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.log_severity_level = 3

        def open_session(graph: Path) -> Any:
            return ort.InferenceSession(str(graph), so, providers=["CPUExecutionProvider"],
                                        disabled_optimizers=DISABLED_OPTIMIZERS)

        try:
            session = open_session(path)
        except Exception as e:  # noqa: BLE001 - a damaged cache file: rebuild once
            log.warning("cached ONNX encoder %s unusable (%s); rebuilding", path, e)
            path.unlink(missing_ok=True)
            session = open_session(ensure_graph(model_dir, precision, cache_dir))
        log.info("Loading ONNX sentence encoder: model from %s (%s)", model_dir, path.name)  # warm.ModelLoads
        return cls(session, tok, threads=threads, dim=int(config["hidden_size"]))

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 unit vectors, in the order given."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encs = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        batches = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]

        def run(idx: list[int]) -> None:
            n = max(len(encs[i].ids) for i in idx)
            ids = np.zeros((len(idx), n), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(idx):
                e = encs[i].ids
                ids[row, : len(e)] = e
                mask[row, : len(e)] = 1
            out[idx] = self.session.run(["pooled"], {"input_ids": ids, "attention_mask": mask})[0]

        if self.threads <= 1 or len(batches) == 1:
            for b in batches:
                run(b)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="repoloop-embed")
            list(self._pool.map(run, batches))
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out
