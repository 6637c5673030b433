"""Warm long-running processes (issue #7): the watcher's index passes and the server's Retriever
share one embedding model, loaded once, and a re-index reaches the Retriever through a cheap
in-place `refresh()` (no new model, no new chroma client, the graph re-read only when its edges
changed). Real model, real chromadb, real SQLite, real watchdog events; `repoloop serve --watch`
as a real subprocess over the official MCP client."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from pathlib import Path

import pytest
from mcp import Client

from repoloop.indexer.embed.embedders import embedder_from_config
from repoloop.indexer.pipeline import index_repo
from repoloop.retrieval.api import RetrievalOptions
from repoloop.retrieval.local_rank import LocalRanker
from repoloop.retrieval.retriever import open_retriever
from repoloop.service.host import RetrieverHost
from repoloop.service.warm import ModelLoads, SharedEmbedder
from repoloop.service.watch import PipelineIndexer, UpdateReport, Watcher
from tests.fixtures_service import (
    child_env,
    free_port,
    index,
    poll,
    repoloop_cmd,
    stop,
    wait_for_port,
    write_sample,
)

BILLING = '''"""Invoices."""


def compute_invoice_total(lines):
    """Add up the money a customer owes on an invoice."""
    return sum(lines)
'''
REFUND = '''

def issue_refund_voucher(amount):
    """Give a shopper their money back as store credit."""
    return {"credit": amount}
'''


def test_shared_embedder_serialises_turns_and_keeps_the_name() -> None:
    """Two threads on one model: every call answered in full and in order, under the model's name."""
    shared = SharedEmbedder(embedder_from_config(), slice_size=3)
    texts = [f"def f{i}(x): return x + {i}" for i in range(10)]
    out: dict[str, list[list[float]]] = {}

    def run(key: str) -> None:
        out[key] = shared.embed(texts)

    threads = [threading.Thread(target=run, args=(k,)) for k in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert shared.name == shared.inner.name
    assert len(out["a"]) == len(out["b"]) == 10 and len(out["a"][0]) == shared.dim
    alone = shared.inner.embed(texts[4:5])[0]
    assert max(abs(x - y) for x, y in zip(out["a"][4], alone, strict=True)) < 1e-4  # slices keep the order
    assert shared.calls == 2


def test_watch_passes_and_queries_share_one_model_and_refresh_in_place(tmp_path: Path) -> None:
    """An edit picked up by the watcher is found by a semantic query through the dense signal of the
    same Retriever object (refreshed, not reopened), and the model was read from disk once."""
    repo = write_sample(tmp_path / "repo")
    with ModelLoads() as loads:
        shared = SharedEmbedder(embedder_from_config())
        assert index_repo(repo, embed=True, progress=False, jobs=1, embedder=shared).embedded
        host = RetrieverHost(lambda: open_retriever(repo, embedder=shared))
        host.start()
        reports: list[UpdateReport] = []

        def reload(report: UpdateReport) -> None:
            reports.append(report)
            if report.error is None:
                host.reload().result()

        w = Watcher(repo, PipelineIndexer(repo, embed=True, embedder=shared), debounce=0.2, on_update=reload)
        w.start()
        try:
            first = host.submit(lambda r: r).result()
            calls_before = shared.calls
            (repo / "pkg" / "billing.py").write_text(BILLING)

            def dense_finds(query: str, symbol: str) -> bool:
                hits = host.submit(lambda r: r.search(query, 3, explain=True)).result()
                return any(h.symbol == symbol and "dense" in h.signals for h in hits)

            poll(lambda: dense_finds("how much money does the customer owe", "pkg.billing.compute_invoice_total"),
                 timeout=60, what="new function found by the dense signal")
            with open(repo / "pkg" / "billing.py", "a") as f:  # a second pass, on the same model
                f.write(REFUND)
            poll(lambda: dense_finds("give the shopper store credit back", "pkg.billing.issue_refund_voucher"),
                 timeout=60, what="second edit found by the dense signal")

            # SQLite and chromadb show a pass's rows to queries before the pass's reload has refreshed
            # the Retriever, so the queries above can succeed first: wait for both reloads. The host
            # bumps its generation on the reload thread just after the refresh returns on the
            # Retriever's thread, so `refreshes` can reach 2 a moment before `generation` reaches 3.
            poll(lambda: len(reports) >= 2 and first.refreshes >= 2 and host.generation >= 3,
                 timeout=60, what="both passes reloaded")
            r = host.submit(lambda r: r).result()
            assert r is first  # refreshed in place, never reopened
            assert r.refreshes >= 2 and host.generation >= 3
            assert r.dense.dense.embedder is shared  # queries embed with the indexer's model
            assert shared.calls > calls_before  # ... which the index passes used too
            assert all(rep.error is None for rep in reports), reports
        finally:
            w.stop()
            host.close()
        assert loads.count == 1  # index, warm, two passes, many queries: one load


def test_refresh_is_a_no_op_when_nothing_changed_and_rereads_a_changed_graph(tmp_path: Path) -> None:
    repo = write_sample(tmp_path / "repo")
    index(repo)
    r = open_retriever(repo, options=RetrievalOptions(lexical_only=True))
    try:
        r.warm()  # the whole graph in memory (a small repo)
        assert r.graph.full and r.graph.graph is not None
        graph, names = r.graph.graph, r.names
        assert r.refresh() is False and r.graph.graph is graph and r.names is names and r.refreshes == 0

        (repo / "pkg" / "billing.py").write_text(
            "from pkg.util.strings import slugify\n\n\ndef invoice_slug(title):\n    return slugify(title)\n")
        index(repo)
        assert r.refresh() is True and r.refreshes == 1
        assert r.names is not names  # path and name tables rebuilt (lazily)
        assert r.refresh() is False  # once seen, nothing more to do

        def swapped() -> bool:  # the new graph loads on a helper thread; a query puts it in service
            r.search("invoice_slug", 3)
            return r.graph.graph is not None and r.graph.graph is not graph

        poll(swapped, what="the re-read graph in service")
        assert "s:pkg.billing.invoice_slug" in r.graph.graph.index
        assert r.search("invoice_slug", 1)[0].path == "pkg/billing.py"
    finally:
        r.close()

    local = open_retriever(repo, options=RetrievalOptions(lexical_only=True))  # the SQLite-local ranker: its cache is dropped
    try:
        local.search("slugify", 3)
        ranker = local.graph.local
        assert isinstance(ranker, LocalRanker)
        (repo / "pkg" / "billing.py").unlink()
        index(repo)
        assert local.refresh() is True and local.graph.local is None
        assert all(h.path != "pkg/billing.py" for h in local.search("invoice_slug slugify", 5))
        assert isinstance(local.graph.local, LocalRanker) and local.graph.local is not ranker
    finally:
        local.close()


def test_serve_watch_loads_the_model_once_across_edits(tmp_path: Path) -> None:
    """`repoloop serve --watch --http`: two edits, each found through search_code, one model load
    in the server's log (the library's own load record), and re-index lines for both edits."""
    repo = write_sample(tmp_path / "repo")
    subprocess.run([*repoloop_cmd(), "index", str(repo)], check=True, capture_output=True, env=child_env(),
                   timeout=300)
    port = free_port()
    proc = subprocess.Popen([*repoloop_cmd(), "serve", "--repo", str(repo), "--watch", "--debounce", "0.2",
                             "--http", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=child_env())
    log: list[str] = []
    threading.Thread(target=lambda: log.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    try:
        wait_for_port(port, proc, timeout=120)

        async def main() -> None:
            async with Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=120) as client:
                async def found(query: str, symbol: str) -> bool:
                    res = await client.call_tool("search_code", {"query": query, "k": 3})
                    return not res.is_error and any(
                        h["symbol"] == symbol for h in res.structured_content["results"])

                assert await found("make a URL slug out of a title", "pkg.util.strings.slugify"), log
                (repo / "pkg" / "billing.py").write_text(BILLING)
                await _until(lambda: found("invoice total", "pkg.billing.compute_invoice_total"))
                with open(repo / "pkg" / "billing.py", "a") as f:
                    f.write(REFUND)
                await _until(lambda: found("refund voucher", "pkg.billing.issue_refund_voucher"))

        asyncio.run(main())
        assert proc.poll() is None
        # Search sees a pass's rows once they are stored, before the pass has embedded them and
        # logged its line: wait for both passes to finish (each edit was written after the previous
        # one was found, so they are two passes), never stop the server on a count taken too early.
        poll(lambda: sum("re-indexed" in ln and "pkg/billing.py" in ln for ln in log) >= 2, timeout=180,
             what="both passes logged")
    finally:
        stop(proc)
    loaded = [ln for ln in log if "embedding model loaded" in ln]
    assert len(loaded) == 1, log
    assert not any("Traceback" in ln for ln in log), log


async def _until(check, timeout: float = 60.0) -> None:  # noqa: ANN001 - an async predicate
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {timeout} s")


@pytest.mark.parametrize("embed", [False])
def test_watch_without_embeddings_makes_no_embedder(tmp_path: Path, embed: bool) -> None:
    """--no-embed: no model is ever made for the watcher's passes."""
    repo = write_sample(tmp_path / "repo")
    assert PipelineIndexer(repo, embed=embed).embedder is None
