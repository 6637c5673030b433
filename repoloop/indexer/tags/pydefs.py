"""Python definitions without tree-sitter: a hand-written scanner for the defs-only tags path.

Why: `repoloop tags` must come within 3x of universal-ctags, and tree-sitter's `parse` alone costs
6.6x ctags' whole run on the stdlib. ctags gets its speed from hand-written lexers; this is one for
Python definitions. One compiled `re` pattern (the C engine) matches a whole logical line at a time
(strings of every prefix and quote form, f-strings, comments, brackets nested up to `_DEPTH`,
backslash continuations), so Python code runs once per logical line, not per character.

Contract: `scan(source, module)` returns exactly the rows `extract._python_rows` builds from
tree-sitter's tree (same names, qualnames, kinds, lines, scopes, order), or None when it is not
sure, and the caller then parses with tree-sitter. "Not sure" is: anything the pattern does not
tokenize (unterminated string or bracket, brackets nested deeper than `_DEPTH` or of mismatched
kinds in the outer levels, a stray character, undecodable or non-ASCII bytes outside strings and
comments, `\\r`, form feeds or tabs in indentation), an indentation that Python would reject
(unexpected indent, a dedent to no open level, a header without a block), a decorator not followed
by a definition, an f-string whose replacement fields it does not model (3.12 nested quotes), a
`type` statement or a lambda it cannot place. What it cannot see is a syntax error inside one
logical line (`x = = 1`): files with those are rare, and tree-sitter's rows usually survive them.

How tree-sitter-python ends a block (its external scanner, mirrored in `_dedent`): a block's extent
is its last statement, plus the comment lines after it that are indented at least as deep as the
block, up to the first comment that is not; a comment indented less than the block does not close
the block when the next statement is back inside it.
"""

from __future__ import annotations

import keyword
import re
from functools import cache

__all__ = ["F_STRING_PATTERN", "PLAIN_STRING_PATTERN", "scan", "scan_with_names", "warm"]

DefRow = tuple[str, str, str, int, int, str, str, str]

_DEPTH = 14  # bracket nesting the pattern follows (the outer _CHECKED levels check bracket kinds)
_CHECKED = 1

# Never part of a run of plain code: quotes, comment, brackets, backslash, newline, control
# characters (\t excepted), non-ASCII, and characters that are not Python ($ ? `).
_X = rb"'\"#()\[\]{}\\\n\x00-\x08\x0b-\x1f\x7f-\xff$?`"
_IDENT = rb"[A-Za-z_][A-Za-z0-9_]*"


def _strings() -> tuple[bytes, bytes, bytes]:
    """Every string literal form. f-strings (the quote is preceded by f or fr) must have replacement
    fields without their own quote character (3.12's nested quotes fall back) and balanced braces.
    Each alternative starts with its quote (re skips an alternative on its first literal at once);
    the prefix is checked by looking behind. Returns every form, the plain ones, the f-strings."""
    out, plain, fstr = [], [], []
    for q in (b"'", b'"'):
        nf = rb"%s(?<![fF]%s)(?<![fF][rR]%s)" % (q, q, q)  # the opening quote, not an f-string
        f = rb"%s(?:(?<=[fF]%s)|(?<=[fF][rR]%s))" % (q, q, q)
        plain3 = rb"%s%s%s[^%s\\]*(?:(?:\\[\s\S]|%s(?!%s))[^%s\\]*)*%s" % (nf, q, q, q, q, q * 2, q, q * 3)
        plain1 = rb"%s(?!%s)[^%s\\\n]*(?:\\[\s\S][^%s\\\n]*)*%s" % (nf, q * 2, q, q, q)
        o = b'"' if q == b"'" else b"'"
        in1 = rb"(?:[^%s%s{}\n]|%s[^%s\n]*%s)" % (q, o, o, o, o)  # a field may hold strings in the other quote
        field1 = rb"\{%s*(?:\{%s*\}%s*)*\}" % (in1, in1, in1)
        f1 = rb"%s(?!%s)[^%s\\{}\n]*(?:(?:\\[^{}]?+|\{\{|\}\}|%s)[^%s\\{}\n]*)*%s" % (f, q * 2, q, field1, q, q)
        in3 = rb"(?:[^%s{}]|%s(?!%s))" % (q, q, q * 2)
        field3 = rb"\{%s*(?:\{%s*\}%s*)*\}" % (in3, in3, in3)
        f3 = rb"%s%s%s[^%s\\{}]*(?:(?:\\[^{}]?+|%s(?!%s)|\{\{|\}\}|%s)[^%s\\{}]*)*%s" % (
            f, q, q, q, q, q * 2, field3, q, q * 3)
        out += [plain3, plain1, f3, f1]
        plain += [plain3, plain1]
        fstr += [f3, f1]
    return b"|".join(out), b"|".join(plain), b"|".join(fstr)


_STRING, PLAIN_STRING_PATTERN, F_STRING_PATTERN = _strings()  # the last two for `pyrefs`
_COMMENT = rb"\#[^\n]*+"
_CONT = rb"\\\n"
_KW_STMT = rb"(?:def|class|return|import|pass|raise|del|global|nonlocal|try|except|finally|while|with|" \
    rb"assert|break|continue|elif)\b"
# A newline inside brackets (1) may not start a statement: a missing closing bracket in broken code
# would otherwise swallow the following lines; (2) must be followed, past blank and comment lines,
# by a line indented at least as deep as the statement (group i), unless a closing bracket may come
# next: tree-sitter-python's scanner emits a DEDENT there otherwise (`(bar.\nbaz)`), an ERROR.
# A newline right after a token that a closing bracket may follow is safe at any indentation
# (the scanner sees `within_brackets`): `{\n    a: 1,\n}` with `}` dedented is common.
_SAFE_BEFORE = rb"(?<=[A-Za-z0-9_)\]}'\",(\[{]\n)" + b"".join(
    rb"(?<!\W%s\n)" % k for k in (b"and", b"or", b"not", b"in", b"is", b"if", b"else", b"for", b"lambda", b"await",
                                  b"from", b"as", b"async", b"yield"))
_NL_LINE = rb"\n(?:(?=(?:[ \t]*+(?:\#[^\n]*+)?\n)*+(?P=i))|%s)(?![ \t]*+%s)" % (_SAFE_BEFORE, _KW_STMT)


def _groups(nl: bytes) -> bytes:
    """Bracket groups nested up to _DEPTH; the outer _CHECKED levels check that kinds match."""
    g = rb"(?!)"  # (a branch of an alternation: no group of its own)
    for level in range(_DEPTH, 0, -1):  # innermost first
        inner = rb"(?:[^%s]++|%s|%s|%s|%s|%s)*+" % (_X, _STRING, g, nl, _COMMENT, _CONT)
        if level <= _CHECKED:
            g = rb"\(%s\)|\[%s\]|\{%s\}" % (inner, inner, inner)
        else:
            g = rb"[(\[{]%s[)\]}]" % inner
    return g


_PLAIN0 = rb"[^%s \t](?:[^%s]*[^%s \t])?" % (_X, _X, _X)
_ATOM0 = rb"(?:%s|%s|%s|%s[ \t]*)" % (_PLAIN0, _groups(_NL_LINE), _STRING, _CONT)
_BODY = rb"(?:[ \t]*+%s)++" % _ATOM0
# What a logical line may define: def/class (name), `type X = ...` (any expression left of `=`, as
# tree-sitter reads it), a possible module-level assignment, a decorator.
_HEAD = (rb"(?:(?=(?P<h>(?:async[ \t]+)?(?P<kw>def|class)[ \t]+(?P<nm>%s)[ \t]*[(\[:]"
         rb"|type(?![A-Za-z0-9_])(?=[ \t]*[A-Za-z_(\[])|@|(?(nz)(?!)|%s[ \t]*(?:=(?!=)|:)))))?") % (_IDENT, _IDENT)
_NOT_HEAD = rb"(?!(?:async[ \t]+)?(?:def|class)[ \t]|type(?![A-Za-z0-9_])[ \t]*[A-Za-z_(\[]|@)"
_BLANKS = rb"(?:[ \t\f]*+(?:\#[^\n]*+)?\n)*+"
_TRAIL = rb"[ \t]*+(?:\#[^\n]*+)?"
# One match: the blank and comment lines before a logical line, its indentation (i; nz when not
# zero), what it may define (h), its tokens; then, unless it defines something or is at module
# level, the following logical lines at the same indentation that define nothing, as long as none
# but the last ends with ':' (those need no Python-side work: the hot path). e = end of the last
# token; then a trailing comment and the newline.
_LINE = (rb"%s(?P<i>(?P<nz>[ ])?[ ]*)(?![ \t\\])%s"
         rb"(?:%s(?:(?(h)(?!)|(?(nz)(?<!:)%s\n%s(?P=i)(?![ \t\\])%s|(?!))))?)++(?P<e>)%s(?:\n|\Z)") % (
    _BLANKS, _HEAD, _BODY, _TRAIL, _BLANKS, _NOT_HEAD, _TRAIL)
_TAIL = re.compile(rb"%s[ \t\f]*(?:\#[^\n]*)?\Z" % _BLANKS)
_COMMENT_LINE = re.compile(rb"([ \t\f]*)\#[^\n]*")
# Where tree-sitter may see a `type` statement: `type <expression> =` at a line start, after `;`, or
# after a header's `:` (then `type NAME`); found by the literal first, its context checked after.
_TYPE_ANYWHERE = re.compile(
    rb"type(?![A-Za-z0-9_])(?=[ \t]*[A-Za-z_(\[])(?:[^\n=()\[\]]|\((?:[^\n()]|\([^\n()]*\))*\)|\[(?:[^\n\[\]]|"
    rb"\[[^\n\[\]]*\])*\])*[^=!<>:\n]=(?!=)")


def _unseen_type_statement(data: bytes, seen: set[int]) -> bool:
    """Whether tree-sitter may read a `type` statement somewhere this scanner did not look."""
    if b"type" in data:
        for m in _TYPE_ANYWHERE.finditer(data):
            s = m.start()
            if s in seen:
                continue
            head = data[data.rfind(b"\n", 0, s) + 1:s].rstrip(b" \t")
            if not head or head.endswith(b";") or (head.endswith(b":") and data[s + 4] in b" \t"):
                return True
    return False


# Statement tokens, for the rare lines that need a closer look (module-level assignments, `type`).
_TOK = rb"(?P<s>%s)|(?P<id>%s)|(?P<op>==|!=|<=|>=|:=|->|\*\*=|//=|>>=|<<=|[-+*/%%&|^@]=|[;,:=])" \
    rb"|(?P<b>[(\[{])|(?P<c>[)\]}])|(?P<o>[^%s \t;,:=A-Za-z_]+)|\#[^\n]*|[ \t\n]+|\\\n" % (_STRING, _IDENT, _X)


@cache
def _compiled(pattern: bytes) -> re.Pattern[bytes]:
    """Compiled on first use (~40 ms for _LINE): `import repoloop` stays cheap for other commands."""
    return re.compile(pattern)


def warm() -> None:
    """Compile the patterns now (before forking workers, so that each does not compile its own)."""
    _compiled(_LINE)
    _compiled(_TOK)


_NOT_ALIAS = frozenset((b"==", b"!=", b"<=", b">=", b"**=", b"//=", b">>=", b"<<=", *(
    c.encode() + b"=" for c in "-+*/%&|^@")))
_COMPOUND = frozenset(k.encode() for k in (
    "if", "elif", "else", "for", "while", "with", "try", "except", "finally", "def", "class", "async"))


class _Unsure(Exception):
    """The scanner cannot vouch for this file: use tree-sitter."""


def scan(source: bytes, module: str) -> list[DefRow] | None:
    """tree-sitter-identical definition rows of a Python file, or None to fall back to tree-sitter."""
    try:
        return _Scan(source, module).run()
    except _Unsure:
        return None


def scan_with_names(source: bytes, module: str) -> tuple[list[DefRow], list[int]] | None:
    """`scan`'s rows and the byte offset of each definition's name (a definition's own name is not
    a reference to it: `tags --refs` leaves these out), or None to fall back to tree-sitter."""
    sc = _Scan(source, module)
    try:
        rows = sc.run()
    except _Unsure:
        return None
    return rows, [r[9] for r in sc.rows]


class _Scan:
    """One file's pass: a block stack driven by logical lines' indentation."""

    __slots__ = ("data", "module", "rows", "nl_off", "nl_line", "types")

    def __init__(self, data: bytes, module: str) -> None:
        self.data = data
        self.module = module
        self.rows: list[list] = []
        self.nl_off = 0  # line-number cursor: offsets are asked in increasing order
        self.nl_line = 1
        self.types: set[int] = set()  # offsets of the `type` statements looked at

    def line(self, off: int) -> int:
        """1-based line of the byte at `off`."""
        if off >= self.nl_off:
            self.nl_line += self.data.count(b"\n", self.nl_off, off)
        else:
            self.nl_line -= self.data.count(b"\n", off, self.nl_off)
        self.nl_off = off
        return self.nl_line

    def run(self) -> list[DefRow]:
        data = self.data
        if b"\r" in data:
            raise _Unsure
        rows = self.rows
        # Block stack: indentation, row index of the definition owning it (-1: if/for/...), and the
        # enclosing definition inside it (qualname, local path, kind).
        stack: list[tuple[int, int, tuple[str, str, str]]] = [(0, -1, (self.module, "", ""))]
        cur = 0
        ctx = stack[0][2]
        pending = False  # the previous logical line ended with ':' (a block must follow)
        pending_row = -1  # ... and it was a def/class header: that row owns the block
        after_dec = -1  # indentation a decorated definition must follow at
        last_end = 0  # end offset of the last token of the innermost open block
        pos = 0
        line_rx = _compiled(_LINE)
        match = line_rx.match
        gi, ge, gh, gkw, gnm = (line_rx.groupindex[g] for g in ("i", "e", "h", "kw", "nm"))
        while (m := match(data, pos)) is not None:
            i0, i1 = m.span(gi)
            ind = i1 - i0
            if ind == cur and not pending:
                pass
            elif ind != cur:
                if ind > cur:
                    if not pending:
                        raise _Unsure  # unexpected indent
                    if pending_row >= 0:
                        r = rows[pending_row]
                        ctx = (r[1], r[8], r[2])
                    stack.append((ind, pending_row, ctx))
                    cur = ind
                elif pending:
                    raise _Unsure  # a header without its block
                elif stack[-2][0] == ind and data.find(b"#", pos, i0) < 0:  # one level, no comment
                    _ind, row, _ctx = stack.pop()
                    if row >= 0:
                        rows[row][4] = self.line(last_end - 1)
                    cur = ind
                    ctx = stack[-1][2]
                else:
                    last_end, cur, ctx = self._dedent(stack, pos, i0, ind, last_end)
            else:
                raise _Unsure  # a header without its block
            pos = m.end()
            last_end = e = m.start(ge)
            pending = data[e - 1] == 58  # ':'
            pending_row = -1
            if m.start(gh) >= 0:
                if after_dec >= 0:
                    if ind != after_dec or (m.start(gkw) < 0 and data[i1] != 64):
                        raise _Unsure  # a decorator must be followed by a definition
                    after_dec = -1
                if m.start(gkw) >= 0:
                    name = m.group(gnm).decode()
                    kind = "class" if data[m.start(gkw)] == 99 else ("method" if ctx[2] == "class" else "function")
                    pq, pl, pk = ctx
                    # [name, qualname, kind, line, end line, scope, local scope, scope kind, local path, name offset]
                    row = [name, f"{pq}.{name}" if pq else name, kind, self.line(i1), 0,
                           pq if pk else "", pl if pk else "", pk, f"{pl}.{name}" if pl else name,
                           m.start(gnm)]
                    rows.append(row)
                    if pending:
                        pending_row = len(rows) - 1
                    else:  # one-line body
                        row[4] = self.line(e - 1)
                elif data[i1] == 64:  # '@'
                    after_dec = ind
                else:
                    self._statement(i1, e, ind == 0, ctx)
            elif after_dec >= 0:
                raise _Unsure  # a decorator must be followed by a definition
            elif ind == 0 and data.find(b";", i1, e) >= 0:
                self._statement(i1, e, True, ctx)  # `import x; NAME = 1`
        if not _TAIL.match(data, pos) or pending or after_dec >= 0:
            raise _Unsure
        self._dedent(stack, pos, len(data), 0, last_end)
        if _unseen_type_statement(data, self.types):
            raise _Unsure  # a `type` statement where this scanner does not look (after `;` or `:`)
        return [(r[0], r[1], r[2], r[3], max(r[3], r[4]), r[5], r[6], r[7]) for r in rows]

    def _dedent(self, stack: list, gap0: int, gap1: int, ind: int,
                last_end: int) -> tuple[int, int, tuple[str, str, str]]:
        """Close the blocks deeper than `ind` (the next statement's indentation), attaching the
        comment lines in data[gap0:gap1] as tree-sitter-python's scanner does: each comment joins
        the innermost open block unless it is indented less than that block, which then closes."""
        data = self.data
        if data.find(b"#", gap0, gap1) >= 0:
            for c in _COMMENT_LINE.finditer(data, gap0, gap1):
                lead = c.group(1)
                if b"\t" in lead or b"\f" in lead:
                    raise _Unsure
                col = len(lead)
                while col < stack[-1][0] and ind < stack[-1][0]:
                    last_end = self._close(stack, last_end)
                last_end = c.end()
        while ind < stack[-1][0]:
            last_end = self._close(stack, last_end)
        top = stack[-1]
        if top[0] != ind:
            raise _Unsure  # dedent to a level that was never opened
        return last_end, ind, top[2]

    def _close(self, stack: list, last_end: int) -> int:
        _ind, row, _ctx = stack.pop()
        if row >= 0:
            self.rows[row][4] = self.line(last_end - 1)
        return last_end

    def _statement(self, s: int, e: int, top: bool, ctx: tuple[str, str, str]) -> None:
        """Module-level `NAME = value` / `NAME: T = value` and `type X = ...` in data[s:e]."""
        data = self.data
        toks = []  # depth-0 tokens; a bracketed group is one token ("g")
        depth = g0 = 0
        for t in _compiled(_TOK).finditer(data, s, e):
            k = t.lastgroup
            if k == "b":
                if depth == 0:
                    g0 = t.start()
                depth += 1
            elif k == "c":
                depth -= 1
                if depth == 0:
                    toks.append(("g", g0, t.end()))
            elif k is not None and depth == 0:
                toks.append((k, t.start(), t.end()))
        if depth or not toks or toks[-1][2] != e:
            raise _Unsure
        segs: list[list] = [[]]
        for t in toks:
            if t[0] == "op" and data[t[1]:t[2]] == b";":
                segs.append([])
            else:
                segs[-1].append(t)
        if top and segs[0] and data[toks[0][1]:toks[0][2]] in _COMPOUND:
            top = False  # `if x: A = 1; B = 2`: both inside the if, not module-level
        for seg in segs:
            if not seg:
                continue
            first = data[seg[0][1]:seg[0][2]]
            if first == b"type" and len(seg) > 1 and seg[1][0] != "op":
                self.types.add(seg[0][1])
                if seg[1][0] == "o" and data[seg[1][1]] != 46:  # `type.x = 1` is an attribute
                    raise _Unsure
                if seg[1][0] != "o":
                    self._type(seg, ctx)
            elif top and seg[0][0] == "id" and not keyword.iskeyword(first.decode()):
                self._assignment(seg, first.decode())

    def _type(self, seg: list, ctx: tuple[str, str, str]) -> None:
        """`type X = ...`; tree-sitter takes any expression left of the `=` as the name."""
        data = self.data
        ops = [j for j in range(2, len(seg)) if seg[j][0] == "op"]
        if not ops:
            return  # `type(x)`: a call
        j = ops[0]
        op = data[seg[j][1]:seg[j][2]]
        if op in _NOT_ALIAS:
            return  # `type(x).n -= 1`, `type(x) == t`: tree-sitter reads no alias either
        if op != b"=" or any(data[seg[k][1]:seg[k][2]] == b"=" for k in ops[1:]):
            raise _Unsure
        name = data[seg[1][1]:seg[j - 1][2]].decode()
        self._row(name, "type", seg[0][1], seg[-1][2], ctx, seg[1][1])

    def _assignment(self, seg: list, name: str) -> None:
        data = self.data
        if len(seg) < 3:
            return
        op = data[seg[1][1]:seg[1][2]]
        if op == b"=":
            r = 2
        elif op == b":":
            r = next((j + 1 for j in range(2, len(seg)) if data[seg[j][1]:seg[j][2]] == b"="), len(seg))
        else:
            return
        if r >= len(seg):
            return  # `NAME: T` declares, assigns nothing
        kind = ""
        if data[seg[r][1]:seg[r][2]] == b"lambda":
            colon = next((j for j in range(r + 1, len(seg)) if data[seg[j][1]:seg[j][2]] == b":"), -1)
            if colon < 0 or any(data[seg[j][1]:seg[j][2]] == b"lambda" for j in range(r + 1, colon)):
                raise _Unsure
            if not any(data[seg[j][1]:seg[j][2]] == b"," for j in range(colon + 1, len(seg))):
                kind = "function"  # (a trailing depth-0 comma makes it a tuple)
        if not kind and (name.isupper() or name.lstrip("_").isupper()):
            kind = "constant"
        if kind:
            self._row(name, kind, seg[0][1], seg[-1][2], (self.module, "", ""), seg[0][1])

    def _row(self, name: str, kind: str, s: int, e: int, ctx: tuple[str, str, str], at: int) -> None:
        pq, pl, pk = ctx
        line = self.line(s)
        self.rows.append([name, f"{pq}.{name}" if pq else name, kind, line, self.line(e - 1),
                          pq if pk else "", pl if pk else "", pk, "", at])
