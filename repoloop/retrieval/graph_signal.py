"""The graph signal: candidates ranked by personalized PageRank seeded with the other signals' hits.

Why its own stage: it runs after the lexical signals (their top hits are its seeds) and adds the
chunks of the best-ranked symbols none of them found; the ranking itself is `GraphRanker`'s.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections.abc import Callable

from repoloop.retrieval.fusion import Ranked
from repoloop.retrieval.rows import ChunkRow, chunk_rows
from repoloop.retrieval.weights import Weights


def graph_signal(lists: list[Ranked], rows: dict[int, ChunkRow], limit: int, weights: Weights,
                 rank: Callable[[dict[str, float]], dict[str, float]], conn: sqlite3.Connection) -> Ranked:
    """Rank candidates (and the chunks of the best-ranked other symbols, added to `rows`) by
    personalized PageRank seeded with every signal's top hits."""
    seeds: dict[str, float] = {}
    n = weights.graph_seeds
    for r in lists:
        for pos, cid in enumerate(r.ids[:n], start=1):
            row = rows.get(cid)
            if row is None:
                continue
            node = f"s:{row.symbol}" if row.symbol else f"f:{row.path}"
            strength = min(1.0, r.scores[pos - 1]) if r.scaled else 1.0
            w = weights.signal.get(r.signal, 1.0) * strength / pos
            seeds[node] = seeds.get(node, 0.0) + w
    pr = rank(seeds)
    if not pr:
        return Ranked("graph", [], [])
    # A seed's PageRank includes its own teleport mass, (1 - alpha) * its seed share: remove it
    # (times graph_self_discount), so the graph ranks what the *other* hits point at instead of
    # echoing the seed weights back.
    total = sum(seeds.values()) or 1.0
    cut = weights.graph_self_discount * (1 - weights.graph_alpha)
    pr = {**pr, **{node: max(0.0, pr.get(node, 0.0) - cut * w / total) for node, w in seeds.items()}}
    known = {row.symbol for row in rows.values() if row.symbol}
    extra = heapq.nlargest(weights.graph_seeds + len(known),
                           ((v, node[2:]) for node, v in pr.items() if node[:2] == "s:"))
    extra = [(v, q) for v, q in extra if q not in known][: weights.graph_seeds]
    found: list[int] = []
    for _, qual in extra:
        got = conn.execute(
            "SELECT c.id, f.path, c.start_line, c.end_line, c.symbol FROM symbols s JOIN files f"
            " ON f.id=s.file_id JOIN chunks c ON c.file_id=s.file_id AND c.start_line<=s.start_line"
            " AND c.end_line>=s.start_line WHERE s.qualname=? LIMIT 1", (qual,)).fetchone()
        if got and got[0] not in rows:
            found.append(got[0])
    rows.update(chunk_rows(conn, found))
    scored = []
    for cid, row in rows.items():
        # The symbol's own rank; its file's rank only breaks ties (and scores module-level code).
        s = (pr.get(f"s:{row.symbol}", 0.0) if row.symbol else 0.0) + 0.1 * pr.get(f"f:{row.path}", 0.0)
        if s > 0:
            scored.append((s, cid))
    scored.sort(key=lambda x: (-x[0], x[1]))
    scored = scored[:limit]
    return Ranked("graph", [c for _, c in scored], [s for s, _ in scored])
