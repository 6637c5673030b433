"""Path priors: how much a candidate's path alone multiplies its score (tests, docs, examples less).

Why a class: the regexes are compiled once and each path's product kept, for the `path_boost` they
came from; a tuning run swaps the weights on an open retriever, which starts them afresh.
"""

from __future__ import annotations

import re


class PathPriors:
    def __init__(self) -> None:
        self._boost: tuple[tuple[str, float], ...] | None = None
        self._compiled: list[tuple[re.Pattern[str], float]] = []
        self._cache: dict[str, float] = {}

    def __call__(self, path: str, boost: tuple[tuple[str, float], ...]) -> float:
        """The product of the multipliers of every `boost` regex that matches `path`."""
        if self._boost is not boost:
            self._boost = boost
            self._compiled = [(re.compile(rx), m) for rx, m in boost]
            self._cache = {}
        got = self._cache.get(path)
        if got is None:
            got = 1.0
            for rx, m in self._compiled:
                if rx.search(path):
                    got *= m
            self._cache[path] = got
        return got
