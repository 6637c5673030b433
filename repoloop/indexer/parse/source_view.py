"""What tree-sitter parses: a C or C++ file's bytes with the few idioms its grammars cannot read
blanked out or respelled, byte for byte, so every node's offsets and lines are the file's own and
names are read from the file itself. Other languages are parsed as they are.

Why: tree-sitter knows no preprocessor, and three common idioms made it lose definitions or nest
whole files of functions inside one:
- a library's class heads carry an export macro (`class YAML_CPP_API Node {`, `class
  LEVELDB_EXPORT Slice final : public Base {`): read as a function declaration, the class, its
  methods and often the rest of the namespace were lost. The macro is blanked, as the preprocessor
  expands an empty export macro.
- both branches of an `#if`/`#else` open the same block (`#ifdef _WIN32` / `if (a) {` / `#else` /
  `if (b) {` / `#endif`): tree-sitter saw two opening braces for one closing one, and the function
  swallowed every function after it (libuv's `uv__tty_write_bufs` held 14). One branch is kept,
  the one a compiler takes with no configuration macro defined (`#ifdef _WIN32` / `int umain(...) {`
  / `#else` / `int main(...) {` is `main`); the others are blanked.
- a loop macro opening a block (`uv__queue_foreach(q, &h) {`, `list_for_each_entry(p, l, m) {`)
  read as a function definition nested in the function. It is respelled `while (q, &h) {`.
- a struct's fields given by a bare macro line (`struct uv_timer_s {` / `UV_HANDLE_FIELDS` / `};`)
  left the braces open: libuv's `uv.h` nested 30 later structs and enums in one. The line ends in
  `;` instead of its last letter, a member tree-sitter can read.
"""

from __future__ import annotations

import re

# `class|struct MACRO Name` then `{`, `:`, `final` or the end of the line; the macro ALL CAPS.
_EXPORT_MACRO = re.compile(
    rb"^([ \t]*(?:template[ \t]*<[^>\n]*>[ \t]*)?(?:class|struct)[ \t]+)([A-Z][A-Z0-9_]*[A-Z0-9])"
    rb"(?=[ \t]+[A-Za-z_]\w*[ \t]*(?:final\b[ \t]*)?(?:[:{]|$))", re.M)
_LOOP_MACRO = re.compile(
    rb"^([ \t]+)([A-Za-z_]\w*(?:foreach|FOREACH|for_each|FOR_EACH)\w*)(?=[ \t]*\(.*\)[ \t]*\{[ \t]*$)", re.M)
_DIRECTIVE = re.compile(rb"^[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b[ \t]*(.*)")


def source_view(source: bytes, language: str) -> bytes:
    """`source` as tree-sitter should see it (the same length, the same line breaks)."""
    if language not in ("c", "cpp"):
        return source
    out = source
    if language == "cpp" and (b"class" in out or b"struct" in out):
        out = _EXPORT_MACRO.sub(lambda m: m.group(1) + b" " * len(m.group(2)), out)
    if b"each" in out or b"EACH" in out:
        out = _LOOP_MACRO.sub(lambda m: m.group(1) + b"while".ljust(len(m.group(2))), out)
    if b"#" in out and b"{" in out:
        out = _one_branch(out)
    if b"{" in out:
        out = _bare_macro_lines(out)
    return out


_BARE_MACRO = re.compile(rb"^[ \t]+[A-Z][A-Z0-9_]*[A-Z0-9][ \t]*\r?$")
_COMMENT = re.compile(rb"/\*.*?\*/|//.*$")


def _bare_macro_lines(source: bytes) -> bytes:
    """A line holding only an ALL-CAPS macro after `{`, `;`, `}` or another such line (a struct's
    field list, `UV_HANDLE_FIELDS`) ends in `;` instead of its last letter: a member tree-sitter
    can read, where the bare name joined the next line's declaration and left the braces open."""
    lines = source.splitlines(keepends=True)
    prev = b"{"
    changed = False
    for i, line in enumerate(lines):
        body = line.rstrip(b"\r\n")
        if _BARE_MACRO.match(body) and prev[-1:] in (b"{", b";", b"}"):
            k = len(body.rstrip())
            lines[i] = body[: k - 1] + b";" + line[k:]
            prev, changed = b";", True
            continue
        code = _COMMENT.sub(b"", body).rstrip()
        if code.strip() and not code.lstrip().startswith(b"#"):
            prev = code
    return b"".join(lines) if changed else source


def _blank(line: bytes) -> bytes:
    return re.sub(rb"[^\r\n]", b" ", line)


def _one_branch(source: bytes) -> bytes:
    """Of each `#if` group whose branches all open (or close) the same number of braces, keep the
    branch a compiler takes with no configuration macro defined (`#ifndef X`, `#if !X`, `#if 1`:
    the first; `#ifdef X`, `#if defined(X)`: the `#else`); blank the others and the directives."""
    lines = source.splitlines(keepends=True)
    stack: list[list[list[int]]] = []  # per open group: [first body line, end line, directive line]
    words: list[list[bytes]] = []  # per open group: its directives' words
    taken: list[bool] = []  # per open group: whether its first branch is taken
    changed = False
    for i, line in enumerate(lines):
        m = _DIRECTIVE.match(line)
        if m is None:
            continue
        word = m.group(1)
        if word.startswith(b"if"):
            stack.append([[i + 1, -1, i]])
            words.append([word])
            taken.append(_first_taken(word, m.group(2)))
        elif word in (b"elif", b"else") and stack:
            stack[-1][-1][1] = i
            stack[-1].append([i + 1, -1, i])
            words[-1].append(word)
        elif word == b"endif" and stack:
            branches, kinds, first = stack.pop(), words.pop(), taken.pop()
            branches[-1][1] = i
            keep = 0 if first else (len(kinds) - 1 if kinds[-1] == b"else" else -1)
            if len(branches) < 2 or keep < 0:
                continue
            nets = {_net_braces(lines[s:e]) for s, e, _d in branches}
            if len(nets) != 1 or nets == {0}:
                continue
            for n, (s, e, d) in enumerate(branches):
                lines[d] = _blank(lines[d])
                if n != keep:
                    for j in range(s, e):
                        lines[j] = _blank(lines[j])
            lines[i] = _blank(lines[i])
            changed = True
    return b"".join(lines) if changed else source


def _first_taken(word: bytes, rest: bytes) -> bool:
    """Whether the first branch of `#<word> <rest>` is taken when no configuration macro is defined."""
    if word != b"if":
        return word == b"ifndef"
    expr = rest.split(b"//", 1)[0].split(b"/*", 1)[0].strip()
    return expr.startswith(b"!") or expr == b"1"


def _net_braces(lines: list[bytes]) -> int:
    body = b"".join(lines)
    return body.count(b"{") - body.count(b"}")
