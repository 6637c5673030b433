"""One embedding model per long-running process (`serve`, `watch`), shared by the index passes
and the query path.

Without it every debounced index pass built a new embedder (seconds: the model is read again) and
the server's Retriever loaded its own copy as well. A `SharedEmbedder` wraps the one embedder of
the process: the watcher's passes and the Retriever's queries take turns on it (a fast tokenizer
must not be entered from two threads at once), a big batch in slices so that a query waits for
one slice at most, never for a whole pass.

`ModelLoads` makes loads observable without touching the model: it counts (and can print) the
log record sentence-transformers (or repoloop's numpy query encoder) writes each time it reads a
model from disk.
"""

from __future__ import annotations

import logging
import threading
from typing import IO

from repoloop.indexer.embed.embedders import Embedder
from repoloop.retrieval.limits import check_deadline

SLICE = 32  # texts per turn on the model (sentence-transformers encodes in batches of 32 anyway)
# Where model loads are logged: sentence-transformers' own record, and repoloop's numpy encoder
# (a query-only process reads the same weights without sentence-transformers).
_LOAD_LOGGERS = ("sentence_transformers", "repoloop.indexer.embed.bert_numpy", "repoloop.indexer.embed.onnx_encoder")


class SharedEmbedder:
    """Thread-safe front of one embedder; `name` and `dim` are the wrapped one's, so the
    embedding cache keys are unchanged."""

    def __init__(self, inner: Embedder, *, slice_size: int = SLICE) -> None:
        self.inner = inner
        self.slice_size = max(1, slice_size)
        self.calls = 0  # embed() calls served (tests read it: the index passes used this model)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        with self._lock:
            return self.inner.dim

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Embed in slices; a query's embedding (the re-rank's chunks) stops between two slices
        once its deadline passed (index passes run without one)."""
        out: list[list[float]] = []
        for i in range(0, len(texts), self.slice_size):
            check_deadline()
            with self._lock:
                out.extend(self.inner.embed(texts[i : i + self.slice_size]))
        with self._lock:
            self.calls += 1
        return out


class ModelLoads(logging.Handler):
    """Counts model loads from sentence-transformers' own "Loading ... model from PATH" record, and
    writes one line per load to `stream` when given (a server's log on stderr)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        super().__init__(logging.INFO)
        self.count = 0
        self.stream = stream
        self._loggers = [logging.getLogger(n) for n in _LOAD_LOGGERS]
        self._old_levels = [lg.level for lg in self._loggers]
        self._passed_levels = [logging.WARNING] * len(self._loggers)

    def emit(self, record: logging.LogRecord) -> None:
        for lg, passed in zip(self._loggers, self._passed_levels, strict=True):
            if record.name == lg.name or record.name.startswith(lg.name + "."):
                if record.levelno >= passed and lg.parent is not None:
                    lg.parent.handle(record)  # what the logger let through before goes on as before
                break
        msg = record.getMessage()
        if not (msg.startswith("Loading") and " model from " in msg):
            return
        self.count += 1
        if self.stream is not None:
            print(f"repoloop: embedding model loaded ({self.count}): {msg.split(' model from ', 1)[1]}",
                  file=self.stream, flush=True)

    def __enter__(self) -> ModelLoads:
        self._passed_levels = [lg.getEffectiveLevel() for lg in self._loggers]
        for lg in self._loggers:
            lg.addHandler(self)
            lg.setLevel(logging.INFO)
            lg.propagate = False  # the extra INFO records reach this handler only
        return self

    def __exit__(self, *exc: object) -> None:
        for lg, level in zip(self._loggers, self._old_levels, strict=True):
            lg.removeHandler(self)
            lg.setLevel(level)
            lg.propagate = True
