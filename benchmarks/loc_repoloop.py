"""repoloop as a localization system: incremental index + search per signal set, in-process or via the CLI.

In-process calls (`index_repo`, `HybridRetriever.search`) give the metrics cheaply; `cli_search`
runs the real `repoloop search ... --json` command (the contract) for the latency sample and checks
it agrees with the in-process answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# benchmark system name -> repoloop --signals value (None: the default, every signal)
SIGNALS: dict[str, str | None] = {
    "bm25": "bm25",
    "dense": "dense",
    "name": "name",
    "graph": "graph",
    "trace": "trace",
    "fused-lex": "bm25,name,graph,trace",
    "fused": None,
}
REPOLOOP = Path(sys.executable).with_name("repoloop")


def index_dir(root: Path) -> Path:
    """Indexes live beside the checkout, never inside it (tree moves and archives leave them alone)."""
    return root.parent / (root.name + ".repoloop")


class RepoloopRunner:
    def __init__(self, systems: list[str], weights=None) -> None:  # noqa: ANN001 - Weights, lazily imported
        self.systems = systems
        self.weights = weights
        self._open: dict[Path, object] = {}

    def index(self, root: Path, *, embed: bool) -> dict:
        from repoloop.indexer.pipeline import index_repo

        self.forget(root)
        # jobs=1 (parse in-process) by default: parser worker processes import the code on disk,
        # which other engineers edit while a long benchmark runs (a mismatch hangs the pool).
        jobs = int(os.environ.get("BENCH_JOBS", "1"))
        rep = index_repo(root, index_dir(root), embed=embed, progress=False, jobs=jobs)
        return {"files": rep.files_seen, "parsed": rep.files_indexed, "chunks": rep.chunks,
                "symbols": rep.symbols, "edges": rep.edges, "embedded": rep.embedded,
                "seconds": {k: round(v, 2) for k, v in rep.seconds.items()}}

    def retriever(self, root: Path):  # noqa: ANN201
        r = self._open.get(root)
        if r is None:
            from repoloop.retrieval.retriever import HybridRetriever

            lexical = not any(s.split("@")[0] in ("dense", "fused") for s in self.systems)
            r = HybridRetriever.open(root, index_dir(root), lexical_only=lexical, weights=self.weights)
            self._open[root] = r
        return r

    def search(self, root: Path, query: str, system: str, k: int = 20) -> tuple[list[dict] | None, float]:
        """Results as the CLI's JSON would list them, and the seconds the call took (None on error).
        `system@variant` searches with the weight variant of benchmarks/loc_grid.py."""
        r = self.retriever(root)
        base, _, variant = system.partition("@")
        _set_weights(r, self._variant(variant) if variant else self.weights)
        t0 = time.perf_counter()
        try:
            hits = r.search(query, k, signals=SIGNALS[base])
        except Exception as e:  # noqa: BLE001 - a failing query is scored as a miss and an error
            print(f"search error ({system}): {type(e).__name__}: {e}", file=sys.stderr)
            return None, time.perf_counter() - t0
        dt = time.perf_counter() - t0
        return [{"path": h.path, "symbol": h.symbol, "start_line": h.start_line, "end_line": h.end_line,
                 "score": h.score} for h in hits], dt

    def _variant(self, name: str):  # noqa: ANN202
        from loc_grid import make_weights

        return make_weights(name)

    def forget(self, root: Path) -> None:
        r = self._open.pop(root, None)
        if r is not None:
            r.close()


def _set_weights(r: object, w: object) -> None:
    """Swap the weights of an open retriever and its parts (cheaper than re-opening per variant)."""
    if w is None:
        from repoloop.retrieval.weights import DEFAULT

        w = DEFAULT
    for obj in (r, *vars(r).values()) if hasattr(r, "__dict__") else (r,):
        if hasattr(obj, "weights"):
            try:
                obj.weights = w
            except AttributeError:
                pass


def cli_search(root: Path, query: str, system: str, k: int = 20, timeout: float = 120
               ) -> tuple[list[dict] | None, float]:
    """One real `repoloop search` call: (results or None on error/timeout/bad JSON, wall seconds)."""
    cmd = [str(REPOLOOP), "search", query, "--repo", str(root), "--index-dir", str(index_dir(root)),
           "-k", str(k), "--json"]
    if SIGNALS[system]:
        cmd += ["--signals", SIGNALS[system]]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - t0
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        print(f"cli error rc={p.returncode}: {p.stderr.strip()[-300:]}", file=sys.stderr)
        return None, dt
    try:
        data = json.loads(p.stdout)
    except json.JSONDecodeError:
        return None, dt
    return (data["results"] if isinstance(data, dict) else data), dt
