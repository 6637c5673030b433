"""What an index run is asked to do, as frozen objects built once at the edge (the CLI, `serve`,
`watch`, a benchmark) from flags and the user's environment variables, then passed down.

Why: a setting read from `os.environ` deep inside a module is invisible at the call site, cannot
differ between two runs in one process, and makes the CLI talk to the indexer by mutating the
environment. Here the variable names are read in one place (`from_env`); nothing under
`repoloop.indexer` reads the environment for configuration.

Variables (each also a flag of `repoloop index` where one exists):
REPOLOOP_EMBED_MODEL, REPOLOOP_EMBED_BASE_URL (OPENAI_API_KEY for it), REPOLOOP_EMBED_MAX_TOKENS,
REPOLOOP_EMBED_BACKEND, REPOLOOP_EMBED_PRECISION, REPOLOOP_EMBED_THREADS, REPOLOOP_CACHE_DIR (else
$XDG_CACHE_HOME/repoloop), REPOLOOP_CHROMA_URL, REPOLOOP_EMBED_TESTS, REPOLOOP_VECTOR_CACHE,
REPOLOOP_NO_SEED, RAY_ADDRESS, REPOLOOP_CLUSTER_BATCH_FILES, REPOLOOP_CLUSTER_EMBED_SUB,
REPOLOOP_CLUSTER_TRACE.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repoloop.errors import RepoloopError

MODEL_ENV = "REPOLOOP_EMBED_MODEL"
BASE_URL_ENV = "REPOLOOP_EMBED_BASE_URL"
API_KEY_ENV = "OPENAI_API_KEY"
MAX_TOKENS_ENV = "REPOLOOP_EMBED_MAX_TOKENS"
BACKEND_ENV = "REPOLOOP_EMBED_BACKEND"
PRECISION_ENV = "REPOLOOP_EMBED_PRECISION"
THREADS_ENV = "REPOLOOP_EMBED_THREADS"
CACHE_DIR_ENV = "REPOLOOP_CACHE_DIR"
CHROMA_URL_ENV = "REPOLOOP_CHROMA_URL"
EMBED_TESTS_ENV = "REPOLOOP_EMBED_TESTS"
VECTOR_CACHE_ENV = "REPOLOOP_VECTOR_CACHE"
NO_SEED_ENV = "REPOLOOP_NO_SEED"
RAY_ADDRESS_ENV = "RAY_ADDRESS"
CLUSTER_BATCH_FILES_ENV = "REPOLOOP_CLUSTER_BATCH_FILES"
CLUSTER_EMBED_SUB_ENV = "REPOLOOP_CLUSTER_EMBED_SUB"
CLUSTER_TRACE_ENV = "REPOLOOP_CLUSTER_TRACE"

# What encodes batches for the local model: "onnx" (ONNX Runtime, repoloop.indexer.embed.onnx_encoder;
# ~3x sentence-transformers' chunks/s here, vectors at cosine >= 0.99 to its own) or "torch"
# (sentence-transformers). A model the ONNX path does not implement uses sentence-transformers.
BACKENDS = ("onnx", "torch")
PRECISIONS = ("int8", "fp32")  # the ONNX graph's weights
SCOPES = ("code", "all")  # what is embedded: non-test code, or test files' chunks too


def parse_max_tokens(value: str | int | None, source: str = MAX_TOKENS_ENV) -> int | None:
    """A configured input length: a positive integer, or None when unset/empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise RepoloopError(f"{source} must be a positive number of tokens, got {value!r}")
    return n


def vector_cache_from_env(environ: Mapping[str, str]) -> Path | None:
    """REPOLOOP_VECTOR_CACHE alone (what `status` needs, without judging the other settings)."""
    value = environ.get(VECTOR_CACHE_ENV)
    return Path(value).expanduser() if value else None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def _positive(value: str | None, default: int) -> int:
    v = (value or "").strip()
    return int(v) if v.isdigit() and int(v) > 0 else default


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise RepoloopError(f"{what} must be one of {', '.join(allowed)}, not {value!r}")
    return value


@dataclass(frozen=True)
class EmbedConfig:
    """Which model embeds chunks (and queries for the re-rank), how it runs, where vectors go."""

    model: str | None = None  # None: the default local model (or text-embedding-3-small at an endpoint)
    base_url: str | None = None  # an OpenAI-compatible endpoint instead of the local model
    api_key: str | None = field(default=None, repr=False)  # for that endpoint
    max_tokens: int | None = None  # word pieces the local model reads; None: see embedders.DEFAULT_MAX_TOKENS
    backend: str = "onnx"
    precision: str = "int8"
    threads: int | None = None  # ONNX batches run at once; None: the CPUs this process may use
    cache_dir: Path | None = None  # the built ONNX graphs; None: ~/.cache/repoloop
    chroma_url: str | None = None  # None: the server the index was built with, else embedded
    scope: str = "code"
    vector_cache: Path | None = None  # query-time vectors shared by many indexes; None: beside each index

    def __post_init__(self) -> None:
        _choice(self.backend, BACKENDS, "embedding backend")
        _choice(self.precision, PRECISIONS, "embedding precision")
        _choice(self.scope, SCOPES, "embedding scope")
        parse_max_tokens(self.max_tokens, "max tokens")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **fields: Any) -> EmbedConfig:
        """The user's variables, then `fields` (flags given) on top; bad values fail here, before any work."""
        backend = environ.get(BACKEND_ENV, "").strip().lower() or "onnx"
        precision = environ.get(PRECISION_ENV, "").strip().lower() or "int8"
        threads = _positive(environ.get(THREADS_ENV), 0) or None
        cache_dir = environ.get(CACHE_DIR_ENV)
        xdg = environ.get("XDG_CACHE_HOME")
        env: dict[str, Any] = {
            "model": environ.get(MODEL_ENV) or None,
            "base_url": environ.get(BASE_URL_ENV) or None,
            "api_key": environ.get(API_KEY_ENV) or None,
            "max_tokens": parse_max_tokens(environ.get(MAX_TOKENS_ENV)),
            "backend": _choice(backend, BACKENDS, BACKEND_ENV),
            "precision": _choice(precision, PRECISIONS, PRECISION_ENV),
            "threads": threads,
            "cache_dir": (Path(cache_dir).expanduser() if cache_dir
                          else Path(xdg) / "repoloop" if xdg else None),
            "chroma_url": environ.get(CHROMA_URL_ENV) or None,
            "scope": "all" if _truthy(environ.get(EMBED_TESTS_ENV)) else "code",
            "vector_cache": vector_cache_from_env(environ),
        }
        return cls(**{**env, **{k: v for k, v in fields.items() if v is not None}})

    def replace(self, **fields: Any) -> EmbedConfig:
        """A copy with the fields given that are not None (flags not given leave the rest alone)."""
        return dataclasses.replace(self, **{k: v for k, v in fields.items() if v is not None})

    def onnx_cache_dir(self) -> Path:
        return self.cache_dir or Path.home() / ".cache" / "repoloop"


@dataclass(frozen=True)
class ClusterConfig:
    """`repoloop index --cluster`: where, and how work is cut (knobs tests and benchmarks turn)."""

    address: str | None = None  # HOST:PORT, ray://..., auto or local; None: index locally
    batch_files: int = 64  # files per parse task
    embed_sub: int = 128  # texts per embedding actor call (one ONNX pass over length-sorted texts)
    trace: Path | None = None  # a file: one JSON line per parse batch and store flush (tests)

    @classmethod
    def from_env(cls, environ: Mapping[str, str], address: str | None = None) -> ClusterConfig:
        """`address` (the --cluster flag), else RAY_ADDRESS; the knobs from their variables."""
        trace = environ.get(CLUSTER_TRACE_ENV)
        return cls(address=(address or environ.get(RAY_ADDRESS_ENV) or "").strip() or None,
                   batch_files=_positive(environ.get(CLUSTER_BATCH_FILES_ENV), cls.batch_files),
                   embed_sub=_positive(environ.get(CLUSTER_EMBED_SUB_ENV), cls.embed_sub),
                   trace=Path(trace) if trace else None)


@dataclass(frozen=True)
class IndexConfig:
    """Everything `repoloop index` reads from the environment, read once."""

    embed: EmbedConfig = field(default_factory=EmbedConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    auto_seed: bool = True  # seed a new worktree's index from a sibling's (REPOLOOP_NO_SEED turns it off)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> IndexConfig:
        return cls(embed=EmbedConfig.from_env(environ), cluster=ClusterConfig.from_env(environ),
                   auto_seed=environ.get(NO_SEED_ENV, "") in ("", "0"))
