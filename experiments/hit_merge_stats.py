"""How often a top-10 search answer repeats a definition, with and without folding touching chunks
of one definition into one hit (repoloop.retrieval.hits). dev.jsonl's `query_subject` queries, on
the lexical indexes that `localization.py dev --no-embed` built under BENCH_WORK:

    .venv/bin/python experiments/hit_merge_stats.py BENCH_WORK/dev

Prints per query (means): distinct definitions, distinct files and lines shown in the top 10, and
the number of queries whose top 10 names one definition twice.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # materialize

from materialize import BENCH_DIR, checkout_name  # noqa: E402

from repoloop.retrieval.api import RetrievalOptions  # noqa: E402
from repoloop.retrieval.retriever import open_retriever  # noqa: E402


def main(base: Path, k: int = 10) -> None:
    records = [json.loads(line) for line in (BENCH_DIR / "dev.jsonl").read_text().splitlines() if line.strip()]
    totals: Counter[tuple[bool, str]] = Counter()
    n = 0
    for name in sorted({checkout_name(r["repo"]) for r in records}):
        with open_retriever(base / name, base / f"{name}.repoloop", RetrievalOptions(lexical_only=True)) as r:
            for rec in (x for x in records if checkout_name(x["repo"]) == name):
                n += 1
                for merge in (False, True):
                    hits = r.search(rec["query_subject"], k, merge=merge)
                    defs = [(h.path, h.symbol) for h in hits if h.symbol]
                    totals[merge, "queries repeating a definition"] += len(defs) > len(set(defs))
                    totals[merge, "distinct definitions"] += len(set(defs))
                    totals[merge, "distinct files"] += len({h.path for h in hits})
                    totals[merge, "lines shown"] += sum(h.end_line - h.start_line + 1 for h in hits)
    print(f"{n} queries, top {k}")
    print("| | chunks as hits | merged hits |\n|---|---|---|")
    for what in ("distinct definitions", "distinct files", "lines shown", "queries repeating a definition"):
        per = (lambda v: str(v)) if what.startswith("queries") else (lambda v: f"{v / n:.2f}")
        print(f"| {what} | {per(totals[False, what])} | {per(totals[True, what])} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
