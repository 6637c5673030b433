"""The baseline: Okapi BM25 (k1=1.2, b=0.75) over whole files, implemented independently of repoloop.

SWEBENCH_DEV.md's reference row: files' path + content, identifiers split at snake_case/camelCase
boundaries plus the whole identifier, lowercased, tokens under 2 characters and English stop words
dropped, the whole query as the query. Documents are read straight from git blobs and their token
counts cached by blob sha, so walking a repository through many base commits stays cheap.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
STOP = frozenset(ENGLISH_STOP_WORDS)


def tokenize(text: str) -> list[str]:
    """Whole identifiers (lowercased) plus their snake/camel words; <2 chars and stop words dropped."""
    out: list[str] = []
    for m in _IDENT.finditer(text):
        ident = m.group(0)
        words = [w.lower() for part in ident.split("_") if part for w in _WORD.findall(part)]
        whole = ident.lower()
        toks = [whole] if len(words) <= 1 else [whole, *words]
        out.extend(t for t in toks if len(t) >= 2 and t not in STOP)
    return out


class BM25Files:
    """A whole-file BM25 index over (path, sha) documents, re-usable across commits."""

    def __init__(self, read: Callable[[str], bytes], k1: float = 1.2, b: float = 0.75,
                 *, query_tf: bool = False) -> None:
        self._read = read
        self.k1, self.b = k1, b
        self.query_tf = query_tf  # count repeated query terms (False: each distinct term once)
        self._cache: dict[str, tuple[Counter, int]] = {}  # key (sha or path) -> (tf, length)
        self.docs: list[tuple[str, Counter, int]] = []

    def set_docs(self, entries: Iterable[tuple[str, str]]) -> None:
        """(path, key) pairs, key being a blob sha (or anything that identifies the content)."""
        docs = []
        keep: dict[str, tuple[Counter, int]] = {}
        for path, key in entries:
            ck = key + "\0" + path  # the path is part of the document
            got = self._cache.get(ck)
            if got is None:
                text = self._read(key).decode("utf-8", "replace")
                toks = tokenize(path) + tokenize(text)
                got = (Counter(toks), len(toks))
            keep[ck] = got
            docs.append((path, got[0], got[1]))
        self._cache = keep  # keep only the current tree's documents: memory stays bounded
        self.docs = docs

    def rank(self, query: str) -> list[tuple[str, float]]:
        toks = tokenize(query)
        qtf = Counter(toks if self.query_tf else set(toks))
        if not self.docs or not qtf:
            return []
        n = len(self.docs)
        avgdl = sum(d[2] for d in self.docs) / n or 1.0
        df = Counter()
        for _, tf, _ in self.docs:
            for t in qtf:
                if t in tf:
                    df[t] += 1
        idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in qtf if df[t]}
        scores = []
        k1, b = self.k1, self.b
        for path, tf, dl in self.docs:
            s = 0.0
            norm = k1 * (1 - b + b * dl / avgdl)
            for t, w in idf.items():
                f = tf.get(t)
                if f:
                    s += qtf[t] * w * f * (k1 + 1) / (f + norm)
            if s > 0:
                scores.append((path, s))
        scores.sort(key=lambda x: (-x[1], x[0]))
        return scores
