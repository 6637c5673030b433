"""Errors a user can cause; the CLI prints them in one line and exits 2 (never a traceback)."""


class RepoloopError(Exception):
    """A user or input error with a message fit to print as is."""


class IndexLockedError(RepoloopError):
    """Another `repoloop index` holds the write lock of this index."""


class IndexMissingError(RepoloopError):
    """The repository has no index yet (run `repoloop index`)."""
