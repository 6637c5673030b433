"""AST-aware chunks: each definition is a chunk, big ones are split along their structure.

Why: retrieval and embeddings work on whole units (a function, a class header), never on
arbitrary windows that cut a function in two. Rules:
- a block definition (function, class, struct, impl, ...) with its decorators and leading comments
  is one chunk when it fits `max_tokens`;
- a bigger definition that contains definitions (a class) is split into its children plus chunks
  for the code around them (the class header and attributes), labelled with the container;
- a bigger definition without children (a long function) is split at the boundaries between the
  top-level statements of its body, each part starting with the signature line;
- the code between definitions is one chunk per gap (itself split when too big); gaps of blank
  lines or of a few short lines are merged into a neighbour chunk;
- every line of the file lies in exactly one chunk (chunks partition the file).
Line numbers count `\\n` only, as tree-sitter does (not `str.splitlines`, which also splits on
form feeds and other separators).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from repoloop.indexer.models import Chunk, ParsedFile, Symbol

__all__ = ["SplitPoints", "chunk_file", "estimate_tokens"]

# (qualname, start line) of a function -> first lines of the top-level statements of its body
SplitPoints = dict[tuple[str, int], list[int]]

MERGEABLE_KINDS = frozenset({"constant", "variable", "field", "macro"})
_TINY_GAP_TOKENS = 40
_MAX_DEPTH = 64  # the chunker recurses once per nesting level


def estimate_tokens(text: str) -> int:
    """A conservative token estimate for code (~3.5 characters per token)."""
    return math.ceil(len(text) / 3.5)


@dataclass(slots=True)
class _Node:
    sym: Symbol
    start: int  # first line of the chunk: the definition plus its decorators and leading comments
    end: int
    children: list[_Node] = field(default_factory=list)


@dataclass(slots=True)
class _Piece:
    start: int
    end: int
    symbol: str | None
    kind: str
    prefix: str = ""  # the signature line repeated on top of a split part


class _Chunker:
    def __init__(self, parsed: ParsedFile, lines: list[str], max_tokens: int, split_points: SplitPoints):
        self.parsed = parsed
        self.lines = lines
        self.max = max_tokens
        self.split_points = split_points
        self.pieces: list[_Piece] = []
        self.comment_marks = _comment_marks(parsed.language)
        # Prefix sums of per-line token estimates make any range's size O(1).
        self.cum = [0]
        for ln in lines:
            self.cum.append(self.cum[-1] + len(ln) + 1)

    def tokens(self, start: int, end: int) -> int:
        return math.ceil((self.cum[end] - self.cum[start - 1]) / 3.5)

    def blank(self, start: int, end: int) -> bool:
        return all(not self.lines[i - 1].strip() for i in range(start, end + 1))

    # -- the symbol tree -------------------------------------------------------------
    def tree(self) -> list[_Node]:
        ordered = sorted(
            (s for s in self.parsed.symbols if 1 <= s.start_line <= s.end_line),
            key=lambda s: (s.start_line, -s.end_line),
        )
        # A constant/variable is plain code to merge, unless definitions nest in it
        # (`const api = { get() {...} }`): then it is a container like a class.
        blocks = [
            s for i, s in enumerate(ordered)
            if s.kind not in MERGEABLE_KINDS
            or (i + 1 < len(ordered) and ordered[i + 1].start_line <= s.end_line and ordered[i + 1].end_line <= s.end_line)
        ]
        roots: list[_Node] = []
        stack: list[_Node] = []
        n_lines = len(self.lines)
        for s in blocks:
            end = min(s.end_line, n_lines)
            if s.start_line > end:
                continue
            while stack and not (s.start_line >= stack[-1].start and end <= stack[-1].end):
                stack.pop()
            siblings = stack[-1].children if stack else roots
            if siblings and s.start_line <= siblings[-1].end:
                continue  # overlaps a sibling (should not happen): leave it to its neighbour
            if stack and s.start_line == stack[-1].sym.start_line and end == stack[-1].end:
                continue  # same range as its container
            if len(stack) >= _MAX_DEPTH:
                continue  # absurdly deep nesting (generated code): the deepest stay inside their parent
            node = _Node(s, s.start_line, end)
            siblings.append(node)
            stack.append(node)
        self._extend(roots, 1)
        return roots

    def _extend(self, nodes: list[_Node], floor: int) -> None:
        """Pull each definition's first line up over its decorators and leading comments."""
        prev_end = floor - 1
        for n in nodes:
            start = n.sym.start_line
            while start - 1 > prev_end and self._is_preamble(self.lines[start - 2]):
                start -= 1
            n.start = start
            prev_end = n.end
            self._extend(n.children, n.sym.start_line + 1)

    def _is_preamble(self, line: str) -> bool:
        s = line.lstrip()
        return bool(s) and (s.startswith("@") or s.startswith(self.comment_marks))

    # -- emitting ---------------------------------------------------------------------
    def region(self, lo: int, hi: int, nodes: list[_Node], owner: tuple[str | None, str]) -> None:
        """Lines lo..hi: the child definitions, and the code around them labelled with `owner`."""
        floor = len(self.pieces)  # gaps merge only into pieces of this region, never across its border
        pos = lo
        for n in nodes:
            if n.start > pos:
                self.gap(pos, n.start - 1, owner, floor)
            self.node(n)
            pos = n.end + 1
        if pos <= hi:
            self.gap(pos, hi, owner, floor)

    def gap(self, start: int, end: int, owner: tuple[str | None, str], floor: int) -> None:
        if len(self.pieces) > floor and (self.blank(start, end) or self.tokens(start, end) <= _TINY_GAP_TOKENS):
            last = self.pieces[-1]
            if last.end == start - 1 and self._size(last, end) <= self.max:
                last.end = end
                return
        self.code(start, end, *owner)

    def _size(self, p: _Piece, end: int) -> int:
        """Tokens of piece `p` if it were extended to line `end`."""
        extra = len(p.prefix) + 1 if p.prefix else 0
        return math.ceil((self.cum[end] - self.cum[p.start - 1] + extra) / 3.5)

    def node(self, n: _Node) -> None:
        s = n.sym
        if self.tokens(n.start, n.end) <= self.max:
            self.pieces.append(_Piece(n.start, n.end, s.qualname, s.kind))
        elif n.children:
            self.region(n.start, n.end, n.children, (s.qualname, s.kind))
        else:
            self.split_function(n)

    def code(self, start: int, end: int, symbol: str | None, kind: str, prefix: str = "", later: str | None = None) -> None:
        """Lines start..end as chunks within the budget, cut preferably at blank lines; the first
        chunk starts with `prefix`, the others with `later` (default: `prefix`)."""
        later = prefix if later is None else later
        first = start
        while first <= end:
            budget = self.max - (estimate_tokens(prefix + "\n") if prefix else 0)
            if self.tokens(first, end) <= budget:
                self.pieces.append(_Piece(first, end, symbol, kind, prefix))
                return
            last = first
            while last + 1 <= end and self.tokens(first, last + 1) <= budget:
                last += 1
            cut = last
            for i in range(last, first + (last - first) // 2, -1):
                if not self.lines[i - 1].strip():
                    cut = i
                    break
            self.pieces.append(_Piece(first, cut, symbol, kind, prefix))
            first = cut + 1
            prefix = later

    def split_function(self, n: _Node) -> None:
        s = n.sym
        sig = s.signature or self.lines[s.start_line - 1].strip()
        points = self.split_points.get((s.qualname, s.start_line)) or self._indent_points(s.start_line, n.end)
        bounds = sorted({p for p in points if n.start < p <= n.end})
        segments: list[tuple[int, int]] = []
        prev = n.start
        for b in bounds:
            segments.append((prev, b - 1))
            prev = b
        segments.append((prev, n.end))
        budget_rest = self.max - estimate_tokens(sig + "\n")
        cur_start, cur_end = segments[0]
        for a, b in segments[1:]:
            first_part = cur_start == n.start
            budget = self.max if first_part else budget_rest
            if self.tokens(cur_start, b) <= budget:
                cur_end = b
                continue
            self._flush(cur_start, cur_end, s, sig, first_part)
            cur_start, cur_end = a, b
        self._flush(cur_start, cur_end, s, sig, cur_start == n.start)

    def _flush(self, start: int, end: int, s: Symbol, sig: str, first_part: bool) -> None:
        self.code(start, end, s.qualname, s.kind, "" if first_part else sig, sig)

    def _indent_points(self, def_line: int, end: int) -> list[int]:
        """Statement starts guessed from indentation (when the parser gave no split points)."""
        base: int | None = None
        out: list[int] = []
        def_indent = _indent(self.lines[def_line - 1])
        for i in range(def_line + 1, end + 1):
            line = self.lines[i - 1]
            if not line.strip():
                continue
            ind = _indent(line)
            if base is None:
                if ind <= def_indent:
                    continue
                base = ind
            if ind == base and line.lstrip()[:1] not in ")]}":
                out.append(i)
        return out

    def chunks(self) -> list[Chunk]:
        if not self.lines:
            return []
        self.region(1, len(self.lines), self.tree(), (None, "code"))
        path = self.parsed.path
        out = []
        for p in self.pieces:
            body = "\n".join(self.lines[p.start - 1:p.end])
            text = f"{p.prefix}\n{body}" if p.prefix else body
            header = f"{path} :: {p.symbol}" if p.symbol else path
            out.append(Chunk(start_line=p.start, end_line=p.end, text=text, symbol=p.symbol, kind=p.kind, header=header))
        return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _comment_marks(language: str) -> tuple[str, ...]:
    if language in ("python", "ruby"):
        return ("#",)
    if language == "rust":
        return ("//", "/*", "*", "#[")
    if language == "php":
        return ("//", "/*", "*", "#")
    if language == "cpp":
        return ("//", "/*", "*", "template")
    return ("//", "/*", "*", "[")  # `[` : C# attributes


def split_lines(text: str) -> list[str]:
    """Lines as tree-sitter counts them (only `\\n` ends a line); no trailing empty line."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def chunk_file(
    parsed: ParsedFile,
    source_text: str,
    *,
    max_tokens: int = 400,
    split_points: SplitPoints | None = None,
) -> list[Chunk]:
    """Chunks covering every line of the file once, each within `max_tokens` (estimated) unless a
    single line is longer. `split_points` ((qualname, start line) -> statement first lines) come from the
    parser; without them long functions are split where indentation shows statement starts."""
    return _Chunker(parsed, split_lines(source_text), max_tokens, split_points or {}).chunks()
