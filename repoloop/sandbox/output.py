"""Bounded capture of a stream: keep the head and the tail, count what was cut in between.

Commands run by an agent may print gigabytes or binary junk; memory stays bounded by the cap and
the text given back is always valid (undecodable bytes are replaced).
"""

from __future__ import annotations

import threading
from typing import BinaryIO


class CappedBuffer:
    """Keeps the first cap/2 and the last cap/2 bytes written; counts every byte."""

    def __init__(self, cap: int) -> None:
        self.cap = max(int(cap), 2)
        self.head_cap = self.cap // 2
        self.tail_cap = self.cap - self.head_cap
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def write(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_cap - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.tail_cap:
                del self.tail[: len(self.tail) - self.tail_cap]

    @property
    def cut(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        head = self.head.decode("utf-8", errors="replace")
        if not self.cut:
            return head + self.tail.decode("utf-8", errors="replace")
        marker = f"\n[... {self.cut} bytes cut by repoloop (output kept: first and last {self.cap // 2} bytes) ...]\n"
        return head + marker + self.tail.decode("utf-8", errors="replace")


def drain(stream: BinaryIO, buf: CappedBuffer) -> threading.Thread:
    """Read a pipe to its end on a daemon thread (so a stuck writer never blocks the caller)."""

    def _run() -> None:
        try:
            while True:
                chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
                if not chunk:
                    break
                buf.write(chunk)
        except (OSError, ValueError):
            pass

    t = threading.Thread(target=_run, daemon=True, name="repoloop-sandbox-drain")
    t.start()
    return t
