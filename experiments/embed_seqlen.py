"""Embedding throughput by input length: chunks/s of the default model at max_seq_length 256 vs 128
(and others) on the same real chunks, the texts exactly as the embedding phase builds them.

    nice python experiments/embed_seqlen.py --db /work/benchdata/swe-lex-trees/django__django.repoloop/index.db \
        --n 1000 --lengths 256,128,192 --rounds 3

The model is loaded once; lengths are interleaved round by round (256, 128, ..., 256, 128, ...) so a
change in machine load hits every length alike; each figure is the median of the rounds. The texts
are ordered by length first (as `encode` does within a call), batch 32, one call per round, like
the embedding phase. Also prints how many texts are longer than each length (what truncation cuts).
Results as JSON lines on stdout (and --out).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repoloop.indexer.embed.embedders import SentenceTransformerEmbedder  # noqa: E402
from repoloop.indexer.embed.phase import embed_text  # noqa: E402


def sample_texts(db: Path, n: int, seed: int) -> list[str]:
    """n distinct embedded texts from an index, a seeded random choice among all chunks."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute("SELECT c.text, c.symbol, f.module FROM chunks c JOIN files f ON f.id=c.file_id"
                       " ORDER BY c.id").fetchall()
    con.close()
    texts = sorted({embed_text(t, s, m) for t, s, m in rows})
    random.Random(seed).shuffle(texts)
    return texts[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, required=True, help="an index.db whose chunks to embed")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--lengths", default="256,128")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    texts = sample_texts(a.db, a.n, a.seed)
    lengths = [int(x) for x in a.lengths.split(",")]
    emb = SentenceTransformerEmbedder(batch_size=a.batch)
    st = emb._load()
    tok = st.tokenizer
    n_tokens = [len(ids) for ids in tok(texts, add_special_tokens=True, truncation=False)["input_ids"]]
    emb.embed(texts[:64])  # warm-up (first-call allocations)
    times: dict[int, list[float]] = {n: [] for n in lengths}
    cpu: dict[int, list[float]] = {n: [] for n in lengths}
    for _ in range(a.rounds):
        for n in lengths:
            st.max_seq_length = n
            t0, c0 = time.perf_counter(), time.process_time()
            emb.embed(texts)
            times[n].append(time.perf_counter() - t0)
            cpu[n].append(time.process_time() - c0)
    base = statistics.median(times[lengths[0]])
    out = []
    for n in lengths:
        med = statistics.median(times[n])
        row = {"max_seq_length": n, "texts": len(texts), "rounds": a.rounds, "wall_s": times[n],
               "cpu_s": cpu[n], "median_s": round(med, 2), "chunks_per_s": round(len(texts) / med, 1),
               "speedup_vs_first": round(base / med, 2),
               "texts_truncated": sum(k > n for k in n_tokens),
               "median_tokens": statistics.median(n_tokens), "load1": os.getloadavg()[0],
               "torch_threads": __import__("torch").get_num_threads()}
        out.append(row)
        print(json.dumps(row), flush=True)
    if a.out:
        a.out.write_text("".join(json.dumps(r) + "\n" for r in out))


if __name__ == "__main__":
    main()
