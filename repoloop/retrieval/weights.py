"""Fusion weights and retrieval constants, in one tunable dataclass.

The benchmark engineer tunes the defaults here (benchmarks/localization.py); everything else reads
them through `Weights`, so an experiment can pass its own instance without touching code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from repoloop.indexer.testpaths import TEST_PATH_PATTERN
from repoloop.retrieval.local_rank import ALPHA

SIGNALS = ("bm25", "file", "dense", "name", "graph", "trace")


@dataclass(slots=True, frozen=True)
class Weights:
    # Weighted reciprocal-rank fusion: score(d) = sum_s w_s / (rrf_k + rank_s(d)).
    rrf_k: float = 60.0
    signal: dict[str, float] = field(default_factory=lambda: {
        "bm25": 1.0,  # 2.0 measured mixed: RESULTS.md, Localization (Tuning)
        # Whole-file BM25 (files_fts) lifting the candidate chunks of well-ranked files. 0.5 measured
        # on 147 SWE-bench dev issues (lexical): file Acc@1 49.7 -> 52.4, MRR 0.607 -> 0.627, Acc@5
        # 68.7 = ; dev.jsonl (query_subject): Acc@1 63.6 -> 64.5, SymAcc@10 83 -> 81. At 1.0 SWE
        # Acc@1 rose to 53.7 but dev SymAcc@10 fell to 79 (below its target of 80).
        "file": 0.5,
        "dense": 1.0,
        "name": 1.2,  # exact/fuzzy symbol-name and path matches
        "graph": 0.5,  # personalized PageRank from the other signals' top hits
        "trace": 3.0,  # stack-trace frames and file:line mentions: the strongest evidence there is
    })
    # search: after the first `free_head` share of the k results (best evidence, any file), at most
    # `per_file` chunks of one file until every candidate file had its turn: a k=20 answer names more
    # files instead of five slices of one module. Measured (experiments/loc_quick_ab.py, lexical):
    # 147 SWE-bench dev issues file Acc@5 70.1 -> 72.1, Acc@10 71.4 -> 76.9, MRR 0.633 -> 0.648;
    # dev.jsonl SymAcc@10 81 -> 82. A cap from the first result (free_head 0) gave the same SWE
    # figures but SymAcc@10 65: the best file's second symbol must stay near the top.
    per_file: int = 1
    free_head: float = 0.4
    depth: int = 100  # candidates taken from each signal before fusion
    # BM25 (FTS5 columns path, names, body).
    bm25_columns: tuple[float, float, float] = (2.0, 4.0, 1.0)
    # Long issue texts: keep at most this many terms, the rarest (highest IDF). Measured on 147
    # SWE-bench dev issues (16 per repo, lexical, trees at a later base commit): 24 terms -> 400
    # terms: file Acc@1 46.3 -> 49.7, Acc@5 63.3 -> 70.1, MRR 0.561 -> 0.633; dev.jsonl unchanged.
    max_query_terms: int = 400
    # Light stemming of the query's plain words for BM25 (repoloop.retrieval.lexical.variants): a word
    # also matches its singular / stem ("redirects" -> "redirect"), identifiers stay whole; the index
    # is unchanged. dev.jsonl (110, query_subject), Acc@1 / MRR: embedded fused 70.9 / 0.818 -> 75.5 /
    # 0.841; fused-lex 66.4 / 0.772 -> 68.2 / 0.791; --no-embed + re-rank 71.8 / 0.822 -> 74.5 / 0.839;
    # Acc@5 unchanged, SymAcc@10 up 1-3. Not re-measured on SWE-bench dev (RESULTS.md, issue 16).
    bm25_stem: bool = True
    # Name matches: score of each kind of evidence (higher ranks first within the signal).
    name_exact_ident: float = 1.0  # a code-looking identifier equals a symbol name / qualname suffix
    name_fuzzy_ident: float = 0.7  # same, ignoring case and underscores
    name_word: float = 0.1  # a plain word equals a symbol name (weak: "generate" in prose)
    name_path: float = 0.8  # a mentioned path / module name matches a file
    name_spread: float = 0.5  # a name defined in n places scores 1/n**spread in each
    # Graph: personalization seeds from each signal's top hits.
    graph_seeds: int = 10
    graph_alpha: float = ALPHA  # the damping the graph modules use (repoloop.retrieval.graph / local_rank)
    graph_self_discount: float = 1.0  # 1: remove a seed's own teleport mass from its rank; 0: keep it
    full_graph_max_edges: int = 500_000  # warm(): load the whole graph up to this size (else rank locally)
    graph_tol: float = 1e-5  # PageRank convergence (per node); the top ranks are stable well before 1e-6
    # Dense re-rank (repoloop.retrieval.rerank): the fused ranking's first `rerank_files` source files
    # are re-ordered by max cosine(query, chunk) - rerank_penalty * ln(fused rank). 214 SWE-bench dev
    # issues at their base commits, lexical index + query-time embedding (RESULTS.md, "Dense re-rank
    # in the product"): fused-lex Acc@1 52.3 / Acc@5 74.3 / MRR 0.660; 10 files 65.9 / 78.5 / 0.749;
    # 15 files 65.9 / 79.9; 20 files 65.9 / 80.4 / 0.748 (twice the chunks to embed of 10). The
    # penalty 0.05 was chosen on the top-10 experiment; at 20 files 0.03 gave 63.1 / 79.4, 0.1 64.0 / 81.3.
    rerank_files: int = 20
    rerank_penalty: float = 0.05
    # Whole-file BM25's first `rerank_inject` source files that the fused list lacks join the re-rank's
    # candidates (after them; their best chunk enters the list): the fused pool missed the gold file
    # of 11 of the 34 single-file misses that whole-file BM25 had in its top 10 (SWE-bench dev, all 407;
    # django 188: Acc@5 81.9 -> 84.6, Acc@10 87.2 -> 90.4, Acc@1 unchanged; RESULTS.md).
    rerank_inject: int = 10
    # At most this many not-yet-embedded chunks per candidate file are embedded for the re-rank: those
    # sharing the most query words (idf-weighted); 0 embeds every chunk. A cold re-rank on ripgrep
    # embedded 1,751 chunks for one query (big files); the best chunk is nearly always among the
    # lexically closest (RESULTS.md, "Cold re-rank").
    rerank_chunks: int = 12
    # Results: prefer function/method-level chunks over module-level code.
    kind_boost: dict[str, float] = field(default_factory=lambda: {
        "function": 1.0, "method": 1.0, "class": 1.0, "code": 0.9,
    })
    default_kind_boost: float = 0.95
    # Path priors (regex on the repo-relative path -> multiplier; every match applies): the code a
    # task is about is more often source than tests, docs or examples.
    path_boost: tuple[tuple[str, float], ...] = (
        # tests 0.85 -> 0.6: SWE-bench dev (147, lexical) Acc@5 68.7 -> 70.1; dev.jsonl Acc@1 64.5 -> 66.4
        (TEST_PATH_PATTERN, 0.6),
        # docs/examples 0.85 -> 0.6 and setup.py 0.6: SWE-bench dev (214 at their base commits,
        # lexical) Acc@1 51.9 -> 52.3, Acc@10 80.8 -> 82.2 (doc/conf.py, setup.py, doc/en/example/...
        # ranked above the fix's file); dev.jsonl unchanged
        (r"(^|/)(docs?|examples?|benchmarks?)/", 0.6),
        (r"\.(md|rst|txt|adoc)$", 0.8),
        (r"(^|/)setup\.py$", 0.6),
    )


DEFAULT = Weights()
