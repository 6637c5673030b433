"""Retrieval: lexical, dense, graph and name signals fused, packed into a token budget.

The public surface is below: callers outside this package open a retriever with `open_retriever`
and hold it as a `Retriever` (api.py); every other module here is a part of it. The names load on
first use, so that importing a light module of this package (limits, for a CLI flag's default)
does not import the index code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repoloop.retrieval.api import (
        ContextItem,
        ContextPack,
        RetrievalOptions,
        Retriever,
        SearchHit,
        parse_signals,
    )
    from repoloop.retrieval.locate import FileHit, FunctionHit, Located
    from repoloop.retrieval.retriever import open_retriever

__all__ = ["ContextItem", "ContextPack", "FileHit", "FunctionHit", "Located", "RetrievalOptions", "Retriever",
           "SearchHit", "open_retriever", "parse_signals"]

_HOME = {"ContextItem": "api", "ContextPack": "api", "RetrievalOptions": "api", "Retriever": "api",
         "SearchHit": "api", "FileHit": "locate", "FunctionHit": "locate", "Located": "locate",
         "open_retriever": "retriever", "parse_signals": "api"}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
