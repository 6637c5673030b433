"""Python identifier references for `repoloop tags --refs`, without tree-sitter.

Why not the handler's `(identifier) @ref` query: a Python file has thousands of identifiers, and
the query hands each one over as a Python `Node` object before we count names; with the parse,
that is most of `tags --refs`' time. Identifiers are a lexical fact: once strings (except the
expressions inside f-strings) and comments are blanked, one compiled pattern finds every name in
C. The blanking uses the string forms of `pydefs`, whose scanner has already accepted the file
(`extract_file` only comes here when it did, so every quote is a string's opening quote).

Same rows as the query path (name, first line, count; names of 2+ characters; definition names
and `skip` excluded) except for soft keywords used as keywords (`match`, `case`, `type` at the head
of their statements) and Python 2 leftovers, which the grammar does not call identifiers and this
pattern counts: one more occurrence of a common word, irrelevant to a repo map
(tests/test_pyrefs.py measures the agreement on the stdlib).
"""

from __future__ import annotations

import keyword
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from itertools import accumulate

from repoloop.indexer.pydefs import STRING_PATTERN

__all__ = ["lexical_masks", "python_refs"]

RefRow = tuple[str, int, int]

# A word not preceded by a word character (so `0x1f`, `1e5`, `1_000j` are no names); bytes >= 0x80
# are the UTF-8 of non-ASCII identifiers (outside strings and comments nothing else has them).
_IDENT = re.compile(rb"(?<![0-9A-Za-z_\x80-\xff])[A-Za-z_\x80-\xff][0-9A-Za-z_\x80-\xff]+")
_IDENT_SPLIT = re.compile(b"(" + _IDENT.pattern + b")")
_KEYWORDS = frozenset(k.encode() for k in keyword.kwlist)  # True/False/None too: not identifiers there

_NONCODE = re.compile(rb"(?P<s>%s)|\#[^\n]*" % STRING_PATTERN)
# A string's prefix (the quote's offset is the match start): masked with it; f marks an f-string.
_PREFIX = re.compile(rb"(?<![0-9A-Za-z_])[rRbBuUfF]{1,2}\Z")
# An f-string's replacement fields (group 1: the expression part is code; it may hold strings in
# the other quote, braces included); `{{` `}}` are text.
_FIELD = re.compile(rb"""\{\{|\}\}|\{((?:[^{}'"]|'[^'\n]*'|"[^"\n]*"|\{[^{}]*\})*)\}""")


def lexical_masks(source: bytes, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Byte ranges of a Python file (or of source[start:end]) that hold no code: strings with their
    prefixes, minus the replacement fields of f-strings (masked in turn: strings nest there), and
    comments; in order, non-overlapping."""
    out: list[tuple[int, int]] = []
    prefix = _PREFIX.search
    for m in _NONCODE.finditer(source, start, len(source) if end is None else end):
        s, e = m.span()
        if m.start(1) < 0:  # a comment
            out.append((s, e))
            continue
        p = prefix(source, max(0, s - 3), s) if s else None
        if p is None:
            out.append((s, e))
            continue
        if b"f" not in p.group().lower():
            out.append((p.start(), e))
            continue
        pos = p.start()
        for f in _FIELD.finditer(source, s, e):
            fs, fe = f.span(1)
            if fs < 0:
                continue
            out.append((pos, fs))
            out.extend(lexical_masks(source, fs, fe))
            pos = fe
        out.append((pos, e))
    return out


def python_refs(source: bytes, masked: list[tuple[int, int]], def_name_starts: Iterable[int],
                skip: frozenset[str]) -> list[RefRow]:
    """(name, first line, occurrences) per distinct identifier of 2+ characters in code.

    Every step over all identifiers runs in C (a regex split, `accumulate`, `Counter`, a reversed
    `dict`: the first occurrence wins); Python loops only over distinct names and masked spans."""
    if masked:  # blank the non-code bytes, offsets unchanged
        pieces: list[bytes] = []
        pos = 0
        for s, e in masked:
            pieces.append(source[pos:s])
            pieces.append(b" " * (e - s))
            pos = e
        pieces.append(source[pos:])
        code = b"".join(pieces)
    else:
        code = source
    parts = _IDENT_SPLIT.split(code)  # [gap, name, gap, name, ..., gap]
    if len(parts) < 2:
        return []
    names = parts[1::2]
    ends = list(accumulate(map(len, parts)))
    starts = ends[0:-1:2]  # the offset of name i is the length of everything before it
    defs = [d for d in def_name_starts]
    if defs:  # a definition's own name is not a use of it
        at = dict(zip(starts, range(len(names)), strict=False))
        for d in defs:
            i = at.get(d)
            if i is not None:
                names[i] = b""
    counts = Counter(names)
    counts.pop(b"", None)
    first = dict(zip(reversed(names), reversed(starts), strict=False))
    line_ends = list(accumulate(map(len, source.splitlines(keepends=True))))  # C, not a loop per line
    out: list[RefRow] = []
    for raw, c in counts.items():
        if c <= 0 or raw in _KEYWORDS:
            continue
        name = raw.decode("utf-8", errors="replace")
        if name not in skip:
            out.append((name, bisect_right(line_ends, first[raw]) + 1, c))
    return out

