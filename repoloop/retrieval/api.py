"""The retrieval boundary that the agent, the CLI and the MCP server use.

Callers open a `Retriever` once (a long-running process keeps it, with its model and graph, warm)
and ask it for search results, symbol context, a budgeted context pack or a repo map.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repoloop.retrieval.limits import Deadline, deadline_scope


@dataclass(slots=True)
class SearchHit:
    path: str  # relative to the repo root
    start_line: int
    end_line: int
    symbol: str | None  # qualified name of the enclosing definition
    kind: str
    score: float
    text: str
    signals: dict[str, dict[str, float]] = field(default_factory=dict)  # signal -> {"rank", "score"} (--explain)

    def to_json(self, *, explain: bool = False) -> dict:
        d = {"path": self.path, "start_line": self.start_line, "end_line": self.end_line,
             "symbol": self.symbol, "kind": self.kind, "score": round(self.score, 6), "text": self.text}
        if explain:
            d["signals"] = self.signals
        return d


@dataclass(slots=True)
class ContextItem:
    path: str
    start_line: int
    end_line: int
    symbol: str | None
    score: float
    tokens: int
    kind: str = "code"  # "code" (full text) or "map" (signatures only)


@dataclass(slots=True)
class ContextPack:
    text: str  # what the model sees
    tokens: int  # exact or over-counted, never under
    budget: int
    items: list[ContextItem] = field(default_factory=list)


class Retriever:
    """Facade over the index; implemented in repoloop.retrieval (see the retrieval issue)."""

    @classmethod
    def open(cls, repo: Path, index_dir: Path | None = None, *, lexical_only: bool = False,
             embedder: Any = None, rerank: bool = False) -> Retriever:
        """`embedder`: an already-loaded model to embed queries with (a long-running process shares
        one with its index passes); used when the index was built with the same model.
        `rerank`: on an index without vectors, re-order the top files by embedding similarity,
        embedding their chunks at query time (cached; see repoloop.retrieval.rerank)."""
        from repoloop.retrieval.retriever import HybridRetriever  # the implementation (overrides open)

        return HybridRetriever.open(repo, index_dir, lexical_only=lexical_only, embedder=embedder, rerank=rerank)

    def search(self, query: str, k: int = 10, *, explain: bool = False, merge: bool = True) -> list[SearchHit]:
        """The k best hits; `merge`: neighbouring chunks of one definition are one hit
        (repoloop.retrieval.hits); off where a caller fits chunks into a budget one by one."""
        raise NotImplementedError

    def context(self, task: str, budget: int) -> ContextPack:
        raise NotImplementedError

    def definitions(self, name: str, *, neighbours: int = 0) -> list[dict]:
        """DESIGN's `symbol` JSON definitions: qualname, kind, path, start_line, end_line, signature, doc;
        with `neighbours` > 0 also `callers` and `callees` (each with its `confidence`)."""
        raise NotImplementedError

    def repo_map(self, budget: int = 1024, focus: tuple[str, ...] = ()) -> str:
        raise NotImplementedError

    def outline(self, path: str) -> dict:
        raise NotImplementedError

    def time_limit(self, deadline: Deadline | None) -> AbstractContextManager[Deadline | None]:
        """Calls in the block stop with QueryTimeoutError once `deadline` passes (a server's
        per-query limit; see repoloop.retrieval.limits)."""
        return deadline_scope(deadline)

    def close(self) -> None:
        pass

    def __enter__(self) -> Retriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
