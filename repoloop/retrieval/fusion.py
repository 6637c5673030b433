"""Weighted reciprocal-rank fusion of ranked lists of chunk ids, and file-level aggregation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from repoloop.retrieval.weights import Weights


@dataclass(slots=True)
class Ranked:
    """One signal's answer: chunk ids best first, with the signal's own scores."""

    signal: str
    ids: list[int]
    scores: list[float]
    scaled: bool = False  # scores are evidence strengths in (0, 1]: they scale each contribution
    focus: dict[int, str] = field(default_factory=dict)  # chunk id -> the inner symbol the evidence names


@dataclass(slots=True)
class Fused:
    chunk_id: int
    score: float
    signals: dict[str, dict[str, float]] = field(default_factory=dict)  # signal -> {"rank", "score"}


def rrf(lists: Sequence[Ranked], weights: Weights, *, boosts: Mapping[int, float] | None = None) -> list[Fused]:
    """Fuse ranked lists: each id scores sum(w / (k + rank)); boosts multiply the result.
    The score is normalised so that rank 1 in every active signal scores 1.0."""
    k = weights.rrf_k
    active = [r for r in lists if r.ids]
    norm = sum(weights.signal.get(r.signal, 1.0) for r in active) / (k + 1) or 1.0
    out: dict[int, Fused] = {}
    for r in active:
        w = weights.signal.get(r.signal, 1.0)
        rank, prev = 0, None
        for pos, (cid, s) in enumerate(zip(r.ids, r.scores, strict=True), start=1):
            if s != prev:  # ties share a rank (competition ranking)
                rank, prev = pos, s
            f = out.get(cid)
            if f is None:
                f = out[cid] = Fused(cid, 0.0)
            if r.signal in f.signals:
                continue  # an id listed twice by one signal counts once, at its best rank
            f.score += w * (min(1.0, max(0.0, s)) if r.scaled else 1.0) / (k + rank)
            f.signals[r.signal] = {"rank": rank, "score": round(float(s), 6)}
    for f in out.values():
        f.score = f.score / norm * (boosts.get(f.chunk_id, 1.0) if boosts else 1.0)
    return sorted(out.values(), key=lambda f: (-f.score, f.chunk_id))


def rank_files(hits: Sequence[tuple[str, float]], *, decay: float = 0.5) -> list[tuple[str, float]]:
    """File-level ranking from chunk hits (path, score), best first: the best chunk's score plus a
    decaying share of the file's other chunks, so one strong match beats many weak ones."""
    per: dict[str, list[float]] = {}
    for path, score in hits:
        per.setdefault(path, []).append(score)
    ranked = []
    for path, scores in per.items():
        scores.sort(reverse=True)
        total = sum(s * decay**i for i, s in enumerate(scores))
        ranked.append((path, scores[0] + 0.1 * (total - scores[0])))
    return sorted(ranked, key=lambda x: (-x[1], x[0]))
