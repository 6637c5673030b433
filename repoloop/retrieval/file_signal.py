"""The file signal: whole-file BM25 lifting the candidate chunks of well-ranked files.

Why: an issue's words spread over the module it is about while no single chunk of it ranks high.
Every candidate chunk of a ranked file gets its file's rank (ties), so chunks of the right module
rise without displacing symbol-level evidence. (Letting it add files no other signal found, through
their first chunk, measured no better.)
"""

from __future__ import annotations

import sqlite3

from repoloop.retrieval.fusion import Ranked
from repoloop.retrieval.lexical import Lexical
from repoloop.retrieval.rows import by_ids


def file_signal(lexical: Lexical, conn: sqlite3.Connection, query: str, limit: int, lists: list[Ranked]) -> Ranked:
    ranked = lexical.files(query, limit)
    if not ranked:
        return Ranked("file", [], [])
    by_file: dict[int, list[int]] = {}
    for cid, fid in by_ids(conn, "SELECT id, file_id FROM chunks WHERE id IN ({})",
                           (cid for r in lists for cid in r.ids)):
        by_file.setdefault(fid, []).append(cid)
    out = [(cid, s) for fid, s in ranked for cid in by_file.get(fid, ())]
    return Ranked("file", [c for c, _ in out], [s for _, s in out])
