"""Chunks per second of the embedding backends on the same real chunks, same machine state.

Samples --n distinct chunk texts (seeded) from an index, exactly as the embedding phase builds them,
and embeds them with each backend in turn, rounds interleaved (A B C A B C ...): sentence-transformers
fp32 (the baseline, `REPOLOOP_EMBED_BACKEND=torch`), the ONNX Runtime encoder int8 (the default) and
fp32. Each backend is loaded once, outside the timing; one `embed` call per round over all texts
(the embedder sorts and batches). Prints wall and process CPU seconds, chunks/s, and per-text cosine
of each backend's vectors to sentence-transformers'.

    nice .venv/bin/python benchmarks/embed_throughput.py --db IDX/index.db --n 2000 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repoloop.indexer.config import EmbedConfig  # noqa: E402
from repoloop.indexer.embed.embedders import DEFAULT_MODEL, SentenceTransformerEmbedder  # noqa: E402
from repoloop.indexer.embed.phase import embed_text  # noqa: E402


def sample(db: Path, n: int, seed: int) -> list[str]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute("SELECT c.text, c.symbol, f.module FROM chunks c JOIN files f ON f.id=c.file_id"
                       " ORDER BY c.id").fetchall()
    texts = sorted({embed_text(t, s, m or "") for t, s, m in rows})
    random.Random(seed).shuffle(texts)
    return texts[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backends", default="torch,onnx-int8,onnx-fp32")
    a = ap.parse_args()
    texts = sample(a.db, a.n, a.seed)
    print(f"{len(texts)} texts from {a.db}; load {os.getloadavg()}", flush=True)
    embedders = {}
    for b in a.backends.split(","):
        backend, _, precision = b.partition("-")
        base = EmbedConfig.from_env(os.environ)  # the user's cache dir and threads
        e = SentenceTransformerEmbedder.from_config(base.replace(backend=backend, precision=precision or None),
                                                    DEFAULT_MODEL, None)
        e.embed([f"warm up {i}" for i in range(8)])  # load (and build/cache the ONNX graph) outside the timing
        embedders[b] = e
    vecs: dict[str, np.ndarray] = {}
    times: dict[str, list[tuple[float, float]]] = {b: [] for b in embedders}
    for r in range(a.rounds):
        for b, e in embedders.items():
            t, c = time.perf_counter(), time.process_time()
            v = np.asarray(e.embed(texts), dtype=np.float32)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            times[b].append((wall, cpu))
            vecs[b] = v
            print(f"round {r} {b}: wall {wall:.1f} s, CPU {cpu:.1f} s, {len(texts) / wall:.1f} chunks/s;"
                  f" load {os.getloadavg()[0]:.1f}", flush=True)
    base = a.backends.split(",")[0]
    ref = vecs[base]
    rows = []
    for b, ts in times.items():
        wall = statistics.median(w for w, _ in ts)
        cpu = statistics.median(c for _, c in ts)
        cos = (vecs[b] * ref).sum(1)
        bw = statistics.median(w for w, _ in times[base])
        bc = statistics.median(c for _, c in times[base])
        rows.append({"backend": b, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
                     "chunks_per_s": round(len(texts) / wall, 1), "chunks_per_cpu_s": round(len(texts) / cpu, 1),
                     "x_wall": round(bw / wall, 2), "x_cpu": round(bc / cpu, 2),
                     "cos_min": round(float(cos.min()), 4), "cos_p1": round(float(np.percentile(cos, 1)), 4),
                     "cos_mean": round(float(cos.mean()), 5), "below_0.99": int((cos < 0.99).sum())})
    print("| backend | wall s | CPU s | chunks/s | chunks/CPU-s | x wall | x CPU | cos min | cos p1 | cos mean | < 0.99 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(v) for v in r.values()) + " |")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
