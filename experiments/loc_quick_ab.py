"""Quick in-process A/B of retrieval weight variants on both dev sets (lexical signals).

    .venv/bin/python experiments/loc_quick_ab.py swe WORK --bench BENCH [--per-repo 16]   # SWE-bench dev
    .venv/bin/python experiments/loc_quick_ab.py dev WORK --bench BENCH                   # dev.jsonl, query_subject

Reuses the checkouts and indexes `benchmarks/localization.py` leaves under its BENCH_WORK (WORK here;
BENCH holds dev.jsonl and swebench_verified_dev.jsonl): for `swe`, each
repository's tree sits at the LAST base commit it was moved to (not each instance's own), so the
figures compare variants with each other only; `localization.py` gives the absolute ones. Scoring
as the two READMEs: file Acc@k (LocAgent's, non-test .py candidates for SWE), MRR, SymAcc@10 (dev).
Edit VARIANTS for an experiment.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
from pathlib import Path

from repoloop.retrieval.api import RetrievalOptions
from repoloop.retrieval.retriever import open_retriever
from repoloop.retrieval.weights import Weights

SIGNALS = "bm25,file,name,graph,trace"


def with_signals(**weights: float) -> Weights:
    w = Weights()
    return dataclasses.replace(w, signal={**w.signal, **weights})


VARIANTS = {"default": Weights()}


def _candidate(path: str) -> bool:
    parts = path.split("/")
    name = parts[-1]
    return (name.endswith(".py") and not any(p in ("test", "tests", "testing") for p in parts[:-1])
            and not (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"))


def _acc(files: list[str], gold: set[str], k: int) -> bool:
    return len(gold & set(files[:k])) >= min(k, len(gold))


def swe(data: Path, bench: Path, per_repo: int) -> None:
    recs = [json.loads(line) for line in open(bench / "swebench_verified_dev.jsonl")]
    by_repo: dict[str, list[dict]] = collections.defaultdict(list)
    for r in recs:
        by_repo[r["repo"]].append(r)
    rows: dict[str, list[tuple]] = {v: [] for v in VARIANTS}
    trees = data / "swe-lex-trees"
    for repo, rs in sorted(by_repo.items()):
        d = repo.replace("/", "__")
        for name, w in VARIANTS.items():
            ret = open_retriever(trees / d, trees / f"{d}.repoloop", RetrievalOptions(lexical_only=True, weights=w))
            for rec in sorted(rs, key=lambda r: r["id"])[:per_repo]:
                gold = {g for g in rec["gold_files"] if _candidate(g)}
                if not gold:
                    continue
                hits = ret.search(rec["query"], 20, signals=SIGNALS)
                files = [f for f in dict.fromkeys(h.path for h in hits) if _candidate(f)]
                rank = next((i + 1 for i, f in enumerate(files) if f in gold), None)
                rows[name].append((_acc(files, gold, 1), _acc(files, gold, 5), _acc(files, gold, 10),
                                   1 / rank if rank else 0.0))
            ret.close()
    for name, xs in rows.items():
        n = len(xs)
        print(f"{name}: n={n} acc@1 {100 * sum(x[0] for x in xs) / n:.1f} acc@5 {100 * sum(x[1] for x in xs) / n:.1f}"
              f" acc@10 {100 * sum(x[2] for x in xs) / n:.1f} mrr {sum(x[3] for x in xs) / n:.3f}")


def dev(data: Path, bench: Path) -> None:
    recs = [json.loads(line) for line in open(bench / "dev.jsonl")]
    for name, w in VARIANTS.items():
        a1 = mrr = sym = nsym = 0.0
        for repo in sorted({r["repo"] for r in recs}):
            d = repo.replace("/", "__")
            ret = open_retriever(data / "dev" / d, data / "dev" / f"{d}.repoloop",
                                 RetrievalOptions(lexical_only=True, weights=w))
            for rec in (r for r in recs if r["repo"] == repo):
                hits = ret.search(rec["query_subject"], 20, signals=SIGNALS)
                files = list(dict.fromkeys(h.path for h in hits))
                gold = set(rec["gold_files"])
                rank = next((i + 1 for i, f in enumerate(files) if f in gold), None)
                a1 += rank == 1
                mrr += 1 / rank if rank else 0.0
                if rec["gold_symbols"]:
                    nsym += 1
                    last = {g.split(".")[-1] for g in rec["gold_symbols"]}
                    sym += any(h.path in gold and h.symbol and h.symbol.replace("::", ".").split(".")[-1] in last
                               for h in hits[:10])
            ret.close()
        n = len(recs)
        print(f"{name}: n={n} acc@1 {100 * a1 / n:.1f} mrr {mrr / n:.3f} symacc@10 {100 * sym / nsym:.1f} (n={nsym:.0f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set", choices=("swe", "dev"))
    ap.add_argument("work", type=Path, help="localization.py's BENCH_WORK (swe-lex-trees/, dev/)")
    ap.add_argument("--bench", type=Path, required=True, help="the directory of dev.jsonl and swebench_verified_dev.jsonl")
    ap.add_argument("--per-repo", type=int, default=16)
    args = ap.parse_args()
    swe(args.work, args.bench, args.per_repo) if args.set == "swe" else dev(args.work, args.bench)


if __name__ == "__main__":
    main()
