"""A context pack under a token budget: the best chunks in full, grouped by file in line order,
overlapping spans merged, elisions (`...`) between them; then a signatures-only repo map for what
the budget has left.

The promise is "never over budget": the final text is counted as a whole (BPE counts of parts do
not add up exactly), and anything that does not fit is dropped or trimmed until it does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from repoloop.retrieval.api import ContextItem, ContextPack, SearchHit
from repoloop.retrieval.tokens_count import TokenCounter

MAP_HEADER = "# Repository map (signatures)\n"
MIN_MAP_TOKENS = 24  # below this a map is not worth its header

LineSource = Callable[[str], list[str] | None]  # path -> the file's lines (None: unreadable)
MapSource = Callable[[int, tuple[str, ...]], str]  # (budget, focus paths) -> map text


@dataclass(slots=True)
class _Span:
    path: str
    start: int
    end: int
    symbol: str | None
    score: float
    text: str  # fallback text when the file cannot be read


def _merge(spans: list[_Span]) -> list[_Span]:
    """Merge overlapping or touching spans of one file (sorted by start)."""
    out: list[_Span] = []
    for s in sorted(spans, key=lambda s: (s.start, s.end)):
        if out and s.start <= out[-1].end + 1:
            last = out[-1]
            if s.end > last.end:
                last.text = last.text + "\n" + "\n".join(s.text.split("\n")[last.end - s.start + 1 :])
                last.end = s.end
            if s.score > last.score:
                last.score, last.symbol = s.score, s.symbol
        else:
            out.append(_Span(s.path, s.start, s.end, s.symbol, s.score, s.text))
    return out


def _span_text(span: _Span, lines: list[str] | None) -> str:
    """The span's lines (from the file, else the indexed text), blank lines at either end trimmed
    (the span's start/end are moved to match): they cost tokens and say nothing."""
    if lines is not None and span.end <= len(lines):
        body = lines[span.start - 1 : span.end]
    else:
        body = span.text.split("\n")
        if len(body) != span.end - span.start + 1:  # not a plain slice of the file: keep as is
            return span.text
    while len(body) > 1 and not body[-1].strip():
        body.pop()
        span.end -= 1
    while len(body) > 1 and not body[0].strip():
        body.pop(0)
        span.start += 1
    return "\n".join(body)


def _render_code(spans: list[_Span], lines_of: LineSource, cache: dict[str, list[str] | None]) -> tuple[str, list[tuple[_Span, str]]]:
    """The code section: files ordered by their best span, spans in line order."""
    by_file: dict[str, list[_Span]] = {}
    for s in spans:
        by_file.setdefault(s.path, []).append(s)
    order = sorted(by_file, key=lambda p: -max(s.score for s in by_file[p]))
    parts: list[str] = []
    rendered: list[tuple[_Span, str]] = []
    for path in order:
        merged = _merge(by_file[path])
        if path not in cache:
            cache[path] = lines_of(path)
        body: list[str] = []
        for s in merged:
            t = _span_text(s, cache[path])
            rendered.append((s, t))
            body.append(t)
        ranges = ", ".join(f"{s.start}-{s.end}" for s in merged)
        parts.append(f"# {path} (lines {ranges})\n" + "\n...\n".join(body))
    return "\n\n".join(parts), rendered


def build_context(hits: Sequence[SearchHit], budget: int, counter: TokenCounter, lines_of: LineSource,
                  map_source: MapSource | None = None) -> ContextPack:
    """Pack the hits (best first) and a repo map into at most `budget` tokens."""
    cache: dict[str, list[str] | None] = {}
    chosen: list[_Span] = []
    code = ""
    for h in sorted(hits, key=lambda h: -h.score):
        cand = chosen + [_Span(h.path, h.start_line, h.end_line, h.symbol, h.score, h.text)]
        text, _ = _render_code(cand, lines_of, cache)
        if counter.count(text) <= budget:
            chosen, code = cand, text
    code, rendered = _render_code(chosen, lines_of, cache) if chosen else ("", [])
    items = [ContextItem(s.path, s.start, s.end, s.symbol, round(s.score, 6), counter.count(t), "code")
             for s, t in rendered]
    text = code
    left = budget - counter.count(code + "\n\n" + MAP_HEADER)
    if map_source is not None and left >= MIN_MAP_TOKENS:
        focus = tuple(dict.fromkeys(s.path for s in chosen))
        map_text = map_source(left, focus).strip("\n")
        full = _fit_map(code, map_text, budget, counter)
        if full is not None:
            text, map_part = full
            items.append(ContextItem("", 0, 0, None, 0.0, counter.count(map_part), kind="map"))
    total = counter.count(text)
    assert total <= budget, (total, budget)  # the promise; _fit_map and the greedy loop keep it
    return ContextPack(text=text, tokens=total, budget=budget, items=items)


def _join(code: str, map_lines: list[str]) -> tuple[str, str]:
    map_part = MAP_HEADER + "\n".join(map_lines)
    return (f"{code}\n\n{map_part}" if code else map_part), map_part


def _fit_map(code: str, map_text: str, budget: int, counter: TokenCounter) -> tuple[str, str] | None:
    """Code plus as many leading lines of the map as fit (binary search); None if no line fits."""
    lines = [ln for ln in map_text.split("\n")]
    if not any(ln.strip() for ln in lines):
        return None
    lo, hi = 0, len(lines)  # invariant: lines[:lo] fits
    if counter.count(_join(code, lines)[0]) <= budget:
        return _join(code, lines)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if counter.count(_join(code, lines[:mid])[0]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    if lo == 0:
        return None
    return _join(code, lines[:lo])
