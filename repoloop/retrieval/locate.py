"""Function-level localization: "which files, and which functions in them, does this issue touch?"

`search` ranks chunks; `locate` answers the question a coding agent asks first: the most likely
files, each with its most likely definitions. The file order is exactly `search`'s (the same fused
ranking, the same per-file cap), so file-level accuracy is unchanged; within each of the top files
every definition is scored from the evidence that points at it:

- **chunks** — the fused score of the chunks that lie in the definition (its own chunks fully, the
  chunk of an enclosing class partly), i.e. BM25, names, graph, trace and dense as fused;
- **names** — the definition's name is an identifier of the issue (exact, then case/underscore
  insensitive), a plain word of it, or the name's own words are the issue's words (`parse_date` for
  "parsing a date");
- **trace** — a stack frame or `file:line` inside the definition, or a frame naming it, innermost
  frame strongest;
- **graph** — personalized PageRank from the best-evidenced definitions over the call/import graph
  (a caller or callee of what the issue names);
- **dense** — the chunk's cosine to the issue where the index has embeddings (or the re-rank's best
  chunk of the file on a `--no-embed` index with `--rerank`).

`Located.results()` flattens the answer into the scoring contract's list (`path`, `symbol`, lines,
`score`): one order over every file's definitions (relative score within the file, times the file's
score), a file's first definition never before a better-ranked file's, so file metrics stay search's.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from repoloop.indexer.lexical_tokens import code_tokens
from repoloop.retrieval.fusion import Fused
from repoloop.retrieval.hits import take_hits
from repoloop.retrieval.limits import bounded_prefix, check_deadline
from repoloop.retrieval.query import QueryAnalysis, analyze
from repoloop.retrieval.rows import ChunkRow

if TYPE_CHECKING:
    from repoloop.retrieval.retriever import HybridRetriever

# Definitions that can be "the code to change" (not variables, fields, constants or imports).
DEF_KINDS = ("function", "method", "class", "struct", "interface", "trait", "enum", "impl", "type",
             "constructor", "macro")  # not namespaces or inline modules (a Rust `mod` of 2,800 lines)
_EMPTY: frozenset[str] = frozenset()
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


@dataclass(slots=True, frozen=True)
class LocateWeights:
    """How evidence adds up per definition. Chosen on the tuning part of benchmarks/loc_split.json only
    (commit sets flask, gin, serde, zod; 150 subjects), SymAcc@10 there: first version (text 0.6,
    container 0.85, caps 3-2-2-1, keep 0.5) 65.4; text 1.5 + container 0.6 + mix 0.25 71.4 (RESULTS.md,
    "Function-level localization")."""

    chunk: float = 1.0  # x (fused chunk score / best fused score)
    inner_share: float = 0.5  # a method's share of its class chunk's evidence
    ident: float = 1.0  # the name is an identifier of the query
    fuzzy: float = 0.6  # ... ignoring case and underscores
    word: float = 0.25  # the name is a plain word of the query
    name_words: float = 0.5  # x share of the name's words (3+ letters) found among the query's words
    text: float = 1.5  # x idf mass of the query's terms in the definition's own lines / the best one's
    text_len_b: float = 0.0  # BM25-like length normalisation of that mass: / (1 - b + b * lines / mean lines)
    trace: float = 2.0  # a frame / file:line inside the definition (/ (1 + frame index))
    trace_func: float = 1.5  # a frame naming the definition in this file
    graph: float = 0.3  # x (PageRank / best PageRank among the candidates)
    graph_seeds: int = 5
    dense: float = 0.5  # x cosine of the definition's best chunk (embedded index)
    rerank_best: float = 0.3  # the re-rank's best chunk of the file lies in this definition
    rerank_dense: float = 0.5  # x cosine of the definition's best chunk among those the re-rank embedded
    container: float = 0.6  # a class/struct/impl scores this share (its methods are the likelier edit)
    # Flattening: the i-th file gives up to caps[i] definitions (the last cap for later files), each
    # beyond the first only when it scores at least `keep` x the file's best.
    caps: tuple[int, ...] = (3, 2, 2, 1)
    keep: float = 0.5
    # slots > 0: a file instead gives as many definitions as search's first 10 hits hold of it
    # (at least one) plus `slots - 1`, without the `keep` cut
    slots: int = 0
    # mix > 0: one order over every file's definitions instead of caps (see Located._mixed)
    mix: float = 0.25


DEFAULT_LOCATE = LocateWeights()


@dataclass(slots=True)
class FunctionHit:
    symbol: str  # qualified name
    name: str
    kind: str
    start_line: int
    end_line: int
    score: float
    evidence: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"symbol": self.symbol, "name": self.name, "kind": self.kind, "start_line": self.start_line,
                "end_line": self.end_line, "score": round(self.score, 6),
                "evidence": {k: round(v, 4) for k, v in self.evidence.items()}}


@dataclass(slots=True)
class FileHit:
    path: str
    score: float
    functions: list[FunctionHit] = field(default_factory=list)
    hits: int = 0  # of search's first 10 hits, how many are in this file

    def to_json(self) -> dict:
        return {"path": self.path, "score": round(self.score, 6), "functions": [f.to_json() for f in self.functions]}


@dataclass(slots=True)
class Located:
    files: list[FileHit]
    weights: LocateWeights = DEFAULT_LOCATE

    def results(self, caps: tuple[int, ...] | None = None, keep: float | None = None) -> list[dict]:
        """The flat list of the scoring contract: every file appears (in file order); by default one
        order over all definitions (`_mixed`); with mix 0 file-major,
        the first files with up to caps[i] definitions each."""
        if self.weights.mix > 0 and caps is None:
            return self._mixed()
        caps = caps or self.weights.caps
        keep = self.weights.keep if keep is None else keep
        out: list[dict] = []
        slots = self.weights.slots
        for i, f in enumerate(self.files):
            cap = caps[min(i, len(caps) - 1)] if not slots else max(1, f.hits) + slots - 1
            if not f.functions:
                out.append({"path": f.path, "symbol": None, "start_line": None, "end_line": None,
                            "kind": "file", "score": round(f.score, 6)})
                continue
            best = f.functions[0].score
            for j, fn in enumerate(f.functions[:cap]):
                if j and not slots and fn.score < keep * best:
                    break
                out.append({"path": f.path, "symbol": fn.symbol, "start_line": fn.start_line,
                            "end_line": fn.end_line, "kind": fn.kind, "score": round(fn.score, 6)})
        return out

    def _mixed(self) -> list[dict]:
        """Definitions of all files in one order: (score / its file's best) ** mix x (file score / the
        first file's), a file's first definition never before a better-ranked file's first one (file
        order stays search's); then the files without definitions."""
        if not self.files:
            return []
        top = self.files[0].score or 1.0
        cands: list[tuple[float, int, int]] = []
        for i, f in enumerate(self.files):
            if f.functions:
                best = f.functions[0].score or 1.0
                for j, fn in enumerate(f.functions):
                    g = (max(fn.score, 0.0) / best) ** self.weights.mix * (f.score / top)
                    cands.append((-g, i, j))
        cands.sort()
        out: list[dict] = []
        opened = 0  # files[:opened] have their first definition listed

        def emit(i: int, j: int) -> None:
            f = self.files[i]
            if not f.functions:
                out.append({"path": f.path, "symbol": None, "start_line": None, "end_line": None,
                            "kind": "file", "score": round(f.score, 6)})
                return
            fn = f.functions[j]
            out.append({"path": f.path, "symbol": fn.symbol, "start_line": fn.start_line,
                        "end_line": fn.end_line, "kind": fn.kind, "score": round(fn.score, 6)})

        done: set[tuple[int, int]] = set()
        for _, i, j in cands:
            if (i, j) in done:
                continue
            while opened <= i:  # better files first: their first definitions (or the file itself)
                if (opened, 0) not in done:
                    emit(opened, 0)
                    done.add((opened, 0))
                opened += 1
            if (i, j) not in done:
                emit(i, j)
                done.add((i, j))
        while opened < len(self.files):
            if (opened, 0) not in done:
                emit(opened, 0)
            opened += 1
        return out

    def to_json(self) -> dict:
        return {"files": [f.to_json() for f in self.files], "results": self.results()}


@dataclass(slots=True)
class _Def:
    qualname: str
    name: str
    kind: str
    start: int
    end: int
    parent: str | None
    ev: dict[str, float] = field(default_factory=dict)
    children: tuple[int, int] | None = None  # first and last line of the definitions nested in it
    inner: list[tuple[int, int]] = field(default_factory=list)  # their spans

    def add(self, what: str, v: float) -> None:
        if v > self.ev.get(what, 0.0):
            self.ev[what] = v

    @property
    def span(self) -> int:
        return self.end - self.start


def name_words(name: str) -> list[str]:
    """The words of an identifier, lowercased: `parseHTTPDate` -> parse, http, date."""
    out: list[str] = []
    for part in re.split(r"[_\W]+", name):
        out += [w.lower() for w in _CAMEL.findall(part)]
    return out


def _stem(w: str) -> str:
    for suf in ("ing", "ed", "es", "s"):
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            return w[: -len(suf)]
    return w


def _lines_with(lines: list[str], rx: re.Pattern[str]) -> list[int]:
    """Indexes of the lines where `rx` matches the lowercased text (one scan of the whole file)."""
    text = "\n".join(lines).lower()
    starts = [0]
    for ln in lines:
        starts.append(starts[-1] + len(ln) + 1)
    out: list[int] = []
    last = -1
    for m in rx.finditer(text):
        i = bisect.bisect_right(starts, m.start()) - 1
        if i != last:
            out.append(i)
            last = i
    return out


def _outside(start: int, end: int, inner: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The line ranges of start..end not covered by the `inner` spans."""
    out: list[tuple[int, int]] = []
    cur = start
    for a, b in sorted(inner):
        if a > cur:
            out.append((cur, a - 1))
        cur = max(cur, b + 1)
    if cur <= end:
        out.append((cur, end))
    return out


def _norm(name: str) -> str:
    return name.replace("_", "").lower()


class Locator:
    """Function-level localization over an open HybridRetriever (kept warm by its caller; callers
    outside retrieval ask it through `Retriever.locate`)."""

    def __init__(self, retriever: HybridRetriever, weights: LocateWeights | None = None) -> None:
        self.r = retriever
        self.w = weights or DEFAULT_LOCATE

    def locate(self, query: str, k: int = 10, *, functions: int = 5,
               signals: Iterable[str] | str | None = None) -> Located:
        """The k most likely files (search's order), each with its `functions` best definitions."""
        fused, rows = self.r.fused(query, k, signals=signals)
        rw = self.r.weights
        cap = rw.per_file
        order: dict[str, float] = {}
        counts: dict[str, int] = {}
        # Files in the order of search(query, k)'s hits, then (when those name fewer than k files)
        # of a longer list's: the first files are exactly search's.
        for n in (k, 3 * k):
            head = math.ceil(rw.free_head * n) if cap else n
            ranked = ((f, rows[f.chunk_id]) for f in fused if f.chunk_id in rows)
            for j, h in enumerate(take_hits(ranked, n, head=head, cap=cap)):
                order.setdefault(h.path, h.score)
                if n == k and j < 10:
                    counts[h.path] = counts.get(h.path, 0) + 1
            if len(order) >= k:
                break
        paths = list(order)[:k]
        if not paths:
            return Located([], self.w)
        qa = analyze(bounded_prefix(query))
        defs = self._definitions(paths)
        top = fused[0].score if fused else 1.0
        self._chunk_evidence(defs, fused, rows, top or 1.0)
        self._name_evidence(defs, qa, query)
        self._text_evidence(defs, query)
        self._trace_evidence(defs, qa)
        self._rerank_evidence(defs, rows)
        self._graph_evidence(defs)
        files = []
        for p in paths:
            fns = [self._hit(d) for d in defs.get(p, [])]
            fns = [f for f in fns if f.score > 0] or fns[:0]
            fns.sort(key=lambda f: (-f.score, f.end_line - f.start_line, f.start_line))
            # One line per name: overloads, a Rust item under two `#[cfg]`s, a type's several
            # `impl` blocks are one place to look, not several slots of the list (the best kept).
            named: dict[str, FunctionHit] = {}
            for f in fns:
                named.setdefault(f.symbol, f)
            files.append(FileHit(p, order[p], list(named.values())[:functions], counts.get(p, 0)))
        return Located(files, self.w)

    # -- candidates ---------------------------------------------------------------------------
    def _definitions(self, paths: list[str]) -> dict[str, list[_Def]]:
        out: dict[str, list[_Def]] = {p: [] for p in paths}
        marks = ",".join("?" * len(paths))
        kinds = ",".join("?" * len(DEF_KINDS))
        for path, qual, name, kind, s, e, parent in self.r.store.conn.execute(
                f"SELECT f.path, s.qualname, s.name, s.kind, s.start_line, s.end_line, s.parent FROM symbols s"
                f" JOIN files f ON f.id=s.file_id WHERE f.path IN ({marks}) AND s.kind IN ({kinds})",
                (*paths, *DEF_KINDS)):
            out[path].append(_Def(qual, name, kind, s, e, parent))
        check_deadline()
        for ds in out.values():  # nested definitions: by the sorted starts, not all pairs (a C++
            ds.sort(key=lambda d: (d.start, -d.end))  # header holds thousands of definitions)
            starts = [d.start for d in ds]
            for i, d in enumerate(ds):
                hi = bisect.bisect_right(starts, d.end)
                d.inner = [(c.start, c.end) for c in ds[i + 1 : hi]
                           if c.end <= d.end and (c.start, c.end) != (d.start, d.end)]
                if d.inner:
                    d.children = (min(a for a, _ in d.inner), max(b for _, b in d.inner))
        return out

    # -- evidence -----------------------------------------------------------------------------
    def _chunk_evidence(self, defs: dict[str, list[_Def]], fused: list[Fused], rows: dict[int, ChunkRow],
                        top: float) -> None:
        w = self.w
        for f in fused:
            row = rows.get(f.chunk_id)
            if row is None or row.path not in defs:
                continue
            path, cs, ce, csym = row.path, row.start_line, row.end_line, row.symbol
            s = f.score / top
            dense = f.signals.get("dense", {}).get("score") if f.signals else None
            for d in defs[path]:
                if d.end < cs or d.start > ce:
                    continue
                if csym == d.qualname and d.children and cs <= d.children[0] and ce >= d.children[1]:
                    share = w.inner_share  # a class's chunk holding its methods: evidence for them as much
                elif csym == d.qualname or (d.start <= cs and d.end >= ce):
                    share = 1.0  # the chunk is (part of) this definition
                elif cs <= d.start and ce >= d.end:
                    share = w.inner_share  # the definition lies inside a bigger chunk (a class's)
                else:
                    continue
                d.add("chunks", w.chunk * s * share)
                if dense is not None:
                    d.add("dense", w.dense * max(0.0, float(dense)) * share)

    def _name_evidence(self, defs: dict[str, list[_Def]], qa: QueryAnalysis, query: str) -> None:
        w = self.w
        bare: set[str] = set()  # identifiers of one part: `parse_date`
        lasts: set[str] = set()  # the last part of a dotted one: `send` of `Session.send`
        outer: set[str] = set()  # its other parts: `Session`
        pairs: set[str] = set()  # its last two parts: `Session.send`
        for ident in qa.identifiers:
            parts = [p for p in re.split(r"\.|::", ident) if p]
            if len(parts) == 1:
                bare.add(parts[0])
            elif parts:
                lasts.add(parts[-1])
                outer.update(parts[:-1])
                pairs.add(".".join(parts[-2:]))
        fuzzy = {_norm(i) for i in bare | lasts}
        words = {x.lower() for x in qa.words}
        qwords = {_stem(t) for t in code_tokens(bounded_prefix(query), stop=True) if len(t) >= 3}
        for ds in defs.values():
            for d in ds:
                if any(d.qualname.endswith("." + p) or d.qualname == p for p in pairs):
                    d.add("name", w.ident * 1.2)
                elif d.name in bare:
                    d.add("name", w.ident)
                elif d.name in lasts or d.name in outer:
                    d.add("name", w.ident * 0.6)
                elif _norm(d.name) in fuzzy:
                    d.add("name", w.fuzzy)
                elif d.name.lower() in words:
                    d.add("name", w.word)
                nw = [x for x in name_words(d.name) if len(x) >= 3]
                if nw:
                    share = sum(1 for x in nw if _stem(x) in qwords) / len(nw)
                    if share:
                        d.add("name_words", w.name_words * share)

    def _text_evidence(self, defs: dict[str, list[_Def]], query: str) -> None:
        """The rarer query terms a definition's own lines hold (nested definitions' lines excluded),
        idf-weighted, relative to the best candidate: tells apart the methods of one class chunk."""
        w = self.w
        if w.text <= 0:
            return
        lex = self.r.lexical
        terms = lex.terms(query)
        if not terms:
            return
        single = [t for t in terms if "_" not in t]
        df = lex._doc_freq(single)
        n = max(df.values(), default=1) + 1
        try:
            n = max(n, self.r.store.conn.execute("SELECT max(id) FROM chunks").fetchone()[0] or n)
        except Exception:  # noqa: BLE001
            pass
        idf = {t: math.log(1 + n / (1 + df.get(t, 0))) for t in single}
        phrases = {t: max(idf.values(), default=1.0) for t in terms if "_" in t}
        scores: dict[int, float] = {}
        sizes: dict[int, int] = {}
        every: list[_Def] = []
        want = idf.keys() | phrases.keys()
        rx = re.compile("|".join(re.escape(t) for t in sorted(want, key=len, reverse=True)))
        for path, ds in defs.items():
            if not ds:
                continue
            lines = self.r.lines(path)
            if lines is None:
                continue
            # Each line's query terms, once per file (only query terms matter, so the sets are small).
            per_line: list[frozenset[str]] = [_EMPTY] * len(lines)
            for i in _lines_with(lines, rx):  # only lines holding a term as a substring can hold it
                per_line[i] = frozenset(t for t in code_tokens(lines[i], stop=True) if t in want)
            for d in ds:
                toks: set[str] = set()
                nxt = _outside(d.start, d.end, d.inner)
                for a, b in nxt:
                    for fs in per_line[a - 1 : b]:
                        toks |= fs
                v = sum(x for t, x in idf.items() if t in toks) + sum(x for t, x in phrases.items() if t in toks)
                if v > 0:
                    scores[id(d)] = v
                    every.append(d)
                    sizes[id(d)] = sum(b - a + 1 for a, b in nxt)
            check_deadline()
        if w.text_len_b > 0 and sizes:
            mean = sum(sizes.values()) / len(sizes)
            b = w.text_len_b
            scores = {i: v / (1 - b + b * sizes[i] / mean) for i, v in scores.items()}
        top = max(scores.values(), default=0.0)
        if top <= 0:
            return
        for d in every:
            d.add("text", w.text * scores[id(d)] / top)

    def _trace_evidence(self, defs: dict[str, list[_Def]], qa: QueryAnalysis) -> None:
        w = self.w
        locs = [(f.path, f.line, f.func) for f in qa.frames] + [(p, ln, None) for p, ln in qa.locations]
        if not locs:
            return
        paths = self.r.names.paths
        for i, (mentioned, line, func) in enumerate(locs[:50]):
            for path in paths.resolve(mentioned)[:3]:
                ds = defs.get(path)
                if not ds:
                    continue
                if line:
                    inside = [d for d in ds if d.start <= line <= d.end]
                    if inside:
                        min(inside, key=lambda d: d.span).add("trace", w.trace / (1 + i))
                if func:
                    last = func.split(".")[-1]
                    for d in ds:
                        if d.name == last:
                            d.add("trace", w.trace_func / (1 + i))

    def _rerank_evidence(self, defs: dict[str, list[_Def]], rows: dict[int, ChunkRow]) -> None:
        """On a --no-embed index with the re-rank: each definition's best chunk cosine among the chunks
        the re-rank embedded (`rerank_dense`), and the file's best chunk (`rerank_best`)."""
        rr = self.r.reranking.reranker
        sims = rr.last_sims if rr is not None else None
        best = self.r.reranking.last_best
        if sims and self.w.rerank_dense > 0 and best:
            got = self.r.rows([c for c in sims if c not in rows])
            for cid, sim in sims.items():
                row = rows.get(cid) or got.get(cid)
                ds = defs.get(row.path) if row else None
                if not ds:
                    continue
                cs, ce, csym = row.start_line, row.end_line, row.symbol
                for d in ds:
                    if csym == d.qualname or (d.start <= cs and d.end >= ce):
                        d.add("dense", self.w.rerank_dense * max(0.0, sim))
                    elif cs <= d.start and ce >= d.end:
                        d.add("dense", self.w.rerank_dense * max(0.0, sim) * self.w.inner_share)
        for path, (_, cid) in best.items():
            row = rows.get(cid)
            ds = defs.get(path)
            if not ds or row is None:
                row = self.r.rows([cid]).get(cid) if ds else None
            if not ds or row is None:
                continue
            inside = [d for d in ds if d.start <= row.start_line <= d.end or row.start_line <= d.start <= row.end_line]
            if inside:
                min(inside, key=lambda d: d.span).add("rerank", self.w.rerank_best)

    def _graph_evidence(self, defs: dict[str, list[_Def]]) -> None:
        w = self.w
        if w.graph <= 0:
            return
        every = [d for ds in defs.values() for d in ds]
        seeded = sorted((d for d in every if d.ev), key=lambda d: -sum(d.ev.values()))[: w.graph_seeds]
        if not seeded:
            return
        seeds = {f"s:{d.qualname}": sum(d.ev.values()) for d in seeded}
        try:
            pr = self.r.graph_rank(seeds)
        except Exception:  # noqa: BLE001 - a graph problem must not break locate
            return
        if not pr:
            return
        own = {d.qualname for d in seeded}
        vals = {d.qualname: pr.get(f"s:{d.qualname}", 0.0) for d in every if d.qualname not in own}
        top = max(vals.values(), default=0.0)
        if top <= 0:
            return
        for d in every:
            v = vals.get(d.qualname, 0.0)
            if v > 0:
                d.add("graph", w.graph * v / top)

    def _hit(self, d: _Def) -> FunctionHit:
        score = sum(d.ev.values())
        if d.kind in ("class", "struct", "impl", "interface", "trait", "module", "namespace"):
            score *= self.w.container
        return FunctionHit(d.qualname, d.name, d.kind, d.start, d.end, score, dict(d.ev))
