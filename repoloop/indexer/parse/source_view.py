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
  swallowed every function after it (libuv's `uv__tty_write_bufs` held 14). Only the first branch
  is kept, as a compiler sees one; the others are blanked.
- a loop macro opening a block (`uv__queue_foreach(q, &h) {`, `list_for_each_entry(p, l, m) {`)
  read as a function definition nested in the function. It is respelled `while (q, &h) {`.
"""

from __future__ import annotations

import re

# `class|struct MACRO Name` then `{`, `:`, `final` or the end of the line; the macro ALL CAPS.
_EXPORT_MACRO = re.compile(
    rb"^([ \t]*(?:template[ \t]*<[^>\n]*>[ \t]*)?(?:class|struct)[ \t]+)([A-Z][A-Z0-9_]*[A-Z0-9])"
    rb"(?=[ \t]+[A-Za-z_]\w*[ \t]*(?:final\b[ \t]*)?(?:[:{]|$))", re.M)
_LOOP_MACRO = re.compile(
    rb"^([ \t]+)([A-Za-z_]\w*(?:foreach|FOREACH|for_each|FOR_EACH)\w*)(?=[ \t]*\(.*\)[ \t]*\{[ \t]*$)", re.M)
_DIRECTIVE = re.compile(rb"^[ \t]*#[ \t]*(if|ifdef|ifndef|elif|else|endif)\b")


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
    return out


def _blank(line: bytes) -> bytes:
    return re.sub(rb"[^\r\n]", b" ", line)


def _one_branch(source: bytes) -> bytes:
    """Of each `#if` group whose branches all open (or close) the same number of braces, keep the
    first branch; blank the others and the group's directives."""
    lines = source.splitlines(keepends=True)
    stack: list[list[list[int]]] = []  # per open group: its branches as [first body line, end, directive line]
    changed = False
    for i, line in enumerate(lines):
        m = _DIRECTIVE.match(line)
        if m is None:
            continue
        word = m.group(1)
        if word.startswith(b"if"):
            stack.append([[i + 1, -1, i]])
        elif word in (b"elif", b"else") and stack:
            stack[-1][-1][1] = i
            stack[-1].append([i + 1, -1, i])
        elif word == b"endif" and stack:
            branches = stack.pop()
            branches[-1][1] = i
            if len(branches) < 2:
                continue
            nets = {_net_braces(lines[s:e]) for s, e, _d in branches}
            if len(nets) != 1 or nets == {0}:
                continue
            for s, e, _d in branches[1:]:
                for j in range(s, e):
                    lines[j] = _blank(lines[j])
            for _s, _e, d in branches:
                lines[d] = _blank(lines[d])
            lines[i] = _blank(lines[i])
            changed = True
    return b"".join(lines) if changed else source


def _net_braces(lines: list[bytes]) -> int:
    body = b"".join(lines)
    return body.count(b"{") - body.count(b"}")
