"""Scoring for the two localization datasets, exactly as their READMEs define it.

A system's answer to one query is a ranked list of result dicts (`path`, optional `symbol`,
`start_line`, `end_line`), best first. None means the command failed (counts as a miss and an error).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from pathlib import PurePosixPath

TEST_DIRS = {"test", "tests", "testing"}
_LAST = re.compile(r"\.|::")


def is_swe_candidate(path: str) -> bool:
    """SWEBENCH_DEV.md: only non-test .py files are candidates."""
    p = PurePosixPath(path)
    if p.suffix != ".py":
        return False
    if any(part in TEST_DIRS for part in p.parts[:-1]):
        return False
    name = p.name
    return not (name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py")


def unique_files(results: Iterable[dict], keep=lambda p: True) -> list[str]:
    """Results collapsed to unique files in rank order."""
    seen: dict[str, None] = {}
    for r in results:
        p = r.get("path")
        if p and p not in seen and keep(p):
            seen[p] = None
    return list(seen)


def _last(sym: str | None, n: int) -> str | None:
    if not sym:
        return None
    parts = sym.split(".")
    return ".".join(parts[-n:]) if len(parts) >= n else None


def score_swe(rec: dict, results: list[dict] | None) -> dict:
    """Acc@k (LocAgent), hit@5, MRR, Func@10 for one SWE-bench instance."""
    gold = [g for g in rec["gold_files"] if is_swe_candidate(g)]
    has_syms = bool(rec.get("gold_symbols"))
    row: dict = {"id": rec["id"], "repo": rec["repo"], "error": results is None}
    files = unique_files(results or [], is_swe_candidate)
    gset = set(gold)
    for k in (1, 3, 5, 10):
        need = min(k, len(gset))
        row[f"acc@{k}"] = float(need > 0 and len(gset & set(files[:k])) >= need)
    row["hit@5"] = float(bool(gset & set(files[:5])))
    row["mrr"] = next((1.0 / (i + 1) for i, f in enumerate(files) if f in gset), 0.0)
    if has_syms:
        pairs: list[tuple[str, str | None]] = []
        for r in results or []:
            key = (r.get("path"), r.get("symbol") or r.get("name"))
            if key not in pairs:
                pairs.append(key)
            if len(pairs) == 10:
                break
        ok = True
        for path, names in rec["gold_spans"].items():
            for g in names:
                n = g.count(".") + 1
                if not any(p == path and _last(s, n) == g for p, s in pairs):
                    ok = False
        row["func@10"] = float(ok)
    row["top"] = files[:10]
    return row


def score_dev(rec: dict, results: list[dict] | None) -> dict:
    """Acc@1/3/5/10, Recall@5/10, MRR, SymAcc@10, Loc@10 for one dev.jsonl query (README contract)."""
    gold = set(rec["gold_files"])
    row: dict = {"id": rec["id"], "repo": rec["repo"], "error": results is None}
    res = results or []
    files = unique_files(res)
    for k in (1, 3, 5, 10):
        row[f"acc@{k}"] = float(bool(gold & set(files[:k])))
    for k in (5, 10):
        row[f"recall@{k}"] = len(gold & set(files[:k])) / len(gold)
    row["mrr"] = next((1.0 / (i + 1) for i, f in enumerate(files) if f in gold), 0.0)
    if rec.get("gold_symbols"):
        # "The last component": of a dotted name, or of a Rust/C++ path (`crate::de::visit` -> visit)
        gl = {_LAST.split(s)[-1] for s in rec["gold_symbols"]}
        row["symacc@10"] = float(any(
            r.get("path") in gold and _LAST.split(r.get("symbol") or r.get("name") or "")[-1] in gl
            for r in res[:10]
        ))
        locs = rec.get("gold_symbol_locs") or []
        hit = False
        for r in res[:10]:
            s, e = r.get("start_line"), r.get("end_line")
            if r.get("path") not in gold or s is None or e is None or e - s + 1 >= 200:
                continue
            if any(g["path"] == r["path"] and s <= g["end_line"] and e >= g["start_line"] for g in locs):
                hit = True
                break
        row["loc@10"] = float(hit)
    row["top"] = files[:10]
    return row


SWE_METRICS = ["acc@1", "acc@3", "acc@5", "acc@10", "hit@5", "mrr", "func@10"]
DEV_METRICS = ["acc@1", "acc@3", "acc@5", "acc@10", "recall@5", "recall@10", "mrr", "symacc@10", "loc@10"]


def aggregate(rows: list[dict], metrics: list[str]) -> dict:
    """Means over the rows that define each metric (Func/SymAcc/Loc: instances with gold symbols)."""
    out: dict = {"n": len(rows), "errors": sum(1 for r in rows if r.get("error"))}
    for m in metrics:
        vals = [r[m] for r in rows if m in r]
        out[m] = sum(vals) / len(vals) if vals else None
        out[m + "_n"] = len(vals)
    lat = [r["latency_s"] for r in rows if r.get("latency_s") is not None]
    if lat:
        out["lat_p50_ms"] = 1000 * statistics.median(lat)
        out["lat_p95_ms"] = 1000 * percentile(lat, 95)
    return out


def percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    idx = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[idx]
