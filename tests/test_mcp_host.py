"""RetrieverHost: the one warm Retriever of `repoloop serve`, on one thread, swapped on reload."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from repoloop.retrieval.api import Retriever
from repoloop.service.host import RetrieverHost
from tests.fixtures_service import index, write_sample


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    r = write_sample(tmp_path / "repo")
    index(r)
    return r


def test_every_call_runs_on_the_one_retriever_thread(repo: Path) -> None:
    host = RetrieverHost(lambda: Retriever.open(repo, lexical_only=True))
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
        return Retriever.open(repo, lexical_only=True)

    host = RetrieverHost(opener)
    host.start()
    try:
        first = host.submit(lambda r: r).result()
        assert host.generation == 1
        (repo / "pkg" / "billing.py").write_text("def compute_invoice_total(lines):\n    return sum(lines)\n")
        index(repo)
        host.reload().result()
        second = host.submit(lambda r: r).result()
        assert second is not first and host.generation == 2
        assert host.submit(lambda r: r.definitions("compute_invoice_total")).result()[0]["path"] == "pkg/billing.py"

        opens["fail"] = True
        with pytest.raises(RuntimeError):
            host.reload().result()
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
        r = Retriever.open(repo, lexical_only=True)
        if opened:  # the reload's open: hold it until the test has queried meanwhile
            assert gate.wait(30)
        opened.append(r)
        return r

    host = RetrieverHost(opener)
    host.start()
    try:
        pending = host.reload()
        for _ in range(5):  # answered by the old Retriever while the new one is held open
            hit = host.submit(lambda r: r.search("parse_config", 1)).result(timeout=10)
            assert hit[0].path == "pkg/config.py"
        assert not pending.done() and host.generation == 1
        gate.set()
        pending.result(timeout=30)
        assert host.generation == 2
        assert host.submit(lambda r: r).result() is opened[1]
    finally:
        gate.set()
        host.close()
