"""BM25 over the FTS5 table with identifier-aware query tokens.

The query is tokenised exactly like the indexed text (repoloop.indexer.lexical_tokens): identifiers whole
and split into words, stop words dropped. Terms are OR-ed; for long texts (issues, traces) only the
rarest `max_query_terms` terms are kept, by document frequency from an fts5vocab view.
"""

from __future__ import annotations

import sqlite3

from repoloop.indexer.lexical_tokens import code_tokens
from repoloop.retrieval.fusion import Ranked
from repoloop.retrieval.limits import bounded_prefix, check_deadline
from repoloop.retrieval.weights import Weights


class Lexical:
    """BM25 search on one store connection (the vocab view is created once per connection)."""

    def __init__(self, conn: sqlite3.Connection, weights: Weights) -> None:
        self.conn = conn
        self.weights = weights
        self._vocab = False

    def _doc_freq(self, terms: list[str]) -> dict[str, int]:
        if not self._vocab:
            self.conn.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_vocab USING fts5vocab(main, chunks_fts, 'row')"
            )
            self._vocab = True
        out: dict[str, int] = {}
        for t in terms:
            check_deadline()
            row = self.conn.execute("SELECT doc FROM temp.chunks_vocab WHERE term=?", (t,)).fetchone()
            out[t] = row[0] if row else 0
        return out

    def terms(self, query: str) -> list[str]:
        """The query's terms, at most max_query_terms, rarest kept; terms absent from the index dropped."""
        toks = list(dict.fromkeys(code_tokens(bounded_prefix(query), stop=True)))
        if self.weights.bm25_stem:
            toks = list(dict.fromkeys(v for t in toks for v in (t, *variants(t))))
        # A whole snake_case identifier is a phrase of its words in FTS5; its words are listed too.
        single = [t for t in toks if "_" not in t]
        phrases = [t for t in toks if "_" in t]
        df = self._doc_freq(single)
        single = [t for t in single if df[t] > 0]
        limit = self.weights.max_query_terms
        if len(single) + len(phrases) > limit:
            single.sort(key=lambda t: df[t])
            single = single[: max(limit - len(phrases), limit // 2)]
            phrases = phrases[: limit - len(single)]
        return phrases + single

    def match(self, query: str) -> str:
        """The FTS5 MATCH expression of a query: its terms OR-ed, snake_case terms as phrases."""
        return " OR ".join('"' + t.replace("_", " ") + '"' for t in self.terms(query))

    def search(self, query: str, limit: int) -> Ranked:
        match = self.match(query)
        if not match:
            return Ranked("bm25", [], [])
        wp, wn, wb = self.weights.bm25_columns
        rows = self.conn.execute(
            f"SELECT rowid, bm25(chunks_fts, {wp}, {wn}, {wb}) AS s FROM chunks_fts"
            " WHERE chunks_fts MATCH ? ORDER BY s LIMIT ?",
            (match, limit),
        ).fetchall()
        # bm25() is lower-is-better (negative); report a positive score.
        return Ranked("bm25", [r[0] for r in rows], [-r[1] for r in rows])

    def files(self, query: str, limit: int) -> list[tuple[int, float]]:
        """Whole-file BM25 (file id, score), best first: an issue whose words spread over one module
        finds that module, which chunk-level BM25 fragments. Empty on an index without files_fts."""
        match = self.match(query)
        if not match:
            return []
        try:
            rows = self.conn.execute(
                "SELECT rowid, bm25(files_fts) AS s FROM files_fts WHERE files_fts MATCH ? ORDER BY s LIMIT ?",
                (match, limit),
            ).fetchall()
        except sqlite3.OperationalError:  # an index written before the table existed
            return []
        return [(r[0], -r[1]) for r in rows]


def variants(word: str) -> tuple[str, ...]:
    """Light stems of a plain word (no digits, no underscore, 5+ letters): "redirects" -> "redirect",
    "retries" -> "retry", "handling" -> "handl", "handle"... only forms that then exist in the index
    count (terms() drops the others). Identifiers (with "_") are left whole."""
    if "_" in word or len(word) < 5 or not word.isalpha():
        return ()
    out: list[str] = []
    if word.endswith("ies"):
        out.append(word[:-3] + "y")
    elif word.endswith("sses") or word.endswith("xes") or word.endswith("ches") or word.endswith("shes"):
        out.append(word[:-2])
    elif word.endswith("s") and not word.endswith("ss") and not word.endswith("us"):
        out.append(word[:-1])
    elif word.endswith("ing") and len(word) > 6:
        out += [word[:-3], word[:-3] + "e"]
    elif word.endswith("ed") and len(word) > 5:
        out += [word[:-2], word[:-1]]
    return tuple(out)
