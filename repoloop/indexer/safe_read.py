"""Read one repository file's bytes without trusting what the walk saw (issue 14).

Between the walk and the read a file can be swapped for a FIFO (a plain open() blocks forever), a
symlink to /dev/zero (a plain read() never ends) or to a file outside the repository, or it can
grow past the size limit (a plain read() takes it whole). Every reader of a repository file's bytes
goes through `read_repo_file`: it resolves the path again and checks it is still inside the
repository (in-repo symlinks stay followed, as the walk follows them), opens the resolved path with
O_NONBLOCK | O_NOFOLLOW, checks the open descriptor (a regular file within the limit) and reads at
most limit + 1 bytes. It returns the bytes, or a skip reason from the walk's vocabulary.
"""

from __future__ import annotations

import errno
import os
import stat

from repoloop.indexer import walk as w  # the skip vocabulary (walk imports this module too)

VANISHED = "vanished"  # gone since the walk: not a skip, the file just left the repository

# O_NONBLOCK: opening a FIFO returns at once. O_NOFOLLOW: the resolved path must not have become
# a symlink since it was resolved. (getattr: these flags are POSIX-only.)
_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
          | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
_EOF_PROBE = 1 << 16  # read size after the first read (EOF check, or a file growing as we read)


def inside(path: str, root: str) -> bool:
    """`path` is `root` or below it (both absolute and resolved)."""
    return path == root or path.startswith(root if root.endswith(os.sep) else root + os.sep)


def read_repo_file(abspath: str, root: str, limit: int, *, prefix: bool = False) -> bytes | str:
    """The bytes of `abspath`, a file of the repository at `root` (resolved), or why not: a walk
    skip reason (SPECIAL, TOO_LARGE, SYMLINK_OUTSIDE, SYMLINK_LOOP, UNREADABLE) or VANISHED.

    A file over `limit` bytes is TOO_LARGE; with `prefix`, its first `limit` bytes are returned
    instead (a content sniff, an ignore file). Never blocks, never reads more than limit + 1 bytes.
    """
    resolved = os.path.realpath(abspath)
    if not inside(resolved, root):
        return w.SYMLINK_OUTSIDE
    try:
        fd = os.open(resolved, _FLAGS)
    except FileNotFoundError:
        return VANISHED
    except OSError as e:
        if e.errno == errno.ELOOP:  # a symlink again at the resolved path: swapped, or a loop
            return w.SYMLINK_LOOP
        if e.errno == errno.ENXIO:  # a socket
            return w.SPECIAL
        return w.UNREADABLE
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return w.SPECIAL
        if st.st_size > limit and not prefix:
            return w.TOO_LARGE
        if not _opened_inside(fd, root):
            return w.SYMLINK_OUTSIDE
        data = _read_at_most(fd, limit if prefix else limit + 1, st.st_size)
    except OSError:
        return w.UNREADABLE
    finally:
        os.close(fd)
    if len(data) > limit and not prefix:
        return w.TOO_LARGE  # grew after the fstat
    return data


def _opened_inside(fd: int, root: str) -> bool:
    """Where the descriptor really points (Linux /proc): a directory swapped for a symlink out of the
    repository between realpath() and open() shows here. Without /proc the realpath check stands."""
    try:
        where = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return True
    return inside(where, root)


def _read_at_most(fd: int, cap: int, size: int) -> bytes:
    """Up to `cap` bytes; the first read asks for the fstat size + 1, so an unchanged file takes one
    read and an EOF probe."""
    parts: list[bytes] = []
    got = 0
    ask = min(cap, size + 1)
    while got < cap:
        b = os.read(fd, ask)
        if not b:
            break
        parts.append(b)
        got += len(b)
        ask = min(cap - got, _EOF_PROBE)
    return parts[0] if len(parts) == 1 else b"".join(parts)
