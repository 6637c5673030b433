"""Experiment: a file-level dense signal (one vector per file) fused with fused-lex's file ranking.

Why: chunk-level embeddings of one SWE-bench snapshot (~2,000 chunks per MB of source, ~100k for
django) take over an hour on this 2-core CPU, so the representative SWE sample cannot be measured
with the shipped dense signal here (RESULTS.md, "SWE-bench dev with embeddings at real base
commits"). One vector per file, made from what names it (its path, its definitions' signatures and
first doc lines), is ~100x fewer texts, and the same file text across snapshots is embedded once.
This measures whether that cheaper signal would lift fused-lex where the chunk-level one did.

Inputs: the lexical snapshots (`localization.py swe --snapshots DIR --no-embed`: an index.db per
instance) and the rows of a `--from-snapshots` run of fused-lex (their `top` files). Output: Acc@k
and MRR (loc_metrics.score_swe) for fused-lex, file-dense alone and weighted RRF fusions, all on
the same instances.

    python experiments/loc_filedense.py --snapshots /work/benchdata/swe-lex \
        --lex /work/benchdata/res-e/swe-snap-e_fused-lex.jsonl --cache /work/benchdata/filedense.npz
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the localization harness
import loc_metrics as M  # noqa: E402

RRF_K = 60.0
MAX_CHARS = 2000  # the model reads 256 word pieces; more text is cut anyway


def file_texts(db: Path) -> dict[str, str]:
    """Candidate file -> its text: path words, then each definition's signature (or qualname) and
    first doc line, in line order."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        paths = {fid: p for fid, p in conn.execute("SELECT id, path FROM files") if M.is_swe_candidate(p)}
        parts: dict[int, list[str]] = {fid: [p.removesuffix(".py").replace("/", " ").replace("_", " ")]
                                       for fid, p in paths.items()}
        for fid, qual, sig, doc in conn.execute(
                "SELECT file_id, qualname, signature, doc FROM symbols ORDER BY file_id, start_line"):
            if fid in parts:
                line = sig or qual
                first = doc.strip().split("\n", 1)[0] if doc else ""
                parts[fid].append(f"{line} {first}".strip())
    finally:
        conn.close()
    return {paths[fid]: "\n".join(ps)[:MAX_CHARS] for fid, ps in parts.items()}


def key(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


class Cache:
    """Text hash -> unit vector, kept in one .npz so that a re-run embeds nothing."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.vecs: dict[str, np.ndarray] = {}
        if path and path.exists():
            z = np.load(path)
            self.vecs = dict(zip(z["keys"].tolist(), z["vecs"], strict=True))

    def save(self) -> None:
        if self.path and self.vecs:
            ks = list(self.vecs)
            np.savez(self.path, keys=np.array(ks), vecs=np.stack([self.vecs[k] for k in ks]))


def embed_missing(emb, cache: Cache, texts: Iterable[str]) -> tuple[int, float]:  # noqa: ANN001 - an Embedder
    """Embed the texts the cache lacks (each once); (how many, seconds)."""
    missing = sorted({key(t): t for t in texts if key(t) not in cache.vecs}.items())
    if not missing:
        return 0, 0.0
    c = time.time()
    vecs = emb.embed([t for _, t in missing])
    cache.vecs.update((k, np.asarray(v, dtype=np.float32)) for (k, _), v in zip(missing, vecs, strict=True))
    return len(missing), time.time() - c


def summarize(rows: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Acc@k and MRR per system, printed and returned."""
    summary = {}
    for s, rs in rows.items():
        n = len(rs)
        summary[s] = {k: round(100 * sum(r[k] for r in rs) / n, 1) for k in ("acc@1", "acc@3", "acc@5", "acc@10")}
        summary[s]["mrr"] = round(sum(r["mrr"] for r in rs) / n, 3)
        print(f"{s:32s} n={n} " + " ".join(f"{k} {v}" for k, v in summary[s].items()))
    return summary


def finish(a: argparse.Namespace, rows: dict[str, list[dict]], cache: Cache, what: str, embedded: int,
           embed_s: float, t0: float, **extra: object) -> None:
    """Save the cache, print the summary and the embedding cost, write --out."""
    cache.save()
    summary = summarize(rows)
    print(f"{what} embedded: {embedded} in {embed_s:.0f} s ({embedded / max(embed_s, 1e-9):.1f}/s); "
          f"wall {time.time() - t0:.0f} s")
    if a.out:
        n = len(next(iter(rows.values())))
        a.out.write_text(json.dumps({"n": n, "summary": summary, "embedded": embedded, "embed_s": embed_s,
                                     **extra, "rows": rows}, indent=1))


def rrf(lists: list[tuple[list[str], float]]) -> list[str]:
    score: dict[str, float] = {}
    for ranked, w in lists:
        if w:
            for i, p in enumerate(ranked):
                score[p] = score.get(p, 0.0) + w / (RRF_K + i + 1)
    return sorted(score, key=lambda p: -score[p])


def parser(doc: str) -> argparse.ArgumentParser:
    """The options both experiments (this and loc_rerank_dense.py) take."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--snapshots", type=Path, required=True)
    ap.add_argument("--bench", type=Path, required=True, help="the SWE-bench records (swebench_verified_dev.jsonl)")
    ap.add_argument("--lex", type=Path, required=True, help="fused-lex rows of a --from-snapshots run")
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--weights", default="0.5,1,2", help="dense weights fused with fused-lex (weight 1)")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    return ap


def inputs(a: argparse.Namespace) -> tuple[dict[str, dict], list[dict]]:
    """(SWE records by id, the fused-lex rows to re-rank, --limit applied)."""
    recs = {r["id"]: r for r in map(json.loads, a.bench.read_text().splitlines())}
    lex_rows = [json.loads(x) for x in a.lex.read_text().splitlines()]
    return recs, lex_rows[: a.limit] if a.limit else lex_rows


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--max-tokens", type=int, default=256)
    a = ap.parse_args()

    from repoloop.indexer.embed.embedders import SentenceTransformerEmbedder

    recs, lex_rows = inputs(a)
    emb = SentenceTransformerEmbedder(max_tokens=a.max_tokens, batch_size=64)
    cache = Cache(a.cache)
    weights = [float(w) for w in a.weights.split(",")]
    systems = ["fused-lex", "file-dense"] + [f"fused-lex+file-dense@{w:g}" for w in weights]
    rows: dict[str, list[dict]] = {s: [] for s in systems}
    t_embed, n_embedded = 0.0, 0
    t0 = time.time()
    for i, lr in enumerate(lex_rows):
        rec = recs[lr["id"]]
        texts = file_texts(a.snapshots / lr["id"] / "index" / "index.db")
        added, secs = embed_missing(emb, cache, texts.values())
        n_embedded, t_embed = n_embedded + added, t_embed + secs
        if added and i % 10 == 0:
            cache.save()
        paths = list(texts)
        mat = np.stack([cache.vecs[key(texts[p])] for p in paths])
        q = np.asarray(emb.embed([rec["query"]])[0], dtype=np.float32)
        dense = [paths[j] for j in np.argsort(-(mat @ q))]
        lex = list(lr["top"])
        for s, ranked in (("fused-lex", lex), ("file-dense", dense[:20]),
                          *((f"fused-lex+file-dense@{w:g}", rrf([(lex, 1.0), (dense[:50], w)])[:20]) for w in weights)):
            rows[s].append(M.score_swe(rec, [{"path": p} for p in ranked]))
        print(f"[{time.strftime('%H:%M:%S')}] {i + 1}/{len(lex_rows)} {lr['id']} files={len(paths)} "
              f"embedded={added} (total {n_embedded} in {t_embed:.0f}s)", flush=True)
    finish(a, rows, cache, "file texts", n_embedded, t_embed, t0, max_tokens=a.max_tokens)


if __name__ == "__main__":
    main()
