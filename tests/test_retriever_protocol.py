"""The `Retriever` protocol is the whole contract: the agent's observer and the MCP host work with
any object that has its methods (here a scripted fake), and call each one through it."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from repoloop.agent.observe import Observer
from repoloop.retrieval import ContextItem, ContextPack, Located, Retriever, SearchHit
from repoloop.retrieval.limits import Deadline
from repoloop.retrieval.locate import DEFAULT_LOCATE, FileHit, FunctionHit, LocateWeights
from repoloop.retrieval.tokens_count import EstimateCounter, TokenCounter
from repoloop.service.host import RetrieverHost
from tests.fixtures_service import poll


@dataclass
class FakeRetriever:
    """Answers from a script and records what it was asked, and on which thread."""

    calls: list[str] = field(default_factory=list)
    threads: set[int] = field(default_factory=set)
    deadlines: list[Deadline | None] = field(default_factory=list)
    refresh_fails: bool = False
    closed: bool = False

    def _note(self, what: str) -> None:
        self.calls.append(what)
        self.threads.add(threading.get_ident())

    @property
    def lexical_only(self) -> bool:
        return True

    @property
    def counter(self) -> TokenCounter:
        return EstimateCounter()

    def search(self, query: str, k: int = 10, *, explain: bool = False,
               signals: Iterable[str] | str | None = None, merge: bool = True) -> list[SearchHit]:
        self._note(f"search:{query}:{merge}")
        return [SearchHit("pay/refund.py", 3, 9, "refund", "function", 1.0, "def refund(order):\n    ...")]

    def search_files(self, query: str, k: int = 10, *, signals: Iterable[str] | str | None = None,
                     depth: int = 50) -> list[tuple[str, float]]:
        self._note("search_files")
        return [("pay/refund.py", 1.0)]

    def locate(self, query: str, k: int = 10, *, functions: int = 5,
               signals: Iterable[str] | str | None = None, weights: LocateWeights | None = None) -> Located:
        self._note(f"locate:{k}:{functions}")
        fn = FunctionHit("pay.refund.refund", "refund", "function", 3, 9, 1.0, {"name": 1.0})
        return Located([FileHit("pay/refund.py", 1.0, [fn], 1)], weights or DEFAULT_LOCATE)

    def context(self, task: str, budget: int) -> ContextPack:
        self._note(f"context:{budget}")
        return ContextPack("# pay/refund.py\ndef refund(order): ...", 12, budget,
                           [ContextItem("pay/refund.py", 3, 9, "refund", 0.5, 12, "code")])

    def definitions(self, name: str, *, neighbours: int = 0) -> list[dict]:
        self._note(f"definitions:{name}:{neighbours}")
        return [{"qualname": name, "kind": "function", "path": "pay/refund.py", "start_line": 3, "end_line": 9,
                 "signature": None, "doc": None}]

    def repo_map(self, budget: int = 1024, focus: tuple[str, ...] = ()) -> str:
        self._note("repo_map")
        return "pay/refund.py:\n  def refund(order)"

    def outline(self, path: str) -> dict:
        self._note("outline")
        return {"path": path, "symbols": []}

    @contextmanager
    def time_limit(self, deadline: Deadline | None) -> Iterator[Deadline | None]:
        self.deadlines.append(deadline)
        yield deadline

    def refresh(self) -> bool:
        self._note("refresh")
        if self.refresh_fails:
            raise RuntimeError("cannot refresh in place")
        return True

    def warm(self) -> None:
        self._note("warm")

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeRetriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_the_observer_locates_and_packs_through_the_protocol_alone() -> None:
    fake = FakeRetriever()
    retriever: Retriever = fake  # what a type checker holds it to
    obs = Observer(retriever=retriever)
    text, items = obs.context("refunds are booked twice", 4000)
    # Likely locations came from `locate` (a retriever is not asked for its internals), then the pack.
    assert text.startswith("Likely locations") and "pay/refund.py: refund (3-9)" in text
    assert "def refund(order): ..." in text
    assert items == [{"path": "pay/refund.py", "start_line": 3, "end_line": 9, "tokens": 12, "score": 0.5}]
    assert obs.located == [{"path": "pay/refund.py", "functions": ["pay.refund.refund"]}]
    assert fake.calls[0] == "locate:5:3" and fake.calls[1].startswith("context:")
    assert obs.symbol("refund") is not None and fake.calls[-1].startswith("definitions:refund:")
    assert int(fake.calls[-1].rsplit(":", 1)[1]) > 0  # with graph neighbours, always
    assert obs.notes == []


def test_the_observer_notes_a_failing_retriever_and_goes_on() -> None:
    class Broken(FakeRetriever):
        def context(self, task: str, budget: int) -> ContextPack:
            raise RuntimeError("index gone")

    obs = Observer(retriever=Broken())
    text, items = obs.context("refunds are booked twice", 4000)
    assert text.startswith("Likely locations") and items == []
    assert obs.notes == ["context failed: RuntimeError: index gone"]


def test_the_host_refreshes_in_place_on_its_thread_and_reopens_when_that_fails() -> None:
    made: list[FakeRetriever] = []

    def opener() -> Retriever:
        made.append(FakeRetriever())
        return made[-1]

    host = RetrieverHost(opener)
    host.start()
    try:
        first = made[0]
        assert first.calls == ["warm"]
        host.reload().result()
        assert first.calls == ["warm", "refresh"] and len(made) == 1 and host.generation == 2
        assert host.submit(lambda r: r.search("refund", 1), timeout=5).result()[0].path == "pay/refund.py"
        assert first.deadlines and first.deadlines[-1] is not None  # the call ran inside its time limit
        assert len(first.threads) == 1 and threading.get_ident() not in first.threads

        first.refresh_fails = True
        host.reload().result()  # refresh raised: a new one is opened and warmed beside, then used
        assert len(made) == 2 and made[1].calls == ["warm"] and host.generation == 3
        assert host.submit(lambda r: r.search_files("refund")).result() == [("pay/refund.py", 1.0)]
        assert made[1].calls[-1] == "search_files" and "search_files" not in first.calls
    finally:
        host.close()
    assert made[1].closed  # the one in service, by close(); the replaced one on its own thread, after its calls
    poll(lambda: made[0].closed, timeout=30, interval=0.01, what="the replaced retriever closed")
