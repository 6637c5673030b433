"""One writer per index: an `fcntl.flock` on `<index dir>/index.lock`.

The kernel drops a flock when its holder dies (even by SIGKILL), so a crashed run never leaves a
stale lock behind; the pid written into the file only makes the refusal message useful.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from repoloop.errors import IndexLockedError, RepoloopError

LOCK_NAME = "index.lock"


class IndexLock:
    """Context manager holding the write lock of one index directory."""

    def __init__(self, index_dir: Path, *, wait: bool = False, timeout: float | None = None) -> None:
        self.path = Path(index_dir) / LOCK_NAME
        self.wait = wait
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise RepoloopError(f"cannot write the index directory {self.path.parent}: {e.strerror}") from e
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not self.wait or (deadline is not None and time.monotonic() >= deadline):
                    holder = _read_pid(fd)
                    os.close(fd)
                    who = f" (pid {holder})" if holder else ""
                    raise IndexLockedError(
                        f"another `repoloop index` is writing {self.path.parent}{who};"
                        " try again when it ends, or pass --wait"
                    ) from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> IndexLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
