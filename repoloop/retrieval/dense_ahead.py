"""The dense half of a one-shot query, computed ahead in a forked child process.

Why a process: a one-shot `repoloop search` on an embedded index pays fixed costs for its dense
half (importing numpy, loading the tokenizer and the weights: ~0.1 s) that hold the GIL, so a
thread cannot overlap them with the lexical half; that made an embedded search ~1.8x a lexical
one. A child forked before this process opens the index computes the nearest vectors from the
index's compact array (the same `Dense` code a warm process runs) on the other core, while this
process runs the lexical signals and never imports numpy. The retriever takes the child's answer
only for the query and depth it was computed for; anything else drops it and goes the usual way.

Only where it is safe: a POSIX fork, no other thread in this process yet. Only an index with a
compact array is answered (a chromadb-only or `--no-embed` index is searched in process, as
before; its child exits at once). A child that fails answers nothing, and the retriever then
searches in process, which reports the error as it always did.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repoloop.indexer.config import EmbedConfig

Nearest = list[tuple[str, float]]  # (embedding key, similarity), best first
_MAX_ANSWER = 64 << 20  # bytes read from the child at most (an answer is ~60 bytes a neighbour)


class DenseAhead:
    """A forked child computing `Dense.nearest(query, depth)`; take its answer once, or drop it."""

    def __init__(self, pid: int, fd: int, query: str, depth: int) -> None:
        self.pid = pid
        self.query = query
        self.depth = depth
        self._fd: int | None = fd

    @classmethod
    def start(cls, repo: Path, index_dir: Path | None, query: str, depth: int, embed: EmbedConfig | None = None
              ) -> DenseAhead | None:
        """Fork the child for `repo`'s index (in `index_dir`, else the default place), or None where
        it would not be safe (see the module's doc). Whether the index has vectors at all is the
        child's to find out: this process has not opened the index yet."""
        if not hasattr(os, "fork") or threading.active_count() > 1 or not query.strip():
            return None
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller's code
            code = 1
            try:
                os.close(r)
                answer = _nearest(Path(repo), index_dir, query, depth, embed)
                data = json.dumps(answer).encode()
                view = memoryview(data)
                while view:
                    view = view[os.write(w, view):]
                code = 0
            except BaseException:  # noqa: BLE001 - the parent searches in process and reports it
                pass
            finally:
                os._exit(code)  # no atexit handlers, no flush of the parent's buffered output
        os.close(w)
        return cls(pid, r, query, depth)

    def matches(self, query: str, depth: int) -> bool:
        return self._fd is not None and (query, depth) == (self.query, self.depth)

    def result(self) -> Nearest | None:
        """The child's answer (waits for it), or None when it has none: no array it could read, a
        failure. Once: the pipe is closed and the child reaped."""
        fd, self._fd = self._fd, None
        if fd is None:
            return None
        chunks: list[bytes] = []
        size = 0
        try:
            while size <= _MAX_ANSWER:
                b = os.read(fd, 1 << 16)
                if not b:
                    break
                chunks.append(b)
                size += len(b)
        finally:
            os.close(fd)
        ok = self._reap() == 0
        if not ok or size > _MAX_ANSWER:
            return None
        try:
            answer = json.loads(b"".join(chunks))
        except ValueError:
            return None
        if answer is None:
            return None
        return [(str(k), float(s)) for k, s in answer]

    def discard(self) -> None:
        """Not needed (another query, an error, the retriever closed): stop the child and reap it."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        os.close(fd)
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._reap()

    def _reap(self) -> int | None:
        """Wait for the child; its exit code (None when it was reaped already)."""
        try:
            _pid, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return None
        return os.waitstatus_to_exitcode(status)


def _nearest(repo: Path, index_dir: Path | None, query: str, depth: int, embed: EmbedConfig | None
             ) -> Nearest | None:
    """In the child: what `Dense.nearest` answers from the compact array, or None without one."""
    from repoloop.indexer.store import DB_NAME, IndexStore, index_dir_for

    idx = index_dir_for(repo.expanduser().resolve(), index_dir)
    # vector_array.DIR, spelled here: that module imports numpy, which an index without vectors never needs
    if not any((idx / "dense").glob("*.npy")):
        return None
    from repoloop.retrieval.dense import Dense

    store = IndexStore(idx / DB_NAME, readonly=True)
    try:
        dense = Dense(store, idx, embed_config=embed)
        if not dense.available or not dense.open_array() or not dense.prepare():
            return None
        return dense.nearest(query, depth)
    finally:
        store.close()
