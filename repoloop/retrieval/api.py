"""The retrieval boundary that the agent, the CLI and the MCP server use.

Why a Protocol: callers hold "something that retrieves" (the hybrid retriever over an index, or a
test's fake) and type against what it can do, never against the class that does it. One is opened
by `repoloop.retrieval.retriever.open_retriever(repo, index_dir, options)` and kept warm by a
long-running process (model, graph, caches); `RetrievalOptions` is everything that decides how it
ranks, fixed at open time, read from flags and the environment at the CLI or service edge.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from repoloop.errors import RepoloopError
from repoloop.indexer.config import EmbedConfig
from repoloop.retrieval.limits import Deadline
from repoloop.retrieval.weights import SIGNALS

if TYPE_CHECKING:
    from repoloop.retrieval.locate import Located, LocateWeights
    from repoloop.retrieval.tokens_count import TokenCounter
    from repoloop.retrieval.weights import Weights

DENSE_STORE_ENV = "REPOLOOP_DENSE_STORE"  # "chroma": ask chromadb even where the compact array exists
TOKENIZER_ENV = "REPOLOOP_TOKENIZER"  # a tiktoken encoding name, or "estimate"


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
    """One part of a context pack (also the MCP `get_context` item, field for field)."""

    path: str
    start_line: int
    end_line: int
    symbol: str | None
    score: float
    tokens: int
    kind: str  # "code" (full text) or "map" (signatures only)


@dataclass(slots=True)
class ContextPack:
    text: str  # what the model sees
    tokens: int  # exact or over-counted, never under
    budget: int
    items: list[ContextItem] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RetrievalOptions:
    """How an opened retriever ranks; fixed for its life (a tuning run may swap `weights` on it)."""

    lexical_only: bool = False  # never load the model (also implied by an index without vectors)
    # On an index without vectors, re-order the top files by embedding similarity, embedding their
    # chunks at query time (cached; see repoloop.retrieval.rerank).
    rerank: bool = False
    weights: Weights | None = None  # None: repoloop.retrieval.weights.DEFAULT
    chroma_url: str | None = None  # None: the server the index was built with, else embedded
    dense_store: str = ""  # "chroma": search chromadb even where the index has its compact array
    tokenizer: str | None = None  # budgets counted with this encoding ("estimate": the byte count)
    # How queries and the re-rank's chunks are embedded (endpoint, backend, ...) and where the re-rank's
    # vectors are cached: the indexer's settings (repoloop.indexer.config), so that both embed alike.
    embed: EmbedConfig = field(default_factory=EmbedConfig)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **fields: Any) -> RetrievalOptions:
        """The user's REPOLOOP_DENSE_STORE, REPOLOOP_TOKENIZER and the embedding variables
        (`EmbedConfig.from_env`), then `fields` (flags): read once, at the CLI or service edge."""
        env = {"dense_store": environ.get(DENSE_STORE_ENV, "").strip().lower(),
               "tokenizer": environ.get(TOKENIZER_ENV) or None, "embed": EmbedConfig.from_env(environ)}
        return cls(**{**env, **fields})


def parse_signals(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """`"bm25,dense"` -> ("bm25", "dense"); unknown names are a user error."""
    if spec is None:
        return SIGNALS
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    bad = [s for s in items if s not in SIGNALS]
    if bad or not items:
        raise RepoloopError(f"--signals: unknown signal {', '.join(bad) or '(none)'}; choose from {','.join(SIGNALS)}")
    return tuple(dict.fromkeys(items))


class Retriever(Protocol):
    """What callers may ask of an open retriever (one thread at a time; see service/host.py)."""

    @property
    def lexical_only(self) -> bool:
        """True when no dense signal runs (asked for, or the index has no vectors)."""
        ...

    @property
    def counter(self) -> TokenCounter:
        """The token counter its budgets use."""
        ...

    def search(self, query: str, k: int = 10, *, explain: bool = False,
               signals: Iterable[str] | str | None = None, merge: bool = True) -> list[SearchHit]:
        """The k best hits; `merge`: neighbouring chunks of one definition are one hit
        (repoloop.retrieval.hits); off where a caller fits chunks into a budget one by one."""
        ...

    def search_files(self, query: str, k: int = 10, *, signals: Iterable[str] | str | None = None,
                     depth: int = 50) -> list[tuple[str, float]]:
        """File-level ranking aggregated from the chunk ranking."""
        ...

    def locate(self, query: str, k: int = 10, *, functions: int = 5,
               signals: Iterable[str] | str | None = None, weights: LocateWeights | None = None) -> Located:
        """The k likeliest files with their likeliest definitions (repoloop.retrieval.locate)."""
        ...

    def context(self, task: str, budget: int) -> ContextPack:
        ...

    def definitions(self, name: str, *, neighbours: int = 0) -> list[dict]:
        """`symbol --json` definitions (README): qualname, kind, path, start_line, end_line, signature, doc;
        with `neighbours` > 0 also `callers` and `callees` (each with its `confidence`)."""
        ...

    def repo_map(self, budget: int = 1024, focus: tuple[str, ...] = ()) -> str:
        ...

    def outline(self, path: str) -> dict:
        ...

    def time_limit(self, deadline: Deadline | None) -> AbstractContextManager[Deadline | None]:
        """Calls in the block stop with QueryTimeoutError once `deadline` passes (a server's
        per-query limit; see repoloop.retrieval.limits)."""
        ...

    def refresh(self) -> bool:
        """See what the indexer wrote since the last look, in place; whether anything changed."""
        ...

    def warm(self) -> None:
        """Pay the one-time costs now (model, vector store, graph) instead of on the first query."""
        ...

    def close(self) -> None:
        ...

    def __enter__(self) -> Retriever:
        ...

    def __exit__(self, *exc: object) -> None:
        ...

