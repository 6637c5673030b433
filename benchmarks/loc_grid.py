"""Named weight variants for tuning repoloop.retrieval.weights (systems `fused@NAME`, `fused-lex@NAME`).

Each variant is a set of overrides on the current defaults; all are measured on the same indexes in
the same run, since querying is cheap next to indexing.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from repoloop.retrieval.weights import DEFAULT, TEST_PATH_PATTERN


def _sig(**kw: float) -> dict[str, Any]:
    return {"signal": kw}


def _paths(docs: float, setup: float) -> tuple[tuple[str, float], ...]:
    """The shipped path priors with docs/examples/benchmarks at `docs` and setup.py, conftest.py
    and Sphinx conf.py at `setup`."""
    return (
        (TEST_PATH_PATTERN, 0.6),
        (r"(^|/)(docs?|examples?|benchmarks?)/", docs),
        (r"\.(md|rst|txt|adoc)$", 0.8),
        (r"(^|/)(setup|conftest|conf)\.py$", setup),
    )


VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "bm25x2": _sig(bm25=2.0),
    "name0.6": _sig(name=0.6),
    "graph0": _sig(graph=0.0),
    "k20": {"rrf_k": 20.0},
    "q48": {"max_query_terms": 48},
    "q96": {"max_query_terms": 96},
    "q48-bm25x2": {"max_query_terms": 48, **_sig(bm25=2.0)},
    "b2n06": _sig(bm25=2.0, name=0.6),
    "b2n06g0": _sig(bm25=2.0, name=0.6, graph=0.0),
    "b3n05": _sig(bm25=3.0, name=0.5),
    "b2n04": _sig(bm25=2.0, name=0.4),
    "b2n06g03": _sig(bm25=2.0, name=0.6, graph=0.3),
    "b3n05g03": _sig(bm25=3.0, name=0.5, graph=0.3),
    "b2n06k30": {"rrf_k": 30.0, **_sig(bm25=2.0, name=0.6)},
    "b2n06k100": {"rrf_k": 100.0, **_sig(bm25=2.0, name=0.6)},
    "dense2": _sig(dense=2.0),
    "dense0.5": _sig(dense=0.5),
    # Path priors (single-file SWE misses often rank doc/conf.py, setup.py or doc/en/example/...
    # first); b2docs6 adds bm25 2.0.
    "docs6": {"path_boost": _paths(0.6, 0.6)},
    "docs4": {"path_boost": _paths(0.4, 0.4)},
    "docs6only": {"path_boost": _paths(0.6, 1.0)},
    "b2docs6": {**_sig(bm25=2.0), "path_boost": _paths(0.6, 0.6)},
    # On top of the shipped priors (be8fb11): repo tooling, package __init__ files.
    "tools6": {"path_boost": (*DEFAULT.path_boost, (r"^(scripts?|release|ci|tools|\.github)/", 0.6))},
    "init8": {"path_boost": (*DEFAULT.path_boost, (r"(^|/)__init__\.py$", 0.8))},
    "init6": {"path_boost": (*DEFAULT.path_boost, (r"(^|/)__init__\.py$", 0.6))},
}


def base_weights():  # noqa: ANN201 - a repoloop Weights
    """What the variants are relative to: the defaults as they were when tuning began (bm25 1.0;
    the shipped default became 2.0 = `@bm25x2` after these measurements), so that runs started
    before and after that change measure the same systems."""
    return replace(DEFAULT, signal={**DEFAULT.signal, "bm25": 1.0})


def make_weights(name: str):  # noqa: ANN201 - a repoloop Weights
    base = base_weights()
    over = dict(VARIANTS[name])
    if "signal" in over:
        over["signal"] = {**base.signal, **over["signal"]}
    return replace(base, **over)
