"""How to run the int8 encoder graph on this CPU: threads x intra-op threads x batch size, on the
same chunk texts of one index (the question behind `onnx_encoder.py`'s "a batch per core, one
intra-op thread each"; the answer is in benchmarks/RESULTS.md, "Quiet-machine figures").

    .venv/bin/python experiments/ort_threads.py --db PATH/.repoloop/index.db --n 2000
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort

from repoloop.indexer.config import EmbedConfig
from repoloop.indexer.embed import phase
from repoloop.indexer.embed.embedders import embedder_from_config
from repoloop.indexer.embed.onnx_encoder import graph_path
from repoloop.indexer.store import IndexStore


def _session(graph: Path, intra: int, spin: bool) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = intra, 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    so.log_severity_level = 3
    return ort.InferenceSession(str(graph), so, providers=["CPUExecutionProvider"])


def _batches(encs: list, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
    out = []
    for b in (order[i : i + size] for i in range(0, len(order), size)):
        n = max(len(encs[i].ids) for i in b)
        ids = np.zeros((len(b), n), np.int64)
        mask = np.zeros_like(ids)
        for r, i in enumerate(b):
            ids[r, : len(encs[i].ids)] = encs[i].ids
            mask[r, : len(encs[i].ids)] = 1
        out.append((ids, mask))
    return out


def _time(label: str, run: Callable[[tuple[np.ndarray, np.ndarray]], object], batches: list, workers: int,
          n: int) -> None:
    t, c = time.perf_counter(), time.process_time()
    if workers > 1:
        with ThreadPoolExecutor(workers) as ex:
            list(ex.map(run, batches))
    else:
        for b in batches:
            run(b)
    wall = time.perf_counter() - t
    print(f"| {label} | {wall:.1f} | {time.process_time() - c:.1f} | {n / wall:.1f} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--db", required=True, type=Path, help="an embedded index's index.db")
    p.add_argument("--n", type=int, default=2000)
    a = p.parse_args()
    store = IndexStore(a.db, readonly=True)
    keys = sorted({r[0] for r in store.conn.execute("SELECT DISTINCT key FROM embed_keys")})
    texts = [t for _, t in phase._by_length(phase._texts_for(store, keys), 1024)][: a.n]
    emb = embedder_from_config(EmbedConfig.from_env(os.environ))
    emb.embed(["warm"] * 40)  # loads the ONNX encoder (and builds its graph if not cached)
    fast = emb._fast_encoder()
    encs = fast.tokenizer.encode_batch(texts)
    graph = graph_path(Path(emb._path()), "int8", emb.cache_dir)
    print("| threads x intra-op | wall s | CPU s | chunks/s |\n|---|---|---|---|")
    for workers, intra, spin, size in ((2, 1, False, 16), (2, 1, False, 32), (1, 2, True, 16), (1, 2, True, 64),
                                       (1, 2, False, 64), (1, 1, False, 16)):
        s = _session(graph, intra, spin)
        _time(f"{workers} x {intra}{' spin' if spin else ''}, batch {size}",
              lambda b, s=s: s.run(["pooled"], {"input_ids": b[0], "attention_mask": b[1]}),
              _batches(encs, size), workers, len(texts))


if __name__ == "__main__":
    main()
