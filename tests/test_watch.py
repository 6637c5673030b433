"""`repoloop watch` and the Watcher: real watchdog events on a real directory, real index passes,
changes checked through real search results (polled with a deadline)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from repoloop.indexer.lock import IndexLock
from repoloop.indexer.store import IndexStore
from repoloop.retrieval.api import RetrievalOptions
from repoloop.retrieval.retriever import open_retriever
from repoloop.service.watch import PathFilter, PipelineIndexer, UpdateReport, Watcher
from tests.fixtures_service import child_env, index, poll, repoloop_cmd, stop, write_sample


def _hits(repo: Path, query: str) -> set[str]:
    r = open_retriever(repo, options=RetrievalOptions(lexical_only=True))
    try:
        return {h.path for h in r.search(query, 10)}
    finally:
        r.close()


def _indexed(repo: Path) -> set[str]:
    with IndexStore.open(repo, readonly=True) as store:
        return {f.path for f in store.files()}


def test_path_filter_ignores_index_vcs_dependencies_and_gitignored(tmp_path: Path) -> None:
    repo = write_sample(tmp_path / "repo")
    f = PathFilter(repo)
    assert f.relative(str(repo / "pkg" / "config.py")) == "pkg/config.py"
    assert f.relative(str(repo / "pkg" / "util")) == "pkg/util"
    for ignored in (".repoloop/index.db", ".repoloop/chroma/x.bin", ".git/index", ".git/refs/heads/main",
                    "node_modules/left-pad/index.js", "ignored_dir/a.py", "pkg/debug.log", "."):
        assert f.relative(str(repo / ignored)) is None, ignored
    assert f.relative(str(tmp_path / "elsewhere.py")) is None
    # an index directory given with --index-dir, inside the repository
    g = PathFilter(repo, repo / "build" / "idx")
    assert g.relative(str(repo / "build" / "idx" / "index.db")) is None
    # .gitignore edits take effect on reload
    (repo / ".gitignore").write_text("pkg/util/\n")
    f.reload()
    assert f.relative(str(repo / "pkg" / "util" / "strings.py")) is None
    assert f.relative(str(repo / "pkg" / "debug.log")) == "pkg/debug.log"


def test_watch_command_follows_edit_add_delete_rename(tmp_path: Path) -> None:
    repo = write_sample(tmp_path / "repo")
    index(repo)
    proc = subprocess.Popen([*repoloop_cmd(), "watch", "--repo", str(repo), "--no-embed", "--debounce", "0.2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    try:
        poll(lambda: any("watching" in ln for ln in log) or proc.poll() is not None, what="watch started")
        assert proc.poll() is None, log

        # edit
        strings = repo / "pkg" / "util" / "strings.py"
        strings.write_text(strings.read_text() + "\n\ndef kebab_wombat_case(text):\n    return text\n")
        poll(lambda: "pkg/util/strings.py" in _hits(repo, "kebab_wombat_case"), what="edit indexed")
        # add
        (repo / "pkg" / "billing.py").write_text("def compute_invoice_total(lines):\n    return sum(lines)\n")
        poll(lambda: "pkg/billing.py" in _hits(repo, "compute_invoice_total"), what="new file indexed")
        # delete
        (repo / "pkg" / "billing.py").unlink()
        poll(lambda: "pkg/billing.py" not in _hits(repo, "compute_invoice_total"), what="deleted file dropped")
        # rename
        (repo / "pkg" / "server.py").rename(repo / "pkg" / "http_server.py")
        poll(lambda: {"pkg/http_server.py"} == _hits(repo, "start_server") & {"pkg/http_server.py", "pkg/server.py"},
             what="renamed file under its new path only")
        # delete a whole directory
        shutil.rmtree(repo / "pkg" / "util")
        poll(lambda: not any(p.startswith("pkg/util/") for p in _indexed(repo)), what="deleted directory dropped")
        assert "pkg/util/strings.py" not in _hits(repo, "slugify kebab_wombat_case")
        assert proc.poll() is None
    finally:
        stop(proc)
    assert proc.returncode == 0, log  # SIGTERM stops it cleanly
    assert proc.stdout is not None and proc.stdout.read() == ""
    assert any("re-indexed 1 path(s)" in ln for ln in log), log  # a file edit: only that path, no walk


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True, timeout=60)


def _py_files_on_disk(repo: Path) -> set[str]:
    return {p.relative_to(repo).as_posix() for p in repo.rglob("*.py") if ".git" not in p.parts}


class _Recorder:
    """Wraps the real index pass to record how many passes ran and whether two ever overlapped."""

    def __init__(self, inner: PipelineIndexer) -> None:
        self.inner = inner
        self.active = 0
        self.max_active = 0
        self.calls: list[frozenset[str] | None] = []
        self._lock = threading.Lock()

    def __call__(self, paths: frozenset[str] | None) -> object:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.calls.append(paths)
        try:
            time.sleep(0.05)  # widen the window in which an overlapping pass would show
            return self.inner(paths)
        finally:
            with self._lock:
                self.active -= 1


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_checkout_burst_is_debounced_into_few_single_passes(tmp_path: Path) -> None:
    repo = write_sample(tmp_path / "repo")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "sample")
    _git(repo, "checkout", "-qb", "big")
    for d in range(25):  # 250 new files in 25 new directories
        pkg = repo / "gen" / f"mod{d:02d}"
        pkg.mkdir(parents=True)
        for i in range(10):
            (pkg / f"f{i}.py").write_text(f"def generated_{d}_{i}(x):\n    return x + {i}\n")
    shutil.rmtree(repo / "pkg" / "util")
    (repo / "pkg" / "config.py").write_text((repo / "pkg" / "config.py").read_text() + "\nBRANCH = 'big'\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "big")
    _git(repo, "checkout", "-q", "main")
    index(repo)
    assert _indexed(repo) >= _py_files_on_disk(repo)

    rec = _Recorder(PipelineIndexer(repo, embed=False))
    reports: list[UpdateReport] = []
    # A debounce well above a busy machine's scheduling gaps: the burst's events stay one burst
    # even when git is descheduled between two files (the suite runs beside CPU hogs).
    w = Watcher(repo, rec, debounce=1.0, on_update=reports.append)
    w.start()
    try:
        # The observer is live once a change made now is indexed (a condition, not a pause).
        (repo / "sentinel.py").write_text("def watcher_is_live():\n    return 1\n")
        poll(lambda: w.idle() and "sentinel.py" in _hits(repo, "watcher_is_live"), what="the watcher is live")
        before = len(rec.calls)
        _git(repo, "checkout", "-q", "big")  # hundreds of events, directories appearing and vanishing
        expected = _py_files_on_disk(repo)
        assert len(expected) > 250
        poll(lambda: w.idle() and {p for p in _indexed(repo) if p.endswith(".py")} == expected,
             timeout=120, what="index caught up with the checkout")
        burst = rec.calls[before:]
        assert 1 <= len(burst) <= 30, burst  # debounced: a few passes, not one per event (hundreds; busy-machine slack)
        assert None in burst  # the burst (directories among it) became a full incremental pass

        _git(repo, "checkout", "-q", "main")  # back: gen/ (a whole tree) deleted, pkg/util restored
        expected = _py_files_on_disk(repo)
        poll(lambda: w.idle() and {p for p in _indexed(repo) if p.endswith(".py")} == expected,
             timeout=120, what="index caught up with the checkout back")
        assert "pkg/util/strings.py" in _hits(repo, "slugify")
        assert not any(p.startswith("gen/") for p in _indexed(repo))

        # The passes' own writes (into .repoloop/) never reach a pass: no pass was ever asked for
        # a path of the index directory (PathFilter drops them:
        # test_path_filter_ignores_index_vcs_dependencies_and_gitignored).
        assert not any(p.startswith(".repoloop") for paths in rec.calls if paths for p in paths), rec.calls
        assert rec.max_active == 1
        assert all(r.error is None for r in reports), [r.error for r in reports]
    finally:
        w.stop()


def test_polling_observer_fallback_sees_changes(tmp_path: Path) -> None:
    """--poll (and the fallback when inotify runs out of watches) uses watchdog's PollingObserver."""
    repo = write_sample(tmp_path / "repo")
    index(repo)
    w = Watcher(repo, PipelineIndexer(repo, embed=False), debounce=0.1, polling=True)
    w.start()
    try:
        assert type(w._observer).__name__ == "PollingObserver"
        (repo / "pkg" / "polled.py").write_text("def found_by_polling():\n    return 3\n")
        poll(lambda: "pkg/polled.py" in _hits(repo, "found_by_polling"), what="polled change indexed")
    finally:
        w.stop()


def test_a_locked_index_is_retried_not_lost(tmp_path: Path) -> None:
    repo = write_sample(tmp_path / "repo")
    index(repo)
    reports: list[UpdateReport] = []
    w = Watcher(repo, PipelineIndexer(repo, embed=False), debounce=0.1, on_update=reports.append)
    w.start()
    try:
        with IndexLock(repo / ".repoloop"):  # another `repoloop index` is writing
            (repo / "pkg" / "late.py").write_text("def arrives_while_locked():\n    return 1\n")
            poll(lambda: any(r.error for r in reports), what="a pass refused by the lock")
            assert "another" in next(r.error for r in reports if r.error)
        poll(lambda: "pkg/late.py" in _hits(repo, "arrives_while_locked"), timeout=30,
             what="the change indexed once the lock is free")
        poll(lambda: reports[-1].error is None, what="the retry reported")
    finally:
        w.stop()
