"""The whole-file FTS table: kept in step with files through edits and deletes, added to older
indexes in place, and the file signal it feeds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from repoloop.indexer.store import IndexStore
from repoloop.retrieval.retriever import open_retriever
from tests.test_retrieval_fixtures import index, write_repo


def _fts_files(db: Path) -> dict[str, str]:
    con = sqlite3.connect(db)
    try:
        return dict(con.execute("SELECT f.path, x.body FROM files_fts x JOIN files f ON f.id = x.rowid"))
    finally:
        con.close()


def test_files_fts_follows_edits_and_deletes(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "shop")
    index(repo)
    db = repo / ".repoloop" / "index.db"
    before = _fts_files(db)
    con = sqlite3.connect(db)
    indexed = {p for (p,) in con.execute("SELECT path FROM files f WHERE EXISTS (SELECT 1 FROM chunks WHERE file_id=f.id)")}
    con.close()
    assert set(before) == indexed and "shop/pricing.py" in before
    assert "compute total" in before["shop/pricing.py"]  # identifiers split like the chunk FTS
    (repo / "shop" / "pricing.py").write_text("def zebra_stripes(n):\n    return n\n")
    (repo / "shop" / "payment.py").unlink()
    index(repo)
    after = _fts_files(db)
    assert "shop/payment.py" not in after
    assert "zebra" in after["shop/pricing.py"] and "compute" not in after["shop/pricing.py"]


def test_an_index_without_files_fts_gets_it_filled_in_place(tmp_path: Path) -> None:
    repo = write_repo(tmp_path / "shop")
    index(repo)
    db = repo / ".repoloop" / "index.db"
    want = _fts_files(db)
    con = sqlite3.connect(db)
    con.execute("DROP TABLE files_fts")
    con.commit()
    con.close()
    # A reader on the old index still answers (the file signal is just empty) ...
    r = open_retriever(repo)
    try:
        assert r.search("compute total prices", 3)
    finally:
        r.close()
    # ... and the next writer adds the table, filled from the chunk FTS rows.
    IndexStore(db).close()
    got = _fts_files(db)
    assert set(got) == set(want)
    assert set(got["shop/pricing.py"].split()) == set(want["shop/pricing.py"].split())


def test_file_signal_ranks_the_module_whose_words_spread_over_it(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "pkg").mkdir(parents=True)
    # Each function of ledger.py holds one query word; one function of misc.py holds two of them.
    (root / "pkg" / "ledger.py").write_text(
        "def a():\n    return 'invoice'\n\n\ndef b():\n    return 'refund'\n\n\ndef c():\n    return 'currency'\n")
    (root / "pkg" / "misc.py").write_text("def z():\n    return 'invoice refund'\n")
    index(root)
    r = open_retriever(root)
    try:
        best_id = r.lexical.files("invoice refund currency", 5)[0][0]
        assert r.store.conn.execute("SELECT path FROM files WHERE id=?", (best_id,)).fetchone()[0] == "pkg/ledger.py"
        hits = r.search("invoice refund currency", 3, explain=True, signals="bm25,file")
        assert any("file" in h.signals for h in hits)
    finally:
        r.close()
