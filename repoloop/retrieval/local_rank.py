"""Personalized PageRank near the seeds, read from SQLite on demand (no whole-graph load).

A one-shot query (the CLI) cannot afford to read every edge into memory: on the standard library
that is 225k edges and several seconds, for a ranking whose mass sits within a few hops of the
seeds anyway. This computes the same personalized PageRank as `repoloop.retrieval.graph.pagerank`
(same edge weights, same dangling rule: a node without out-edges sends its mass back to the
seeds) with the forward-push method: residual mass is pushed from a node to its out-neighbours
until every residual is below `eps`; only pushed nodes' out-edges are fetched, through the
`edges_src`/`edges_dst` indexes, a frontier at a time. The estimate is within `eps` per pushed
node of the exact ranking, so the top of the ranking — what search uses — is the same.

Adjacency read once stays in a `LocalRanker`'s cache, so a long-running process gets faster per
query without ever loading the nodes no query reaches. Light on purpose: no numpy, no scipy.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Mapping

# How much importance each edge kind passes on (times the edge's own confidence weight).
# `contains` also gets a reverse edge (symbol -> its container), so a file whose functions are
# used everywhere ranks high, and symbols of important files rank above those of unused ones.
# Defined here, not in repoloop.retrieval.graph (which imports these): that module pulls numpy/scipy.
RANK_WEIGHTS = {"imports": 1.0, "calls": 1.0, "inherits": 1.0, "references": 0.5, "contains": 1.0}
CONTAINED_IN_WEIGHT = 1.0
ALPHA = 0.85
_SQL_BATCH = 500

Adjacency = tuple[tuple[tuple[str, float], ...], float]  # ((neighbour, transition prob), ...), out weight


class LocalRanker:
    """Forward-push personalized PageRank over the `edges` table, with an adjacency cache."""

    def __init__(self, conn: sqlite3.Connection, *, max_nodes: int = 20000) -> None:
        self.conn = conn
        self.max_nodes = max_nodes  # bound on nodes whose edges are read per query
        self._adj: dict[str, Adjacency] = {}
        self._exists: dict[str, bool] = {}

    def _fetch(self, nodes: list[str]) -> None:
        """Read the out-edges of `nodes` (forward edges, and container links of contained nodes)."""
        agg: dict[str, dict[str, float]] = {n: defaultdict(float) for n in nodes}
        for i in range(0, len(nodes), _SQL_BATCH):
            part = nodes[i:i + _SQL_BATCH]
            q = ",".join("?" * len(part))
            for s, d, kind, w in self.conn.execute(
                    f"SELECT src, dst, kind, weight FROM edges WHERE src IN ({q})", part):
                rw = RANK_WEIGHTS.get(kind, 0.0) * w
                if rw > 0 and s != d:
                    agg[s][d] += rw
            for s, d, w in self.conn.execute(
                    f"SELECT src, dst, weight FROM edges WHERE dst IN ({q}) AND kind='contains'", part):
                agg[d][s] += CONTAINED_IN_WEIGHT * w
        for n, out in agg.items():
            total = sum(out.values())
            self._adj[n] = (tuple((d, w / total) for d, w in out.items()), total) if total > 0 else ((), 0.0)

    def _in_graph(self, nodes: list[str]) -> list[str]:
        """The nodes that are in the graph (an end of some edge)."""
        todo = [n for n in nodes if n not in self._exists]
        self._fetch([n for n in todo if n not in self._adj])
        for n in todo:
            if self._adj[n][0]:
                self._exists[n] = True
            else:
                self._exists[n] = self.conn.execute("SELECT 1 FROM edges WHERE dst=? LIMIT 1", (n,)).fetchone() is not None
        return [n for n in nodes if self._exists[n]]

    def rank(self, personalization: Mapping[str, float], *, alpha: float = ALPHA, eps: float = 1e-4
             ) -> dict[str, float]:
        """Approximate personalized PageRank: {node: score} for the nodes reached; {} if no seed
        is in the graph. Scores sum to at most 1 (the rest is residual below `eps` per node)."""
        seeds = {k: v for k, v in personalization.items() if v > 0}
        known = set(self._in_graph(list(seeds)))
        seeds = {k: v for k, v in seeds.items() if k in known}
        total = sum(seeds.values())
        if total <= 0:
            return {}
        p = {k: v / total for k, v in seeds.items()}
        x: dict[str, float] = defaultdict(float)
        r: dict[str, float] = defaultdict(float, p)
        fetched = 0
        while True:
            frontier = [u for u, m in r.items() if m > eps]
            if not frontier:
                break
            missing = [u for u in frontier if u not in self._adj]
            if missing:
                if fetched + len(missing) > self.max_nodes:  # bounded work on a huge hub
                    missing = missing[: max(0, self.max_nodes - fetched)]
                    if not missing:
                        break
                    allowed = set(missing)
                    frontier = [u for u in frontier if u in self._adj or u in allowed]
                self._fetch(missing)
                fetched += len(missing)
            for u in frontier:
                m = r.pop(u)
                x[u] += (1 - alpha) * m
                out, _w = self._adj[u]
                spread = alpha * m
                if out:
                    for v, t in out:
                        r[v] += spread * t
                else:  # dangling: back to the seeds, as networkx does
                    for s, ps in p.items():
                        r[s] += spread * ps
        return dict(x)


def local_pagerank(conn: sqlite3.Connection, personalization: Mapping[str, float], *, alpha: float = ALPHA,
                   eps: float = 1e-4) -> dict[str, float]:
    """One-shot convenience: a fresh `LocalRanker` (no cache kept)."""
    return LocalRanker(conn).rank(personalization, alpha=alpha, eps=eps)
