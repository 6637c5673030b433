"""The repo map: the most important files with their definitions' signatures, within a token budget.

Like Aider's repo map: symbols are ranked by (personalized) PageRank over the dependency graph;
the top K are shown grouped by file (files in rank order, symbols in line order, indented by
nesting, bodies elided, enclosing classes shown for context), with K the largest that fits the
budget (binary search). Everything comes from the persisted index: nothing is re-parsed.
Token counts use the exact offline tokenizer when available (repoloop.retrieval.tokens_count),
and the final text is re-counted as a whole, so the result is never over the budget.
"""

from __future__ import annotations

import heapq
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from repoloop.indexer.store import IndexStore
from repoloop.retrieval.graph import pagerank, personalization_for
from repoloop.retrieval.tokens_count import TokenCounter, get_counter

SHOWN_KINDS = frozenset({"class", "struct", "interface", "trait", "enum", "impl", "function", "method",
                         "type", "module", "namespace", "macro", "constant"})
MAX_CANDIDATES = 4000  # symbols considered for the map (the top of the ranking)
_PY_COMMENT = re.compile(r"(?<=:)\s*#.*$")
MAX_LINE = 160  # characters per signature line


@dataclass(slots=True)
class _Sym:
    qualname: str
    path: str
    line: int
    depth: int
    text: str
    parent: str | None


@dataclass(slots=True)
class RepoMap:
    text: str
    tokens: int
    budget: int
    files: list[str] = field(default_factory=list)
    unmatched_focus: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"text": self.text, "tokens": self.tokens, "budget": self.budget, "files": self.files,
                "unmatched_focus": self.unmatched_focus}


def render_repo_map(store: IndexStore, budget: int, focus: Sequence[str] = ()) -> str:
    """The map as text (empty when the budget is too small for anything)."""
    return build_repo_map(store, budget, focus).text


def build_repo_map(store: IndexStore, budget: int, focus: Sequence[str] = (),
                   counter: TokenCounter | None = None) -> RepoMap:
    counter = counter or get_counter()
    pers, unmatched = personalization_for(store, focus) if focus else ({}, [])
    if budget <= 0:
        return RepoMap("", 0, budget, [], unmatched)
    ranks = pagerank(store, pers or None)
    syms, by_q, file_rank = _candidates(store, ranks)
    if not syms:
        return RepoMap("", 0, budget, [], unmatched)

    first = _focus_files(store, pers)

    def render(k: int) -> tuple[str, list[str]]:
        return _render(syms[:k], by_q, file_rank, first)

    lo, hi = 0, len(syms)
    best = ("", [])
    while lo < hi:  # the largest K whose rendering fits
        mid = (lo + hi + 1) // 2
        text, files = render(mid)
        if counter.count(text) <= budget:
            lo, best = mid, (text, files)
        else:
            hi = mid - 1
    text, files = best
    lines = text.split("\n")
    while lines and counter.count("\n".join(lines)) > budget:  # belt and braces
        lines.pop()
    text = "\n".join(lines)
    return RepoMap(text, counter.count(text), budget, files, unmatched)


def _candidates(store: IndexStore, ranks: dict[str, float]
                ) -> tuple[list[_Sym], dict[str, _Sym], dict[str, float]]:
    """The top-ranked shown-kind symbols (best first), every fetched symbol by qualname (the top
    ones and their enclosing definitions), and each file's rank (its node's: symbols pass their
    rank on to it through `contains`)."""
    file_rank = {k[2:]: v for k, v in ranks.items() if k.startswith("f:")}
    scored = [(v, k[2:]) for k, v in ranks.items() if k.startswith("s:")]
    top = heapq.nlargest(2 * MAX_CANDIDATES, scored)
    rows = _symbol_rows(store, [q for _, q in top])
    if not rows:  # no graph yet: every symbol, unranked
        rows = store.conn.execute(
            "SELECT s.qualname, s.name, s.kind, s.signature, s.parent, s.start_line, f.path FROM symbols s"
            " JOIN files f ON f.id=s.file_id ORDER BY f.path, s.start_line LIMIT ?", (2 * MAX_CANDIDATES,)
        ).fetchall()
    by_q: dict[str, tuple] = {r[0]: r for r in rows}
    missing = {r[4] for r in rows if r[4] and r[4] not in by_q}
    for _ in range(8):  # enclosing definitions, level by level
        if not missing:
            break
        got = _symbol_rows(store, sorted(missing))
        by_q.update((r[0], r) for r in got if r[0] not in by_q)
        missing = {r[4] for r in got if r[4] and r[4] not in by_q}

    syms: dict[str, _Sym] = {}

    def make(qual: str, depth_guard: int = 0) -> _Sym | None:
        if qual in syms:
            return syms[qual]
        r = by_q.get(qual)
        if r is None or depth_guard > 16:
            return None
        _q, name, kind, sig, parent, line, path = r
        up = make(parent, depth_guard + 1) if parent else None
        depth = up.depth + 1 if up is not None and up.path == path else 0  # nesting within this file
        text = (sig or f"{kind} {name}").strip()
        if text.startswith(("def ", "async def ", "class ")) and "#" in text:
            text = _PY_COMMENT.sub("", text)  # a comment between the header and the body
        if len(text) > MAX_LINE:
            text = text[: MAX_LINE - 1] + "…"
        syms[qual] = _Sym(qual, path, line, depth, text, parent)
        return syms[qual]

    ranked = []
    for r in rows:
        sym = make(r[0])
        if sym is not None and r[2] in SHOWN_KINDS:
            ranked.append((ranks.get(f"s:{r[0]}", 0.0), sym))
    ranked.sort(key=lambda t: (-t[0], t[1].path, t[1].line))
    for q in by_q:
        make(q)
    return [s for _, s in ranked[:MAX_CANDIDATES]], syms, file_rank


def _symbol_rows(store: IndexStore, quals: list[str]) -> list[tuple]:
    out: list[tuple] = []
    for i in range(0, len(quals), 500):
        part = quals[i:i + 500]
        out += [tuple(r) for r in store.conn.execute(
            "SELECT s.qualname, s.name, s.kind, s.signature, s.parent, s.start_line, f.path FROM symbols s"
            f" JOIN files f ON f.id=s.file_id WHERE s.qualname IN ({','.join('?' * len(part))})", part)]
    return out


def _focus_files(store: IndexStore, pers: dict[str, float]) -> set[str]:
    """Files the user named (directly or through one of their symbols): they lead the map."""
    out = {k[2:] for k in pers if k.startswith("f:")}
    quals = [k[2:] for k in pers if k.startswith("s:")][:500]
    if quals:
        out |= {r[0] for r in store.conn.execute(
            "SELECT DISTINCT f.path FROM symbols s JOIN files f ON f.id=s.file_id"
            f" WHERE s.qualname IN ({','.join('?' * len(quals))})", quals)}
    return out


def _render(chosen: list[_Sym], by_q: dict[str, _Sym], file_rank: dict[str, float], first: set[str]
            ) -> tuple[str, list[str]]:
    per_file: dict[str, dict[str, _Sym]] = defaultdict(dict)
    for s in chosen:
        per_file[s.path][s.qualname] = s
        p = s.parent
        while p and p in by_q and by_q[p].path == s.path and p not in per_file[s.path]:
            per_file[s.path][p] = by_q[p]  # enclosing classes give the method its context
            p = by_q[p].parent
    files = sorted(per_file, key=lambda p: (p not in first, -file_rank.get(p, 0.0), p))
    lines: list[str] = []
    for path in files:
        lines.append(f"{path}:")
        for s in sorted(per_file[path].values(), key=lambda s: s.line):
            lines.append(f"{'    ' * s.depth}{s.text}")
    return "\n".join(lines), files
