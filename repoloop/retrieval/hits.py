"""Search hits from the fused chunk ranking: neighbouring chunks of one definition become one hit.

Why: a long function is indexed as several chunks (each later part starts with the signature line
again), and a query about it often ranks two or three of them in a row. Shown apart they repeat the
signature and take the places of other definitions. A chunk that touches or overlaps a hit of the
same file and the same symbol is folded into it: the span widens, the lines are joined, the best
chunk's score, kind and signals stay. Files and definitions keep the order of their first appearance
in the ranking, so this only frees places for what came next (file metrics and SymAcc cannot drop).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from repoloop.retrieval.api import SearchHit
from repoloop.retrieval.fusion import Fused
from repoloop.retrieval.rows import ChunkRow

MAX_LINES = 150  # a hit stays a readable unit: the parts of a longer definition are shown apart


@dataclass(slots=True, eq=False)
class _Draft:
    path: str
    start: int
    end: int
    symbol: str | None
    kind: str
    score: float
    signals: dict
    lines: dict[int, str] = field(default_factory=dict)  # line number -> text
    prefix: str | None = None  # the signature line a continuation chunk starts with (of `start`'s chunk)
    raw: str | None = None  # a text that is not the span's lines: shown as is, never joined

    @classmethod
    def of(cls, f: Fused, row: ChunkRow) -> _Draft:
        d = cls(row.path, row.start_line, row.end_line, row.symbol, row.kind, f.score, f.signals)
        try:
            d._add_text(row.start_line, row.end_line, row.text)
        except ValueError:
            d.raw = row.text
        return d

    def _add_text(self, start: int, end: int, text: str) -> None:
        parts = text.split("\n")
        n = end - start + 1
        if n < 1 or len(parts) not in (n, n + 1):  # not the file's lines: cannot be joined
            raise ValueError("chunk text is not its lines")
        body = parts[-n:]
        for i, line in enumerate(body):
            self.lines.setdefault(start + i, line)
        if len(parts) == n + 1 and start <= self.start:
            self.prefix = parts[0]

    def touches(self, path: str, symbol: str | None, start: int, end: int) -> bool:
        return (symbol is not None and self.raw is None and path == self.path and symbol == self.symbol
                and start <= self.end + 1 and end >= self.start - 1
                and max(self.end, end) - min(self.start, start) < MAX_LINES)

    def absorb(self, start: int, end: int, text: str) -> bool:
        """Fold another chunk's lines in; False (nothing changed) if its text cannot be joined."""
        saved = (self.start, self.prefix, dict(self.lines))
        try:
            if start < self.start:
                self.prefix = None
            self.start = min(self.start, start)
            self._add_text(start, end, text)
        except ValueError:
            self.start, self.prefix, self.lines = saved
            return False
        self.end = max(self.end, end)
        return True

    def hit(self, explain: bool) -> SearchHit:
        body = [self.lines.get(i, "") for i in range(self.start, self.end + 1)]
        text = self.raw if self.raw is not None else "\n".join(([self.prefix] if self.prefix is not None else []) + body)
        return SearchHit(self.path, self.start, self.end, self.symbol, self.kind, self.score, text,
                         signals=self.signals if explain else {})


def take_hits(ranked: Iterable[tuple[Fused, ChunkRow]], k: int, *, head: int, cap: int,
              explain: bool = False, merge: bool = True) -> list[SearchHit]:
    """The first k hits of a fused ranking (best first). The first `head` chunks are taken as they
    come; after them at most `cap` hits of one file until every file had its turn (0: no cap), the
    capped ones following (see Weights.per_file): the cap reorders and never drops results.
    `merge=False` keeps every chunk a hit of its own (the context packer merges spans itself, and
    fits them into its budget one chunk at a time)."""
    first: list[_Draft] = []
    rest: list[_Draft] = []
    per: Counter[str] = Counter()
    for seen, (f, row) in enumerate(ranked, start=1):
        if merge and _fold(first, rest, row.path, row.symbol, row.start_line, row.end_line, row.text):
            continue
        per[row.path] += 1
        (first if seen <= head or not cap or per[row.path] <= cap else rest).append(_Draft.of(f, row))
        if len(first) == k:
            break
    return [d.hit(explain) for d in (first + rest)[:k]]


def _fold(first: list[_Draft], rest: list[_Draft], path: str, symbol: str | None, start: int, end: int,
          text: str) -> bool:
    """Fold a chunk into the hit of its definition it touches (then that hit into any other one it
    now touches, which leaves its list); False if there is none."""
    drafts = first + rest
    into = next((d for d in drafts if d.touches(path, symbol, start, end)), None)
    if into is None or not into.absorb(start, end, text):
        return False
    for other in drafts:
        if other is not into and other.touches(into.path, into.symbol, into.start, into.end):
            if into.absorb(other.start, other.end, other.hit(False).text):
                (first if any(d is other for d in first) else rest).remove(other)
    return True
