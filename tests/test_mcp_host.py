"""RetrieverHost: the one warm Retriever of `repoloop serve`, on one thread, swapped on reload."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from repoloop.errors import RepoloopError
from repoloop.retrieval.api import RetrievalOptions, Retriever
from repoloop.retrieval.retriever import open_retriever
from repoloop.service.host import RetrieverHost
from tests.fixtures_service import index, write_sample


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    r = write_sample(tmp_path / "repo")
    index(r)
    return r


def test_every_call_runs_on_the_one_retriever_thread(repo: Path) -> None:
    host = RetrieverHost(lambda: open_retriever(repo, options=RetrievalOptions(lexical_only=True)))
    host.start()
    threads: set[int] = set()

    def ask(r: Retriever) -> list[str]:
        threads.add(threading.get_ident())
        return [h.path for h in r.search("parse_config", 3)]

    async def many() -> list[list[str]]:
        return await asyncio.gather(*(host.call(ask) for _ in range(40)))

    try:
        results = asyncio.run(many())
    finally:
        host.close()
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert all(res and res[0] == "pkg/config.py" for res in results)


def test_reload_sees_the_new_index_and_a_failed_reopen_keeps_serving(repo: Path) -> None:
    opens = {"n": 0, "fail": False}

    def opener() -> Retriever:
        opens["n"] += 1
        if opens["fail"]:
            raise RuntimeError("index being rewritten")
        return open_retriever(repo, options=RetrievalOptions(lexical_only=True))

    host = RetrieverHost(opener)
    host.start()
    try:
        first = host.submit(lambda r: r).result()
        assert host.generation == 1
        (repo / "pkg" / "billing.py").write_text("def compute_invoice_total(lines):\n    return sum(lines)\n")
        index(repo)
        host.reload(reopen=True).result()
        second = host.submit(lambda r: r).result()
        assert second is not first and host.generation == 2
        assert host.submit(lambda r: r.definitions("compute_invoice_total")).result()[0]["path"] == "pkg/billing.py"

        opens["fail"] = True
        with pytest.raises(RuntimeError):
            host.reload(reopen=True).result()
        assert host.submit(lambda r: r).result() is second  # the old one still answers
        assert host.submit(lambda r: r.search("slugify", 3)).result()[0].path == "pkg/util/strings.py"
        assert host.generation == 2
    finally:
        host.close()


def test_queries_keep_answering_while_a_new_retriever_warms(repo: Path) -> None:
    """A reload opens and warms the new Retriever beside the old one: no query waits for it."""
    gate = threading.Event()
    opened: list[Retriever] = []

    def opener() -> Retriever:
        r = open_retriever(repo, options=RetrievalOptions(lexical_only=True))
        if opened:  # the reload's open: hold it until the test has queried meanwhile
            assert gate.wait(30)
        opened.append(r)
        return r

    host = RetrieverHost(opener)
    host.start()
    try:
        pending = host.reload(reopen=True)
        for _ in range(5):  # answered by the old Retriever while the new one is held open
            hit = host.submit(lambda r: r.search("parse_config", 1)).result(timeout=60)
            assert hit[0].path == "pkg/config.py"
        assert not pending.done() and host.generation == 1
        gate.set()
        pending.result(timeout=30)
        assert host.generation == 2
        assert host.submit(lambda r: r).result() is opened[1]
    finally:
        gate.set()
        host.close()


def test_reload_refreshes_in_place_and_falls_back_to_a_new_retriever(repo: Path) -> None:
    """A plain reload keeps the Retriever (and so its model and caches) and sees the new index; a
    refresh that fails opens a new Retriever instead, so the index still comes through."""
    opens = {"n": 0}

    def opener() -> Retriever:
        opens["n"] += 1
        return open_retriever(repo, options=RetrievalOptions(lexical_only=True))

    host = RetrieverHost(opener)
    host.start()
    try:
        first = host.submit(lambda r: r).result()
        (repo / "pkg" / "billing.py").write_text("def compute_invoice_total(lines):\n    return sum(lines)\n")
        index(repo)
        host.reload().result()
        assert host.submit(lambda r: r).result() is first and opens["n"] == 1 and host.generation == 2
        assert host.submit(lambda r: r.definitions("compute_invoice_total")).result()[0]["path"] == "pkg/billing.py"

        first.store.db_path.rename(first.store.db_path.with_name("moved.db"))  # refresh() cannot see it ...
        (repo / "pkg" / "billing.py").unlink()
        index(repo)  # ... a new index file is made
        host.reload().result()  # refresh finds a new file and reopens its store in place
        assert host.submit(lambda r: r.definitions("compute_invoice_total")).result() == []
        assert host.submit(lambda r: r.search("slugify", 1)).result()[0].path == "pkg/util/strings.py"
        assert host.submit(lambda r: r).result() is first and opens["n"] == 1

        db = first.store.db_path
        db.rename(db.with_name("moved-again.db"))
        db.write_bytes(b"not a database" * 512)  # refresh() fails on it, so does the fallback open
        with pytest.raises(RepoloopError):
            host.reload().result()
        assert opens["n"] == 2  # the fallback was tried
        assert host.submit(lambda r: r).result() is first  # and the old one keeps answering
        assert host.submit(lambda r: r.search("slugify", 1)).result()[0].path == "pkg/util/strings.py"
    finally:
        host.close()
