"""Python identifier references for `repoloop tags --refs`, without tree-sitter.

Why not the handler's `(identifier) @ref` query: a Python file has thousands of identifiers, and
the query hands each one over as a Python `Node` object before we count names; with the parse,
that is most of `tags --refs`' time. Identifiers are a lexical fact: one compiled pattern, run once
over the file by `findall` (in C), yields every name, line end and string in order, and skips
comments; counting, first occurrences and line numbers are C-level passes over that list
(`Counter`, a reversed `dict`, `accumulate`). Python code runs per distinct name and per
definition, not per identifier. The string forms are `pydefs`', whose scanner has already
accepted the file (`extract_file` only comes here when it did, so every quote opens a string).

Same rows as the query path (name, first line, count; names of 2+ characters; definition names
and `skip` excluded) except for what the grammar does not call an identifier and this pattern
does: soft keywords used as keywords (`match`, `case`, `type` at the head of their statements),
`__future__` in `from __future__ import`, Python 2 leftovers, words in an f-string's format spec,
`e14` in `1.e14`. tests/test_pyrefs.py measures the agreement on the stdlib.
"""

from __future__ import annotations

import keyword
import re
from bisect import bisect_left
from collections import Counter
from itertools import accumulate, repeat

from repoloop.indexer.tags.pydefs import F_STRING_PATTERN, PLAIN_STRING_PATTERN

__all__ = ["python_refs"]

RefRow = tuple[str, int, int]

# One token per match, the captured group (findall's item): a name of 2+ characters (not preceded
# by a word character, so `0x1f` and `1_000j` hold none; not a string prefix like `rb`; bytes
# >= 0x80 are the UTF-8 of non-ASCII names), a line end, a plain string, an f-string with its
# prefix. A comment matches without the group: an empty item.
_NAME = rb"[A-Za-z_\x80-\xff](?<![0-9A-Za-z_\x80-\xff].)[0-9A-Za-z_\x80-\xff]++(?!['\"])"
_TOKEN = re.compile(rb"(%s|\n|%s|(?:[fF][rR]?|[rR][fF])(?:%s))|\#[^\n]*" % (
    _NAME, PLAIN_STRING_PATTERN, F_STRING_PATTERN))
_QUOTES = frozenset(b"'\"")
# An f-string's replacement fields (group 1: the expression part is code; it may hold strings in
# the other quote, braces included); `{{` `}}` are text.
_FIELD = re.compile(rb"""\{\{|\}\}|\{((?:[^{}'"]|'[^'\n]*'|"[^"\n]*"|\{[^{}]*\})*)\}""")
_KEYWORDS = frozenset(k.encode() for k in keyword.kwlist)  # True/False/None too: not identifiers there
_NL = b"\n"


def python_refs(source: bytes, defs: list[tuple[int, int]], skip: frozenset[str]) -> list[RefRow]:
    """(name, first line, occurrences) per distinct identifier of 2+ characters in code.

    `defs` are (byte offset, line) of each definition's name, which is no use of it."""
    toks = _TOKEN.findall(source)
    # Newlines up to and including each token; a name holds none, so its line is this + 1.
    nl = list(accumulate(map(bytes.count, toks, repeat(_NL))))
    for off, line in defs:  # blank the definition's own name: the first of it on its line
        lo, hi = bisect_left(nl, line - 1), bisect_left(nl, line)
        name = _TOKEN.match(source, off)
        if name is not None:
            try:
                toks[toks.index(name.group(1), lo, hi)] = b""
            except ValueError:
                pass
    counts = Counter(toks)
    first = dict(zip(reversed(toks), range(len(toks) - 1, -1, -1), strict=True))
    found: dict[bytes, list[int]] = {}  # name -> [count, first token index, line]
    fields: list[tuple[bytes, int, int]] = []
    for raw, c in counts.items():
        if not raw or raw == _NL or raw in _KEYWORDS:
            continue
        if raw[-1] in _QUOTES:  # a string: only an f-string's fields hold code
            if raw[0] not in _QUOTES:
                i = first[raw]
                fields.append((raw, c, i))
            continue
        i = first[raw]
        found[raw] = [c, i, nl[i] + 1]
    for raw, c, i in fields:
        start_line = nl[i] - raw.count(_NL) + 1
        for name, below in _field_names(raw):
            got = found.get(name)
            if got is None:
                found[name] = [c, i, start_line + below]
            else:
                got[0] += c
                if i < got[1]:
                    got[1], got[2] = i, start_line + below
    out: list[RefRow] = []
    for raw, (c, _i, line) in found.items():
        name = raw.decode("utf-8", errors="replace")
        if name not in skip:
            out.append((name, line, c))
    return out


def _field_names(fstring: bytes) -> list[tuple[bytes, int]]:
    """Names in an f-string's replacement fields (nested f-strings included), each with the number
    of line ends in the f-string before its field."""
    out: list[tuple[bytes, int]] = []
    for f in _FIELD.finditer(fstring):
        expr = f.group(1)
        if not expr:
            continue
        below = fstring.count(_NL, 0, f.start(1))
        for tok in _TOKEN.findall(expr):
            if not tok or tok == _NL or tok in _KEYWORDS:
                continue
            if tok[-1] in _QUOTES:
                if tok[0] not in _QUOTES:
                    out.extend((n, below + b) for n, b in _field_names(tok))
                continue
            out.append((tok, below))
    return out
