"""How each language writes a type, reduced to what call resolution needs.

`TypeExpr` is one of: a named type (`pkg.Server`, `crate::a::Config`, with generic arguments), a
builtin (never a repository symbol), a container or wrapper whose element a `[i]`, `?`, `await`
or `.unwrap()` reaches (`[]*T`, `Vec<T>`, `Option<T>`, `Promise<T>`), or transparent (`Box<T>`,
`*T`: calls go to T's methods). Per-language tables live in the sibling modules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Named:
    parts: tuple[str, ...]  # `pkg.T` -> ("pkg", "T")
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Builtin:
    pass


@dataclass(frozen=True, slots=True)
class Holder:
    """A value outside the repository that holds an element: index, `?`, `await`, `.unwrap()`."""

    elem: str  # the element's type text ("" when not written)


TypeExpr = Named | Builtin | Holder | None
BUILTIN = Builtin()


def split_args(text: str, open_: str = "<", close: str = ">") -> tuple[str, tuple[str, ...]]:
    """`Foo<A, B<C>>` -> ("Foo", ("A", "B<C>")); text without arguments -> (text, ())."""
    i = text.find(open_)
    if i < 0 or not text.endswith(close):
        return text, ()
    inner = text[i + 1:-1]
    args: list[str] = []
    depth = 0
    cur = ""
    for ch in inner:
        if ch in "<[(":
            depth += 1
        elif ch in ">])":
            depth -= 1
        if ch == "," and depth == 0:
            args.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        args.append(cur)
    return text[:i], tuple(a.strip() for a in args)


_PATH = re.compile(r"^[A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)*$")


def path_parts(text: str) -> tuple[str, ...] | None:
    if not _PATH.match(text):
        return None
    return tuple(p for p in re.split(r"\.|::", text) if p)
