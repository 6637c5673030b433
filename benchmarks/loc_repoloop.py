"""repoloop as a localization system: incremental index + search per signal set, in-process or via the CLI.

In-process calls (`index_repo`, `Retriever.search`) give the metrics cheaply; `cli_search`
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repoloop.retrieval.retriever import HybridRetriever

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

# benchmark system name -> repoloop --signals value (None: the default, every signal)
SIGNALS: dict[str, str | None] = {
    "bm25": "bm25",
    "file": "file",
    "dense": "dense",
    "name": "name",
    "graph": "graph",
    "trace": "trace",
    "fused-lex": "bm25,name,graph,trace",  # as measured before the `file` signal existed
    "lex-nofile": "bm25,name,graph,trace",  # fused-lex without `file` (its ablation in snapshot runs)
    "fused": None,
    # every signal plus the dense re-rank with query-time embedding (`--rerank`): on a --no-embed
    # index, the top files' chunks are embedded on demand (REPOLOOP_VECTOR_CACHE shares them)
    "fused-rerank": None,
    # Function-level localization (repoloop.retrieval.locate) over the same fused rankings: files in
    # search's order, each with its likeliest definitions, flattened file-major (Located.results)
    "locate-lex": "bm25,file,name,graph,trace",
    "locate": None,
    "locate-rerank": None,
}


def lexical_signals() -> str:
    """Every signal of the code at hand except dense (`fused-lex` in snapshot runs: the shipped
    lexical path, whatever signals it has by then)."""
    from repoloop.retrieval.weights import SIGNALS as ALL

    return ",".join(s for s in ALL if s != "dense")
REPOLOOP = Path(sys.executable).with_name("repoloop")


def index_dir(root: Path) -> Path:
    """Indexes live beside the checkout, never inside it (tree moves and archives leave them alone)."""
    return root.parent / (root.name + ".repoloop")


class RepoloopRunner:
    def __init__(self, systems: list[str], weights=None) -> None:  # noqa: ANN001 - Weights, lazily imported
        self.systems = systems
        self.weights = weights
        self._open: dict[Path, HybridRetriever] = {}
        self.index_dirs: dict[Path, Path] = {}  # root -> index dir, where not beside the root (snapshots)
        self.embedder = None  # shared by the retrievers of many snapshots (the model loads once)
        self.signals = dict(SIGNALS)  # system -> --signals (snapshot runs: fused-lex = lexical_signals())
        self.locate_weights = None  # a LocateWeights variant (tuning runs); None: the shipped one

    def index_dir(self, root: Path) -> Path:
        return self.index_dirs.get(root) or index_dir(root)

    def index(self, root: Path, *, embed: bool) -> dict:
        from repoloop.indexer.config import EmbedConfig
        from repoloop.indexer.pipeline import index_repo

        self.forget(root)
        # jobs=1 (parse in-process) by default: parser worker processes import the code on disk,
        # which other engineers edit while a long benchmark runs (a mismatch hangs the pool).
        jobs = int(os.environ.get("BENCH_JOBS", "1"))
        rep = index_repo(root, index_dir(root), embed=embed, progress=False, jobs=jobs,
                         embed_config=EmbedConfig.from_env(os.environ))  # the user's REPOLOOP_EMBED_* and cache
        return {"files": rep.files_seen, "parsed": rep.files_indexed, "chunks": rep.chunks,
                "symbols": rep.symbols, "edges": rep.edges, "embedded": rep.embedded,
                "seconds": {k: round(v, 2) for k, v in rep.seconds.items()}}

    def retriever(self, root: Path) -> HybridRetriever:
        r = self._open.get(root)
        if r is None:
            from repoloop.retrieval.api import RetrievalOptions
            from repoloop.retrieval.retriever import open_retriever

            bases = {s.split("@")[0] for s in self.systems}
            lexical = not bases & {"dense", "fused", "fused-rerank", "locate", "locate-rerank"}
            rerank = bool(bases & {"fused-rerank", "locate-rerank"})
            if rerank and self.embedder is None:
                from repoloop.indexer.embed.embedders import embedder_from_config

                # one model for every snapshot's re-rank, as the user's variables configure it
                self.embedder = embedder_from_config(RetrievalOptions.from_env().embed)
            r = open_retriever(root, self.index_dir(root), RetrievalOptions.from_env(
                lexical_only=lexical, weights=self.weights, rerank=rerank), embedder=self.embedder)
            self._open[root] = r
        return r

    def search(self, root: Path, query: str, system: str, k: int = 20) -> tuple[list[dict] | None, float]:
        """Results as the CLI's JSON would list them, and the seconds the call took (None on error).
        `system@variant` searches with the weight variant of benchmarks/loc_grid.py."""
        from repoloop.retrieval.weights import DEFAULT

        r = self.retriever(root)
        base, _, variant = system.partition("@")
        if base.startswith("locate"):  # variants of the locate weights: `locate@text=0.3+caps=3-1`
            r.set_weights(self.weights or DEFAULT)
            return self._locate(r, query, base, k, time.perf_counter(), _locate_variant(variant))
        r.set_weights(self._variant(variant) if variant else self.weights or DEFAULT)
        t0 = time.perf_counter()
        try:
            hits = r.search(query, k, signals=self.signals[base])
        except Exception as e:  # noqa: BLE001 - a failing query is scored as a miss and an error
            print(f"search error ({system}): {type(e).__name__}: {e}", file=sys.stderr)
            return None, time.perf_counter() - t0
        dt = time.perf_counter() - t0
        return [{"path": h.path, "symbol": h.symbol, "start_line": h.start_line, "end_line": h.end_line,
                 "score": h.score} for h in hits], dt

    def _locate(self, r: HybridRetriever, query: str, base: str, k: int, t0: float, lw=None  # noqa: ANN001
                ) -> tuple[list[dict] | None, float]:
        try:
            got = r.locate(query, k, signals=self.signals[base], weights=lw or self.locate_weights)
        except Exception as e:  # noqa: BLE001 - a failing query is scored as a miss and an error
            print(f"locate error ({base}): {type(e).__name__}: {e}", file=sys.stderr)
            return None, time.perf_counter() - t0
        return got.results(), time.perf_counter() - t0

    def _variant(self, name: str):  # noqa: ANN202
        """A loc_grid variant name, or inline overrides `file=1+name=0.6+rrf_k=30` (signal weights
        or Weights fields), both relative to this runner's weights."""
        import dataclasses

        from loc_grid import VARIANTS

        from repoloop.retrieval.weights import DEFAULT

        base = self.weights or DEFAULT
        if "=" in name:
            over: dict = {}
            sig: dict[str, float] = {}
            for item in name.split("+"):
                key, _, val = item.partition("=")
                if key in base.signal:
                    sig[key] = float(val)
                else:
                    over[key] = type(getattr(base, key))(float(val))
            if sig:
                over["signal"] = sig
        else:
            over = dict(VARIANTS[name])
        if "signal" in over:
            over["signal"] = {**base.signal, **over["signal"]}
        return dataclasses.replace(base, **over)

    def forget(self, root: Path) -> None:
        r = self._open.pop(root, None)
        if r is not None:
            r.close()


def _locate_variant(spec: str):  # noqa: ANN202 - LocateWeights or None
    """`text=0.3+caps=3-1+keep=0.4` -> LocateWeights with those fields (caps: dash-separated)."""
    if not spec:
        return None
    import dataclasses

    from repoloop.retrieval.locate import DEFAULT_LOCATE

    over: dict = {}
    for item in spec.split("+"):
        key, _, val = item.partition("=")
        cur = getattr(DEFAULT_LOCATE, key)
        over[key] = tuple(int(x) for x in val.split("-")) if isinstance(cur, tuple) else type(cur)(float(val))
    return dataclasses.replace(DEFAULT_LOCATE, **over)


def cli_search(root: Path, query: str, system: str, k: int = 20, timeout: float = 120,
               idx: Path | None = None, signals: dict[str, str | None] | None = None
               ) -> tuple[list[dict] | None, float]:
    """One real `repoloop search` call: (results or None on error/timeout/bad JSON, wall seconds)."""
    cmd = [str(REPOLOOP), "search", query, "--repo", str(root), "--index-dir", str(idx or index_dir(root)),
           "-k", str(k), "--json"]
    spec = (signals or SIGNALS)[system]
    if spec:
        cmd += ["--signals", spec]
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


def index_stats(root: Path, idx: Path, *, embed: bool) -> dict:
    """Index `root` into `idx` (in this process) and summarise the run for the benchmark's logs."""
    from repoloop.indexer.config import EmbedConfig
    from repoloop.indexer.pipeline import index_repo
    from repoloop.indexer.store import DB_NAME, IndexStore

    jobs = int(os.environ.get("BENCH_JOBS", "1"))
    rep = index_repo(root, idx, embed=embed, progress=False, jobs=jobs, embed_config=EmbedConfig.from_env(os.environ))
    with IndexStore(idx / DB_NAME, readonly=True) as store:
        fp = store.get_meta("parser_fingerprint")
        model = store.get_meta("embed_model")
    return {"files": rep.files_seen, "parsed": rep.files_indexed, "deleted": rep.files_deleted,
            "chunks": rep.chunks, "symbols": rep.symbols, "edges": rep.edges, "embedded": rep.embedded,
            "seconds": {k: round(v, 2) for k, v in rep.seconds.items()}, "parser_fingerprint": fp,
            "embed_model": model}


def main() -> None:
    """`loc_repoloop.py index ROOT IDX [--no-embed]`: one index run in its own process (snapshots
    copy the index after this process closed it); prints the stats as one JSON line."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("cmd", choices=["index"])
    ap.add_argument("root", type=Path)
    ap.add_argument("idx", type=Path)
    ap.add_argument("--no-embed", action="store_true")
    a = ap.parse_args()
    print(json.dumps(index_stats(a.root, a.idx, embed=not a.no_embed)))


if __name__ == "__main__":
    main()
