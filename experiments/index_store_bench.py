"""Micro-benchmarks behind the indexing optimizations, each against its baseline in the same run.

    nice .venv/bin/python experiments/index_store_bench.py [--files 1000] [--repeat 3]

On the first N `.py` files of the standard library (sorted paths, site-packages excluded):
1. FTS tokenizing: `tokens.fts_text` (identifier cache) vs the uncached code it replaced (same output).
2. Worker -> writer hand-off: pickle round trip of ParsedFile dataclasses vs `store.FileRows` tuples.
3. Writing the rows into an empty index: with the secondary indexes in place vs bulk mode (dropped,
   then rebuilt), wall and CPU seconds of this process (SQLite runs in-process).
Medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import pickle
import re
import shutil
import statistics
import sysconfig
import tempfile
import time
from pathlib import Path

from repoloop.indexer import pipeline
from repoloop.indexer.lexical_tokens import fts_text
from repoloop.indexer.store import FileWrite, IndexStore, file_rows

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\d|\b)|[A-Z]?[a-z]+|[A-Z]+|\d+")


def _split_old(ident: str) -> list[str]:
    words: list[str] = []
    for part in ident.split("_"):
        if part:
            words.extend(w.lower() for w in _CAMEL.findall(part))
    return words


def fts_text_uncached(text: str) -> str:
    """tokens.fts_text as it was before the identifier cache (the baseline)."""
    out: list[str] = []
    for m in _IDENT.finditer(text):
        ident = m.group(0)
        whole = ident.lower().strip("_")
        words = _split_old(ident)
        if len(whole) >= 2:
            out.append(whole)
        if len(words) > 1:
            out.extend(w for w in words if len(w) >= 2)
    return " ".join(out)


def timed(fn) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts
                   and "__pycache__" not in p.parts)[: args.files]
    parsed, results = [], []
    for p in files:
        st = p.stat()
        task = pipeline._Task(p.relative_to(root).as_posix(), str(p), st.st_size, st.st_mtime, None,
                              str(root.resolve()), pipeline.walk_mod.DEFAULT_MAX_FILE_SIZE)
        full = pipeline._read_and_parse(task)
        if full.parsed is not None:
            parsed.append(full.parsed)
            results.append(pipeline._parse_file(task))
    texts = [ch.text for pf in parsed for ch in pf.chunks]
    n_refs = sum(len(pf.refs) for pf in parsed)
    print(f"{len(parsed)} files, {len(texts)} chunks, {n_refs} references", flush=True)
    med = statistics.median

    assert [fts_text(t) for t in texts] == [fts_text_uncached(t) for t in texts]
    new = [timed(lambda: [fts_text(t) for t in texts])[1] for _ in range(args.repeat)]
    old = [timed(lambda: [fts_text_uncached(t) for t in texts])[1] for _ in range(args.repeat)]
    print(f"1. FTS tokenizing, CPU s: uncached {med(old):.2f} -> cached {med(new):.2f}"
          f" ({med(old) / med(new):.1f}x)", flush=True)

    rows = [file_rows(pf) for pf in parsed]
    dc = [timed(lambda: [pickle.loads(pickle.dumps(pf, protocol=5)) for pf in parsed])[1] for _ in range(args.repeat)]
    tp = [timed(lambda: [pickle.loads(pickle.dumps(r, protocol=5)) for r in rows])[1] for _ in range(args.repeat)]
    print(f"2. pickle round trip, CPU s: dataclasses {med(dc):.2f} -> tuples {med(tp):.2f}"
          f" ({med(dc) / med(tp):.1f}x)", flush=True)

    def write(bulk: bool) -> tuple[float, float]:
        tmp = Path(tempfile.mkdtemp(prefix="store_bench_"))
        try:
            store = IndexStore(tmp / "index.db")
            store.conn.execute("PRAGMA cache_size=-131072")

            def go() -> None:
                if bulk:
                    store.drop_bulk_indexes()
                for i in range(0, len(results), 200):
                    store.replace_files([FileWrite(r.parsed, r.hash, r.size, r.mtime, 0, r.rows)
                                         for r in results[i:i + 200]])
                if bulk:
                    store.ensure_indexes()
                store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

            out = timed(go)
            store.close()
            return out
        finally:
            shutil.rmtree(tmp)

    idx = [write(False) for _ in range(args.repeat)]
    blk = [write(True) for _ in range(args.repeat)]
    print(f"3. write rows into an empty index: indexed wall {med(w for w, _ in idx):.2f} s"
          f" / CPU {med(c for _, c in idx):.2f} s -> bulk wall {med(w for w, _ in blk):.2f} s"
          f" / CPU {med(c for _, c in blk):.2f} s", flush=True)


if __name__ == "__main__":
    main()
