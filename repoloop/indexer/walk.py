"""Find the files worth indexing, streaming, and say why every other file was left out.

The walk honours `.gitignore` (at every level, relative to its directory, with negations),
`.git/info/exclude` and `.repoloopignore`; prunes dependency and build folders; never follows a
symlink out of the repository or round a loop, nor one to a path it indexes under that path's own
name (no file is indexed twice); and leaves out secrets, binaries, huge and
minified files. Each skip is recorded with a reason, so `repoloop status` can say what was left
out. It uses `os.scandir` and yields one file at a time: a large repository is never held whole.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import stat
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from repoloop.indexer import safe_read

DEFAULT_MAX_FILE_SIZE = 1024 * 1024
HEAD_BYTES = 8192
IGNORE_FILE_BYTES = 8 << 20  # an ignore file is read up to this (a FIFO or /dev/zero must not stall the walk)

# Folders that hold dependencies, build output or tool caches: never the user's source.
PRUNED_DIRS = frozenset({
    ".git", ".hg", ".svn", ".repoloop", "node_modules", "bower_components", ".venv", "venv",
    "__pycache__", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis",
    ".eggs", ".gradle", ".idea", ".next", ".nuxt", ".terraform", ".cache", "site-packages",
    ".parcel-cache",
})
_SILENT_DIRS = frozenset({".git", ".hg", ".svn", ".repoloop"})
# Build output or vendored code, pruned unless they hold a Python package of the project's own
# (a `build/__init__.py` is source, `vendor/github.com/...` is not).
SOFT_PRUNED_DIRS = frozenset({"dist", "build", "target", "_build", "out", "vendor"})

# Likely secrets: never read, never indexed.
SECRET_PATTERNS = (
    ".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "id_rsa*",
    "id_dsa*", "id_ecdsa*", "id_ed25519*", ".npmrc", ".pypirc", ".netrc", "_netrc", ".pgpass",
    "credentials", "credentials*.json", "*credentials*.json", "service-account*.json", ".git-credentials",
    "*.kdbx", "secrets.yml", "secrets.yaml", ".htpasswd", "*.asc", "*.gpg",
)
# Harmless files with secret-looking names.
_SECRET_EXEMPT = (".env.example", ".env.sample", ".env.template", ".env.dist")

# Generated or minified by name.
GENERATED_PATTERNS = (
    "*.min.js", "*.min.css", "*-min.js", "*.bundle.js", "*.chunk.js", "*.map", "package-lock.json",
    "yarn.lock", "pnpm-lock.yaml", "poetry.lock", "Cargo.lock", "composer.lock", "Gemfile.lock",
    "Pipfile.lock", "uv.lock", "go.sum", "*_pb2.py", "*.pb.go",
)
MINIFIED_AVG_LINE = 300
MINIFIED_MAX_LINE = 5000

# Skip reasons (the vocabulary shown by `repoloop status`).
IGNORED = "gitignored"
REPOLOOPIGNORED = "repoloopignored"
PRUNED = "dependency_or_build_dir"
SECRET = "secret"
BINARY = "binary"
TOO_LARGE = "too_large"
MINIFIED = "minified_or_generated"
SYMLINK_OUTSIDE = "symlink_outside_repo"
SYMLINK_LOOP = "symlink_loop"
BROKEN_SYMLINK = "broken_symlink"
SYMLINK_DUPLICATE = "symlink_to_indexed_path"  # inside the repository, to a path indexed as itself
UNREADABLE = "unreadable"
SPECIAL = "not_a_regular_file"
UNSUPPORTED = "unsupported_type"
BAD_NAME = "name_not_utf8"
# A line of an ignore file that git would skip (a lone `!`, a bad range): recorded as `FILE:LINE`.
BAD_IGNORE_RULE = "bad_ignore_rule"


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # relative to the repo root, forward slashes
    abspath: str
    size: int
    mtime: float


@dataclass(slots=True)
class WalkOptions:
    max_file_size: int = DEFAULT_MAX_FILE_SIZE
    # Name filter applied before any file is read (e.g. "has a grammar or is text"); False -> UNSUPPORTED.
    want: Callable[[str], bool] | None = None
    # (path, size, mtime) -> True when the file is known unchanged, so its content is not sniffed again.
    known_unchanged: Callable[[str, int, float], bool] | None = None


@dataclass(slots=True)
class _Ignores:
    """The ignore specs in force in one directory: (directory prefix, spec, reason), outermost first."""

    specs: tuple[tuple[str, pathspec.GitIgnoreSpec, str], ...] = ()

    def extended(self, prefix: str, dirpath: str, names: set[str], root: str,
                 on_bad: Callable[[str, str], None] | None = None) -> _Ignores:
        added = []
        for fname, reason in ((".gitignore", IGNORED), (".repoloopignore", REPOLOOPIGNORED)):
            if fname not in names:
                continue
            spec = _read_spec(os.path.join(dirpath, fname), root, prefix + fname, on_bad)
            if spec is not None:
                added.append((prefix, spec, reason))
        return _Ignores(self.specs + tuple(added)) if added else self

    def reason(self, rel: str, is_dir: bool) -> str | None:
        """Git semantics: the deepest (then last) matching pattern decides; negation re-includes."""
        verdict: str | None = None
        for prefix, spec, reason in self.specs:
            sub = rel[len(prefix):] if prefix else rel
            res = spec.check_file(sub + "/" if is_dir else sub)
            if res.include is True:
                verdict = reason
            elif res.include is False:
                verdict = None
        return verdict


def _read_spec(path: str, root: str, rel: str = "",
               on_bad: Callable[[str, str], None] | None = None) -> pathspec.GitIgnoreSpec | None:
    """The spec of one ignore file; None when it has no rules or cannot be read (the file itself is
    then skipped with its reason by the walk, like any other file)."""
    data = safe_read.read_repo_file(path, root, IGNORE_FILE_BYTES, prefix=True)
    if isinstance(data, str):
        return None
    spec, bad = parse_ignore_lines(data.decode("utf-8", errors="replace").splitlines())
    if on_bad is not None:
        for lineno in bad:
            on_bad(f"{rel}:{lineno}", BAD_IGNORE_RULE)
    return spec


def parse_ignore_lines(lines: list[str]) -> tuple[pathspec.GitIgnoreSpec | None, list[int]]:
    """(spec, 1-based numbers of the lines left out). Git skips a rule it cannot use (a lone `!`,
    an unclosed range) and keeps the others; so does this, where pathspec would raise for the whole
    file and lose the index run."""
    if not any(ln.strip() for ln in lines):
        return None, []
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines), []
    except Exception:  # noqa: BLE001 - pathspec raises its own errors, ValueError, re.error, ...
        pass
    good: list[str] = []
    bad: list[int] = []
    for i, line in enumerate(lines, 1):
        try:
            pathspec.GitIgnoreSpec.from_lines([line])
        except Exception:  # noqa: BLE001
            bad.append(i)
            good.append("")  # keeps the other lines' order (the last match wins)
            continue
        good.append(line)
    return (pathspec.GitIgnoreSpec.from_lines(good) if any(ln.strip() for ln in good) else None), bad


# One compiled regex per pattern list (same as fnmatchcase on each): the walk tests every name,
# and 50 fnmatch calls per file were most of a re-index walk's CPU time on big trees.
_SECRET_RE = re.compile("|".join(fnmatch.translate(p) for p in SECRET_PATTERNS))
_GENERATED_RE = re.compile("|".join(fnmatch.translate(p) for p in GENERATED_PATTERNS))


def printable_path(rel: str) -> str:
    """A path whose name bytes are not UTF-8, with those bytes shown as \\xNN."""
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def is_secret(name: str) -> bool:
    if name in _SECRET_EXEMPT:
        return False
    return _SECRET_RE.match(name) is not None


def is_generated_name(name: str) -> bool:
    return _GENERATED_RE.match(name) is not None


def classify_head(head: bytes) -> str | None:
    """BINARY or MINIFIED from the first bytes of a file, else None."""
    if b"\0" in head:
        return BINARY
    lines = head.split(b"\n")
    complete = lines[:-1]
    if any(len(ln) > MINIFIED_MAX_LINE for ln in lines):
        return MINIFIED
    if complete and len(head) >= 2048 and len(head) / len(lines) > MINIFIED_AVG_LINE:
        return MINIFIED
    return None


class Walker:
    """One walk over a repository. Iterate it for FileEntry; afterwards `skips` maps path -> reason.

    A skipped directory is recorded once, with a trailing slash, not file by file.
    """

    def __init__(self, root: Path, options: WalkOptions | None = None) -> None:
        self.root = Path(root).resolve()
        self.options = options or WalkOptions()
        self.skips: dict[str, str] = {}

    def skip_counts(self) -> dict[str, int]:
        return dict(Counter(self.skips.values()))

    def __iter__(self) -> Iterator[FileEntry]:
        root = str(self.root)
        st = os.stat(root)
        yield from self._walk_dir(root, "", self._root_ignores(), {(st.st_dev, st.st_ino)})

    def check(self, rel: str) -> FileEntry | None:
        """Apply the walk's rules to one path without walking the tree (for a watcher's changed
        paths): its FileEntry, or None when it is gone, a directory, or skipped (then in `skips`)."""
        kept = self._follow(rel)
        if kept is None or kept[2]:
            return None
        path, rel, _is_dir, st = kept
        return FileEntry(rel, path, st.st_size, st.st_mtime)

    def _reached(self, rel: str) -> bool:
        """Whether the walk reaches `rel`, a path inside the repository without symlinks, on its
        own (nothing about it is recorded in `skips`)."""
        if rel in ("", "."):
            return True
        saved, self.skips = self.skips, {}
        try:
            return self._follow(rel) is not None
        finally:
            self.skips = saved

    def _follow(self, rel: str) -> tuple[str, str, bool, os.stat_result] | None:
        """(absolute path, relative path, is_dir, stat) of `rel` when the walk keeps it and every
        directory above it; None when it is gone or skipped (then in `skips`)."""
        root = str(self.root)
        st = os.stat(root)
        ancestors = {(st.st_dev, st.st_ino)}
        ignores = self._root_ignores()
        parts = [p for p in rel.replace(os.sep, "/").split("/") if p and p != "."]
        dirpath, prefix = root, ""
        for i, name in enumerate(parts):
            present = {n for n in (".gitignore", ".repoloopignore") if os.path.isfile(os.path.join(dirpath, n))}
            ignores = ignores.extended(prefix, dirpath, present, root, self._skip)
            path = os.path.join(dirpath, name)
            if not os.path.lexists(path):
                return None
            verdict = self._classify(_PathEntry(name, path), prefix + name, ignores, ancestors)
            if verdict is None:
                return None
            is_dir, st = verdict
            if i == len(parts) - 1:
                return path, prefix + name, is_dir, st
            if not is_dir:
                return None
            ancestors = ancestors | {(st.st_dev, st.st_ino)}
            dirpath, prefix = path, prefix + name + "/"
        return None

    def _root_ignores(self) -> _Ignores:
        exclude_path = os.path.join(str(self.root), ".git", "info", "exclude")
        exclude = _read_spec(exclude_path, str(self.root), ".git/info/exclude", self._skip) \
            if os.path.isfile(exclude_path) else None
        return _Ignores((("", exclude, IGNORED),)) if exclude is not None else _Ignores()

    # -- internals ----------------------------------------------------------------------------
    def _skip(self, rel: str, reason: str) -> None:
        self.skips[rel] = reason

    def _walk_dir(self, dirpath: str, prefix: str, ignores: _Ignores,
                  ancestors: set[tuple[int, int]]) -> Iterator[FileEntry]:
        try:
            with os.scandir(dirpath) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError:
            self._skip(prefix or "./", UNREADABLE)
            return
        except OSError:
            self._skip(prefix or "./", UNREADABLE)
            return
        ignores = ignores.extended(prefix, dirpath, {e.name for e in entries}, str(self.root), self._skip)
        for entry in entries:
            rel = prefix + entry.name
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:  # bytes that are not UTF-8 (surrogate-escaped): unstorable
                self._skip(printable_path(rel), BAD_NAME)
                continue
            yield from self._entry(entry, rel, ignores, ancestors)

    def _entry(self, entry: os.DirEntry, rel: str, ignores: _Ignores,
               ancestors: set[tuple[int, int]]) -> Iterator[FileEntry]:
        verdict = self._classify(entry, rel, ignores, ancestors)
        if verdict is None:
            return
        is_dir, st = verdict
        if is_dir:
            yield from self._walk_dir(entry.path, rel + "/", ignores, ancestors | {(st.st_dev, st.st_ino)})
        else:
            yield FileEntry(rel, entry.path, st.st_size, st.st_mtime)

    def _classify(self, entry: os.DirEntry | _PathEntry, rel: str, ignores: _Ignores,
                  ancestors: set[tuple[int, int]]) -> tuple[bool, os.stat_result] | None:
        """(is_dir, stat) for an entry to keep (a directory to descend into, or a file to index);
        None when skipped, with the reason recorded."""
        try:
            is_link = entry.is_symlink()
            st = entry.stat(follow_symlinks=True)
        except FileNotFoundError:
            self._skip(rel, BROKEN_SYMLINK)
            return None
        except PermissionError:
            self._skip(rel, UNREADABLE)
            return None
        except OSError as e:  # ELOOP: a symlink pointing at itself
            self._skip(rel, SYMLINK_LOOP if e.errno == errno.ELOOP else UNREADABLE)
            return None
        is_dir = stat.S_ISDIR(st.st_mode)
        name = entry.name
        if name in _SILENT_DIRS and (is_dir or name == ".git"):
            # VCS and repoloop's own data: not worth a line in the skip report. A `.git` *file* is
            # a linked worktree's (or a submodule's) pointer to its git directory: VCS data too.
            return None
        if is_dir and (name in PRUNED_DIRS or (name in SOFT_PRUNED_DIRS and not os.path.exists(
                os.path.join(entry.path, "__init__.py")))):
            self._skip(rel + "/", PRUNED)
            return None
        why = ignores.reason(rel, is_dir)
        if why:
            self._skip(rel + "/" if is_dir else rel, why)
            return None
        target = ""
        if is_link:
            target = os.path.realpath(entry.path)
            root = str(self.root)
            if target != root and not target.startswith(root + os.sep):
                self._skip(rel + "/" if is_dir else rel, SYMLINK_OUTSIDE)
                return None
        if is_dir and (st.st_dev, st.st_ino) in ancestors:
            self._skip(rel + "/", SYMLINK_LOOP)
            return None
        if is_link and self._reached(os.path.relpath(target, str(self.root))):
            # Indexed under its own path: a second copy would double every hit and vector of it.
            self._skip(rel + "/" if is_dir else rel, SYMLINK_DUPLICATE)
            return None
        if is_dir:
            return True, st
        if not stat.S_ISREG(st.st_mode):
            self._skip(rel, SPECIAL)
            return None
        reason = self._file_reason(entry.path, rel, name, st)
        if reason:
            self._skip(rel, reason)
            return None
        return False, st

    def _file_reason(self, abspath: str, rel: str, name: str, st: os.stat_result) -> str | None:
        opts = self.options
        if is_secret(name):
            return SECRET
        if is_generated_name(name):
            return MINIFIED
        if opts.want is not None and not opts.want(rel):
            return UNSUPPORTED
        if st.st_size > opts.max_file_size:
            return TOO_LARGE
        if opts.known_unchanged is not None and opts.known_unchanged(rel, st.st_size, st.st_mtime):
            return None
        head = safe_read.read_repo_file(abspath, str(self.root), HEAD_BYTES, prefix=True)
        if isinstance(head, str):  # changed since its stat a moment ago
            return UNREADABLE if head == safe_read.VANISHED else head
        return classify_head(head)


class _PathEntry:
    """The bits of os.DirEntry that _classify uses, for a path not found by scandir."""

    def __init__(self, name: str, path: str) -> None:
        self.name, self.path = name, path

    def is_symlink(self) -> bool:
        return os.path.islink(self.path)

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        return os.stat(self.path, follow_symlinks=follow_symlinks)


def walk(root: Path, options: WalkOptions | None = None) -> Walker:
    """A Walker over `root`: `for entry in w: ...`, then `w.skips`."""
    return Walker(root, options)
