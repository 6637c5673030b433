"""The hybrid retriever: the signals gathered, fused, re-ranked and grouped into hits.

Opened once per process by `open_retriever` and kept warm (model, vector store, path and name
tables, graph). The stages are their own modules: the signals (`lexical`, `dense_signal`, `names`
for identifiers, paths and stack frames, `file_signal`, `graph_signal` over `graph_state`), path
priors (`path_priors`), weighted RRF (`fusion`), the dense re-rank (`rerank_stage`) and hits
(`hits`); this one runs them in order and answers the `Retriever` protocol (`api`). With
`lexical_only` (or an index built with --no-embed) neither torch nor chromadb is imported.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from repoloop.errors import RepoloopError
from repoloop.indexer.safe_read import read_repo_file
from repoloop.indexer.schema import GENERATION_KEY, META_MODEL
from repoloop.indexer.store import DB_NAME, IndexStore, index_dir_for
from repoloop.retrieval.api import ContextPack, RetrievalOptions, SearchHit, parse_signals
from repoloop.retrieval.dense_signal import DenseSignal, Nearest
from repoloop.retrieval.file_signal import file_signal
from repoloop.retrieval.fusion import Fused, Ranked, rank_files, rrf
from repoloop.retrieval.graph_signal import graph_signal
from repoloop.retrieval.graph_state import GraphRanker
from repoloop.retrieval.hits import take_hits
from repoloop.retrieval.lexical import Lexical
from repoloop.retrieval.limits import (
    CONTEXT_HITS,
    MAX_HIT_FILE_BYTES,
    Deadline,
    bounded_prefix,
    check_deadline,
    check_query_length,
    deadline_scope,
)
from repoloop.retrieval.names import NameMatcher
from repoloop.retrieval.path_priors import PathPriors
from repoloop.retrieval.query import analyze
from repoloop.retrieval.rerank_stage import RerankStage
from repoloop.retrieval.rows import ChunkRow, chunk_rows
from repoloop.retrieval.tokens_count import TokenCounter, get_counter
from repoloop.retrieval.weights import DEFAULT, Weights

if TYPE_CHECKING:
    from repoloop.indexer.embed.embedders import Embedder
    from repoloop.retrieval.dense_ahead import DenseAhead
    from repoloop.retrieval.locate import Located, LocateWeights
    from repoloop.retrieval.rerank import DenseReranker

log = logging.getLogger(__name__)

SQL_CHECK_EVERY = 10_000  # SQLite VM steps between deadline checks (well under a millisecond)

IndexVersion = tuple[int, int, str | None]  # (database file inode, SQLite data_version, graph generation)


def open_retriever(repo: Path, index_dir: Path | None = None, options: RetrievalOptions | None = None, *,
                   embedder: Embedder | None = None, counter: TokenCounter | None = None,
                   dense_ahead: DenseAhead | None = None) -> HybridRetriever:
    """Open the index of `repo` (in `index_dir`, else the default place) for retrieval.

    `embedder`: an already-loaded model to embed queries with (a long-running process shares one
    with its index passes); used when the index was built with the same model. `counter`: the token
    counter for budgets (default: the one `options.tokenizer` names, else the best offline).
    `dense_ahead`: the dense half of the first query, already being computed in a forked child (a
    one-shot CLI query; repoloop.retrieval.dense_ahead): the retriever owns it once it is returned,
    the caller until then."""
    repo = Path(repo).expanduser().resolve()
    idx = index_dir_for(repo, index_dir)
    store = IndexStore(idx / DB_NAME, readonly=True)
    return HybridRetriever(repo, idx, store, options or RetrievalOptions(), embedder=embedder, counter=counter,
                           dense_ahead=dense_ahead)


class HybridRetriever:
    """The `Retriever` over one index (repoloop.retrieval.api); touched by one thread at a time."""

    def __init__(self, repo: Path, idx: Path, store: IndexStore, options: RetrievalOptions, *,
                 embedder: Embedder | None = None, counter: TokenCounter | None = None,
                 dense_ahead: DenseAhead | None = None) -> None:
        self.repo = repo
        self.idx = idx
        self.store = store
        self.options = options
        self.weights: Weights = options.weights or DEFAULT  # swapped by tuning runs (set_weights)
        self.lexical = Lexical(store.conn, self.weights)
        self.names = NameMatcher(store.conn, self.weights)
        self._lexical_forced = options.lexical_only  # the caller's choice; else decided by the index (refresh)
        self._lexical_only = options.lexical_only or not store.get_meta(META_MODEL)
        self.dense = DenseSignal(store, idx, embedder=embedder, chroma_url=options.chroma_url,
                                 use_array=options.dense_store != "chroma", embed_config=options.embed,
                                 ahead=dense_ahead)
        self._counter = counter
        # Dense re-rank of the top files (repoloop.retrieval.rerank) where the index has no vectors:
        # their chunks are embedded at query time (seconds on a CPU for files not seen before, then
        # cached). Not on an embedded index: dense already took part in the fusion, and re-ranking
        # there measured worse (dev.jsonl SymAcc@10 82 -> 77; RESULTS.md, "Dense re-rank in the product").
        self._rerank = options.rerank
        self.reranking = RerankStage(self._make_reranker)
        self.graph = GraphRanker(store)
        self._priors = PathPriors()
        self._seen = self._index_version()  # what refresh() compares against
        self.refreshes = 0  # refresh() calls that found a new index generation (logs and tests read it)

    @property
    def lexical_only(self) -> bool:
        return self._lexical_only

    @property
    def counter(self) -> TokenCounter:
        if self._counter is None:
            self._counter = get_counter(self.options.tokenizer)
        return self._counter

    def set_weights(self, weights: Weights) -> None:
        """Rank with other weights from now on (a tuning run compares variants in one process)."""
        self.weights = self.lexical.weights = self.names.weights = weights

    def set_rerank(self, on: bool) -> None:
        """Turn the re-rank on or off on an open retriever (benchmarks compare both in one process)."""
        self._rerank = on
        self.reranking.drop()

    @property
    def rerank_on(self) -> bool:
        """Whether the re-rank runs: asked for, on an index without vectors, dense not turned off."""
        return self._rerank and self._lexical_only and not self._lexical_forced

    def warm(self) -> None:
        """Pay the one-time costs now (model load, chroma open, path/name tables, and the whole
        graph in memory when it is not huge: per query that is ~2x faster than the SQLite-local
        ranker on a 9k-edge repo and as fast at 50k, same quality; see benchmarks/RESULTS.md)."""
        if not self.graph.full:
            n_edges = self.store.conn.execute("SELECT count(*) FROM edges").fetchone()[0]
            if 0 < n_edges <= self.weights.full_graph_max_edges:
                self.graph.load_full()
        if not self._lexical_only and self._dense_ready():
            self.dense.warm()
        self.search("warm up", 1)

    # -- a newer index generation -----------------------------------------------------------
    def _index_version(self) -> IndexVersion:
        """(database file inode, SQLite data_version, graph generation): the first changes when the
        index file was replaced, the second on any commit by another connection, the third when
        the edges changed."""
        try:
            ino = self.store.db_path.stat().st_ino
        except OSError:
            ino = -1
        version = self.store.conn.execute("PRAGMA data_version").fetchone()[0]
        return ino, version, self.store.get_meta(GENERATION_KEY)

    def refresh(self) -> bool:
        """See what the indexer wrote since the last look, in place and cheaply: the model, the
        chroma client and collection, and the graph (unless its edges changed) stay loaded; the
        path and name tables are rebuilt lazily; a changed graph is re-read (the whole graph on a
        helper thread, the old one ranking until it is ready). Returns whether anything changed.
        Runs on the thread that owns this Retriever, like every other call."""
        ino, version, gen = self._index_version()
        old_ino, _, old_gen = self._seen
        if (ino, version, gen) == self._seen or ino == -1:  # -1: the file is being re-made; look later
            return False
        if ino != old_ino:  # a new database file (rebuilt after damage): reopen everything but the model
            self._reopen_store()
            ino, version, gen = self._index_version()
            old_gen = None
        self._seen = (ino, version, gen)
        self.refreshes += 1
        self.names = NameMatcher(self.store.conn, self.weights)
        self._lexical_only = self._lexical_forced or not self.store.get_meta(META_MODEL)
        self.dense.refresh()
        self.reranking.drop()  # the index may have gained (or lost) its vectors
        self.graph.refresh(edges_changed=gen != old_gen)
        return True

    def _reopen_store(self) -> None:
        fresh = IndexStore(self.store.db_path, readonly=True)  # before closing: a failure keeps the old
        self.store.close()
        self.store = fresh
        self.lexical = Lexical(self.store.conn, self.weights)
        self.dense.reopen(fresh)
        self.reranking.drop()
        self.graph.reopen(fresh)

    # -- the stages ---------------------------------------------------------------------------
    def _dense_ready(self) -> bool:
        """Open the vector side; a broken or unreachable vector store degrades to lexical search
        (logged once) rather than failing every query."""
        try:
            return self.dense.prepare()
        except Exception as e:  # noqa: BLE001 - chromadb/model errors come in many types
            check_deadline()  # an interrupted query is not a broken vector store
            log.warning("dense retrieval unavailable, searching lexically: %s", e)
            self._lexical_only = True
            return False

    def _make_reranker(self) -> DenseReranker:
        from repoloop.indexer.embed.embedders import embedder_from_config
        from repoloop.indexer.embed.query_time_cache import VectorCache, cache_path
        from repoloop.retrieval.rerank import DenseReranker

        embed = self.options.embed
        emb = self.dense.embedder = self.dense.embedder or embedder_from_config(embed)  # the model a later `index` would use
        return DenseReranker(self.store.conn, emb, penalty=self.weights.rerank_penalty,
                             cache=VectorCache(cache_path(self.idx, embed.vector_cache), emb.name),
                             per_file=self.weights.rerank_chunks)

    def path_prior(self, path: str) -> float:
        return self._priors(path, self.weights.path_boost)

    def graph_rank(self, seeds: dict[str, float]) -> dict[str, float]:
        """Personalized PageRank over the dependency graph from seed nodes; {} if no graph."""
        return self.graph.rank(seeds, self.weights.graph_tol)

    def rows(self, ids: Iterable[int]) -> dict[int, ChunkRow]:
        return chunk_rows(self.store.conn, ids)

    def lines(self, path: str) -> list[str] | None:
        """A file's current lines, read as the indexer reads (inside the repository, a regular file,
        bounded, never blocking): it may have been swapped for a FIFO or a symlink since indexing."""
        data = read_repo_file(str(self.repo / path), str(self.repo.resolve()), MAX_HIT_FILE_BYTES)
        return data.decode("utf-8", errors="replace").split("\n") if isinstance(data, bytes) else None

    def fused(self, query: str, k: int = 10, *, signals: Iterable[str] | str | None = None
              ) -> tuple[list[Fused], dict[int, ChunkRow]]:
        """Fused ranking (chunk ids) and the rows of every candidate. A query over
        MAX_QUERY_CHARS is refused (QueryTooLongError): every entry point searches through here."""
        check_query_length(query)
        sig = parse_signals(signals)
        qa = analyze(query)
        check_deadline()
        depth = max(self.weights.depth, k)
        conn = self.store.conn
        # Dense (query embedding + vector search) runs on a worker thread while the lexical signals
        # and the graph run here: the latency is the longer of the two, not their sum.
        pending: Future[Nearest] | Future[Nearest | None] | None = None
        ahead = False  # the answer comes from a forked child (repoloop.retrieval.dense_ahead)
        if "dense" in sig and not self._lexical_only:
            pending = self.dense.take_ahead(query, depth)
            ahead = pending is not None
            if not ahead and self._dense_ready():
                pending = self.dense.submit(query, depth)
        lists: list[Ranked] = []
        try:
            if "trace" in sig:
                lists.append(self.names.trace(qa, depth))
            if "name" in sig:
                lists.append(self.names.names(qa, depth))
            if "bm25" in sig:
                lists.append(self.lexical.search(query, depth))
            if "file" in sig:
                lists.append(file_signal(self.lexical, conn, query, depth, lists))
            check_deadline()  # a signal that swallowed an interrupted statement answered []
            rows = self.rows(i for r in lists for i in r.ids)
            if "graph" in sig:
                # Seeds: the lexical signals' top hits; for graph alone, computed here but not fused.
                seed_lists = lists if any(r.ids for r in lists) else [
                    self.names.trace(qa, depth), self.names.names(qa, depth), self.lexical.search(query, depth)]
                seed_rows = dict(rows) if seed_lists is lists else self.rows(
                    i for r in seed_lists for i in r.ids[: self.weights.graph_seeds])
                g = graph_signal(seed_lists, seed_rows, depth, self.weights, self.graph_rank, conn)
                check_deadline()
                if g.ids:
                    lists.append(g)
                    rows.update(self.rows(cid for cid in g.ids if cid not in rows))
        finally:
            nearest = self.dense.collect(pending)
        if nearest is None and ahead and self._dense_ready():  # the child had no answer: in process, now
            nearest = self.dense.collect(self.dense.submit(query, depth))
        if nearest is not None:
            d = self.dense.to_chunks(nearest, depth)
            lists.append(d)
            rows.update(self.rows(cid for cid in d.ids if cid not in rows))
        wk = self.weights
        boosts = {cid: wk.kind_boost.get(row.kind, wk.default_kind_boost) * self.path_prior(row.path)
                  for cid, row in rows.items()}
        # Where the evidence names a definition inside a bigger chunk (a method in a class chunk),
        # report that definition: the result's symbol is the most specific one the query points at.
        for r in reversed(lists):  # trace first (listed first), so it wins
            for cid, qual in r.focus.items():
                row = rows.get(cid)
                if row and row.symbol and qual != row.symbol and qual.startswith(row.symbol + "."):
                    kind = conn.execute("SELECT kind FROM symbols WHERE qualname=? LIMIT 1", (qual,)).fetchone()
                    rows[cid] = replace(row, symbol=qual, kind=kind[0] if kind else row.kind)
        fused = rrf(lists, wk, boosts=boosts)
        self.reranking.last_best = {}
        if "dense" in sig:  # the re-rank is the dense signal where the index has no vectors
            fused = self.reranking.apply(query, fused, rows, enabled=self.rerank_on, weights=wk,
                                         prior=self.path_prior, lexical=self.lexical, conn=conn)
        check_deadline()
        return fused, rows

    # -- the protocol -------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, *, explain: bool = False,
               signals: Iterable[str] | str | None = None, merge: bool = True) -> list[SearchHit]:
        if k < 1:
            raise RepoloopError(f"-k must be at least 1, not {k}")
        fused, rows = self.fused(query, k, signals=signals)
        # After a free head, at most `per_file` hits of one file until every file had its turn (see
        # Weights.per_file); neighbouring chunks of one definition are one hit (retrieval.hits).
        cap = self.weights.per_file
        head = math.ceil(self.weights.free_head * k) if cap else k
        # A row can be missing: deleted by a concurrent index run between the signal and the row read.
        ranked = ((f, rows[f.chunk_id]) for f in fused if f.chunk_id in rows)
        return take_hits(ranked, k, head=head, cap=cap, explain=explain, merge=merge)

    def search_files(self, query: str, k: int = 10, *, signals: Iterable[str] | str | None = None,
                     depth: int = 50) -> list[tuple[str, float]]:
        """File-level ranking aggregated from the chunk ranking."""
        fused, rows = self.fused(query, depth, signals=signals)
        return rank_files([(rows[f.chunk_id].path, f.score) for f in fused[:depth] if f.chunk_id in rows])[:k]

    def locate(self, query: str, k: int = 10, *, functions: int = 5,
               signals: Iterable[str] | str | None = None, weights: LocateWeights | None = None) -> Located:
        from repoloop.retrieval.locate import Locator

        return Locator(self, weights).locate(query, k, functions=functions, signals=signals)

    def context(self, task: str, budget: int, *, k: int = CONTEXT_HITS) -> ContextPack:
        from repoloop.retrieval.context import build_context

        if budget < 0:
            raise RepoloopError(f"--budget must not be negative, not {budget}")
        task = bounded_prefix(task)  # a long task (an issue, an agent's task text): its first part
        hits = self.search(task, k, merge=False) if task.strip() else []  # chunks: fitted one by one
        check_deadline()
        return build_context(hits, budget, self.counter, self.lines, self._map_text)

    def _map_text(self, budget: int, focus: tuple[str, ...]) -> str:
        from repoloop.retrieval.repomap import build_repo_map

        return build_repo_map(self.store, budget, focus, self.counter).text

    def definitions(self, name: str, *, neighbours: int = 0) -> list[dict]:
        """Definitions of `name`; with `neighbours` > 0 each also lists up to that many direct
        callers and callees from the graph (each with its `confidence`)."""
        from repoloop.indexer.lookup import find_definitions

        defs = find_definitions(self.store, name)
        if neighbours > 0:
            from repoloop.retrieval.graph import neighbours as graph_neighbours

            for d in defs[:6]:
                d.update(graph_neighbours(self.store, d["qualname"], neighbours))
        return defs

    def outline(self, path: str) -> dict:
        from repoloop.indexer.lookup import outline

        got = outline(self.store, path)
        if got is None:
            raise RepoloopError(f"{path}: not in the index")
        return got

    def repo_map(self, budget: int = 1024, focus: tuple[str, ...] = ()) -> str:
        text = self._map_text(budget, tuple(focus))
        lines = text.split("\n")
        while lines and self.counter.count("\n".join(lines)) > budget:
            lines = lines[: max(0, len(lines) - max(1, len(lines) // 8))]
        return "\n".join(lines)

    @contextmanager
    def time_limit(self, deadline: Deadline | None) -> Iterator[Deadline | None]:
        """Calls in the block stop with QueryTimeoutError once `deadline` passes: checked between
        the signals and in their loops, and inside SQLite statements through a progress handler
        (a long FTS5 or graph statement is interrupted, not waited for)."""
        if deadline is None:
            yield None
            return
        conn = self.store.conn
        conn.set_progress_handler(deadline.expired, SQL_CHECK_EVERY)
        try:
            with deadline_scope(deadline):
                yield deadline
        except sqlite3.OperationalError as e:
            if deadline.expired():
                raise deadline.error() from e
            raise
        finally:
            conn.set_progress_handler(None, 0)

    def close(self) -> None:
        self.reranking.drop()
        self.dense.close()
        self.graph.close()
        self.store.close()

    def __enter__(self) -> HybridRetriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
