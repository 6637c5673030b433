"""Experiment: the shipped chunk-level dense signal, computed only for fused-lex's top files.

Why: embedding every chunk of a SWE-bench snapshot is CPU-infeasible here, but a query only needs
the chunks of the files it will rank. Embedding the chunks of fused-lex's top 10 files (the same
text, model and 128 word pieces as `repoloop index`; a chunk embedded once across snapshots) and
re-ranking those files by their best chunk's similarity to the issue text measures what the dense
signal adds where the lexical signals already found the candidates. Its ceiling is fused-lex's
Acc@10 (nothing outside the top 10 can come in). If it lifts Acc@5 towards that ceiling, lazy
embedding of candidates at query time is the way to have dense retrieval on repos too big to embed.

    python experiments/loc_rerank_dense.py --snapshots /work/benchdata/swe-lex \
        --lex /work/benchdata/res-e/swe-snap-e_fused-lex.jsonl --cache /work/benchdata/rerank.npz
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # loc_filedense, beside this one
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the localization harness
import loc_metrics as M  # noqa: E402
from loc_filedense import Cache, embed_missing, finish, inputs, key, parser, rrf  # noqa: E402


def chunk_texts(db: Path, paths: list[str]) -> dict[str, list[str]]:
    """File -> the texts `repoloop index` embeds for its chunks."""
    from repoloop.indexer.embed.phase import embed_text

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out: dict[str, list[str]] = {p: [] for p in paths}
        q = ",".join("?" * len(paths))
        for path, module, text, symbol in conn.execute(
                "SELECT f.path, f.module, c.text, c.symbol FROM chunks c JOIN files f ON f.id=c.file_id"
                f" WHERE f.path IN ({q}) ORDER BY f.path, c.start_line", paths):
            out[path].append(embed_text(text, symbol, module))
    finally:
        conn.close()
    return out


def export(db: Path, model: str, cache: Cache, texts: list[str]) -> None:
    """Copy cached vectors into the product's vector cache (the same model and text: the same
    vectors), so that a product run over the same candidates embeds only what is new."""
    from repoloop.indexer.embed.phase import embed_key
    from repoloop.indexer.embed.query_time_cache import VectorCache

    vc = VectorCache(db, model)
    vc.put({embed_key(t): cache.vecs[key(t)] for t in texts if key(t) in cache.vecs})
    vc.close()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--export", type=Path, default=None, metavar="DB",
                   help="also copy the cached vectors of the chunks seen into this product vector cache "
                        "(repoloop.indexer.embed.query_time_cache, keyed as the product keys them) and stop")
    a = p.parse_args()

    from repoloop.indexer.embed.embedders import SentenceTransformerEmbedder

    recs, lex_rows = inputs(a)
    emb = SentenceTransformerEmbedder(batch_size=64)  # the shipped default: 128 word pieces
    cache = Cache(a.cache)
    weights = [float(w) for w in a.weights.split(",")]
    systems = ["fused-lex", "dense-rerank"] + [f"fused-lex+dense-rerank@{w:g}" for w in weights]
    rows: dict[str, list[dict]] = {s: [] for s in systems}
    t_embed, n_embedded, t0 = 0.0, 0, time.time()
    for i, lr in enumerate(lex_rows):
        rec = recs[lr["id"]]
        lex = list(lr["top"])
        texts = chunk_texts(a.snapshots / lr["id"] / "index" / "index.db", lex) if lex else {}
        if a.export:
            export(a.export, emb.name, cache, [t for ts in texts.values() for t in ts])
            continue
        added, secs = embed_missing(emb, cache, (t for ts in texts.values() for t in ts))
        n_embedded, t_embed = n_embedded + added, t_embed + secs
        if added and i % 10 == 0:
            cache.save()
        q = np.asarray(emb.embed([rec["query"]])[0], dtype=np.float32)
        best = {p: max((float(cache.vecs[key(t)] @ q) for t in ts), default=-1.0) for p, ts in texts.items()}
        dense = sorted(lex, key=lambda p: -best.get(p, -1.0))
        for s, ranked in (("fused-lex", lex), ("dense-rerank", dense),
                          *((f"fused-lex+dense-rerank@{w:g}", rrf([(lex, 1.0), (dense, w)])) for w in weights)):
            rows[s].append(M.score_swe(rec, [{"path": p} for p in ranked]))
        print(f"[{time.strftime('%H:%M:%S')}] {i + 1}/{len(lex_rows)} {lr['id']} chunks={sum(map(len, texts.values()))} "
              f"embedded={added} (total {n_embedded} in {t_embed:.0f}s)", flush=True)
    if not a.export:
        finish(a, rows, cache, "chunks", n_embedded, t_embed, t0)


if __name__ == "__main__":
    main()
