"""Exact and fuzzy matches of a query's identifiers and paths against symbols and files, and the
stack-trace / file:line signal.

Both answer in chunk ids. Paths from traces are usually absolute (`/home/u/proj/pkg/mod.py`); they
are resolved to repository files by the longest matching path suffix.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field

from repoloop.retrieval.fusion import Ranked
from repoloop.retrieval.limits import check_deadline
from repoloop.retrieval.query import QueryAnalysis
from repoloop.retrieval.weights import Weights

_MAX_PER_NAME = 20  # a name defined in more places than this is too common to be evidence
_MAX_PER_WORD = 5  # the same for plain words, weaker evidence
_MAX_FILE_CHUNKS = 30


def _norm(name: str) -> str:
    return name.replace("_", "").lower()


def _split(ident: str) -> list[str]:
    return [p for p in re.split(r"\.|::", ident) if p]


@dataclass(slots=True)
class PathIndex:
    """Repository paths by basename, for suffix resolution of mentioned paths (loaded once)."""

    by_base: dict[str, list[str]] = field(default_factory=dict)
    by_stem: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> PathIndex:
        idx = cls()
        for (path,) in conn.execute("SELECT path FROM files"):
            base = path.rsplit("/", 1)[-1]
            idx.by_base.setdefault(base, []).append(path)
            idx.by_stem.setdefault(base.rsplit(".", 1)[0], []).append(path)
        return idx

    def resolve(self, mentioned: str) -> list[str]:
        """Repository files that `mentioned` most plausibly names (longest common suffix wins)."""
        p = mentioned.replace("\\", "/").removeprefix("file://")
        p = re.sub(r"^[A-Za-z]:", "", p)
        parts = [x for x in p.split("/") if x not in ("", ".")]
        if not parts:
            return []
        cands = self.by_base.get(parts[-1], [])
        best, out = 0, []
        for c in cands:
            cp = c.split("/")
            n = 0
            while n < min(len(cp), len(parts)) and cp[-1 - n] == parts[-1 - n]:
                n += 1
            if n > best:
                best, out = n, [c]
            elif n == best and n:
                out.append(c)
        return out


class NameMatcher:
    """Symbol-name, qualname-suffix, module and path matches on one store connection."""

    def __init__(self, conn: sqlite3.Connection, weights: Weights) -> None:
        self.conn = conn
        self.weights = weights
        self._paths: PathIndex | None = None
        self._fuzzy: dict[str, list[str]] | None = None
        self._modules: dict[str, str] | None = None

    @property
    def paths(self) -> PathIndex:
        if self._paths is None:
            self._paths = PathIndex.load(self.conn)
        return self._paths

    @property
    def modules(self) -> dict[str, str]:
        """Module name -> its file (the first one indexed), loaded once: `files.module` has no
        index, and a query's dotted names would each scan the table for every prefix."""
        if self._modules is None:
            self._modules = {}
            for module, path in self.conn.execute("SELECT module, path FROM files WHERE module != '' ORDER BY rowid"):
                self._modules.setdefault(module, path)
        return self._modules

    def _fuzzy_names(self, name: str) -> list[str]:
        if self._fuzzy is None:
            self._fuzzy = {}
            for (n,) in self.conn.execute("SELECT DISTINCT name FROM symbols"):
                self._fuzzy.setdefault(_norm(n), []).append(n)
        return self._fuzzy.get(_norm(name), [])

    # -- symbol -> chunks ---------------------------------------------------------------------
    def _symbol_chunks(self, name: str, qual_suffix: str | None, max_defs: int = _MAX_PER_NAME,
                       focus: dict[int, str] | None = None) -> list[int]:
        return self._symbol_defs(name, qual_suffix, max_defs, focus)[0]

    def _symbol_defs(self, name: str, qual_suffix: str | None, max_defs: int = _MAX_PER_NAME,
                     focus: dict[int, str] | None = None) -> tuple[list[int], int]:
        """Chunks of the definitions of `name` (matching the qualname suffix), and how many
        definitions matched: a name defined in one place is stronger evidence than one in ten."""
        rows = self.conn.execute(
            "SELECT s.file_id, s.qualname, s.start_line, s.end_line FROM symbols s WHERE s.name=? LIMIT ?",
            (name, max_defs + 1),
        ).fetchall()
        if len(rows) > max_defs:
            return [], 0
        out: list[int] = []
        n_defs = 0
        for fid, qual, start, end in rows:
            if qual_suffix and not (qual == qual_suffix or qual.endswith("." + qual_suffix)
                                    or qual.replace("::", ".").endswith(qual_suffix)):
                continue
            n_defs += 1
            ids = [r[0] for r in self.conn.execute(
                "SELECT id FROM chunks WHERE file_id=? AND symbol=? ORDER BY start_line", (fid, qual))]
            if not ids:  # the symbol is inside a larger chunk (or split): chunks overlapping it
                ids = [r[0] for r in self.conn.execute(
                    "SELECT id FROM chunks WHERE file_id=? AND start_line<=? AND end_line>=?"
                    " ORDER BY (end_line-start_line) LIMIT 3", (fid, end, start))]
                if focus is not None:
                    for cid in ids:
                        focus.setdefault(cid, qual)
            out.extend(ids)
        return out, n_defs

    def _file_chunks(self, path: str) -> list[int]:
        return [r[0] for r in self.conn.execute(
            "SELECT c.id FROM chunks c JOIN files f ON f.id=c.file_id WHERE f.path=?"
            " ORDER BY c.start_line LIMIT ?", (path, _MAX_FILE_CHUNKS))]

    def chunk_at(self, path: str, line: int) -> int | None:
        """The smallest chunk of `path` containing `line`."""
        row = self.conn.execute(
            "SELECT c.id FROM chunks c JOIN files f ON f.id=c.file_id WHERE f.path=? AND c.start_line<=?"
            " AND c.end_line>=? ORDER BY (c.end_line-c.start_line) LIMIT 1", (path, line, line)).fetchone()
        return row[0] if row else None

    # -- signals ------------------------------------------------------------------------------
    def names(self, qa: QueryAnalysis, limit: int) -> Ranked:
        w = self.weights
        scores: dict[int, float] = {}
        focus: dict[int, str] = {}

        def add(ids: list[int], score: float) -> None:
            for cid in ids:
                if scores.get(cid, 0.0) < score:
                    scores[cid] = score

        # One look-up per (name, qualifier) in a query: the same part can recur in many dotted
        # identifiers (a.b.c, b.a.c, ...), and each look-up is SQL.
        defs: dict[tuple[str, str | None, int], tuple[list[int], int]] = {}

        def add_defs(name: str, suffix: str | None, score: float, max_defs: int = _MAX_PER_NAME) -> list[int]:
            key = (name, suffix, max_defs)
            got = defs.get(key)
            if got is None:
                check_deadline()
                got = defs[key] = self._symbol_defs(name, suffix, max_defs, focus)
            ids, n = got
            if n:
                add(ids, score / n ** w.name_spread)  # spread over the places that define it
            return ids

        for ident in qa.identifiers:
            parts = _split(ident)
            if not parts:
                continue
            last = parts[-1]
            if len(parts) > 1:
                add_defs(last, ".".join(parts), w.name_exact_ident + 0.1)
                for p in dict.fromkeys(parts[:-1]):  # Class in Class.method; a module in mod.func
                    add_defs(p, None, w.name_exact_ident * 0.6)
                # The longest prefix that is a module: pkg.mod in pkg.mod.Class.attr.
                for i in range(len(parts), 1, -1):
                    path = self.modules.get(".".join(parts[:i]))
                    if path:
                        add(self._file_chunks(path), w.name_path)
                        break
            exact = add_defs(last, None, w.name_exact_ident)
            if not exact:
                for n in self._fuzzy_names(last):
                    add_defs(n, None, w.name_fuzzy_ident)
        for word in qa.words:
            add_defs(word, None, w.name_word, _MAX_PER_WORD)
        for p in qa.paths:
            check_deadline()
            for path in self.paths.resolve(p)[:3]:
                add(self._file_chunks(path), w.name_path)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        return Ranked("name", [k for k, _ in ranked], [v for _, v in ranked], scaled=True, focus=focus)

    def trace(self, qa: QueryAnalysis, limit: int) -> Ranked:
        """Chunks at stack-trace frames and file:line mentions, innermost frame first."""
        ids: list[int] = []
        scores: list[float] = []
        focus: dict[int, str] = {}
        locs = [(f.path, f.line, f.func) for f in qa.frames] + [(p, ln, None) for p, ln in qa.locations]
        for i, (mentioned, line, func) in enumerate(locs):
            check_deadline()
            for path in self.paths.resolve(mentioned)[:3]:
                cid = self.chunk_at(path, line) if line else None
                if cid is None and func:
                    row = self.conn.execute(
                        "SELECT s.start_line FROM symbols s JOIN files f ON f.id=s.file_id WHERE f.path=?"
                        " AND s.name=? ORDER BY s.start_line LIMIT 1", (path, func)).fetchone()
                    cid = self.chunk_at(path, row[0]) if row else None
                if cid is not None and cid not in ids:
                    ids.append(cid)
                    scores.append(1.0 / (1 + i))
                    if line:
                        inner = self.symbol_at(path, line)
                        if inner:
                            focus[cid] = inner
        return Ranked("trace", ids[:limit], scores[:limit], focus=focus)

    def symbol_at(self, path: str, line: int) -> str | None:
        """The innermost definition of `path` containing `line`."""
        row = self.conn.execute(
            "SELECT s.qualname FROM symbols s JOIN files f ON f.id=s.file_id WHERE f.path=? AND s.start_line<=?"
            " AND s.end_line>=? ORDER BY (s.end_line-s.start_line), s.start_line DESC LIMIT 1",
            (path, line, line)).fetchone()
        return row[0] if row else None
