"""Observe: what the model is shown before acting and after each failure, drawn from retrieval.

Retrieval is an aid, never a point of failure: a missing index is built (lexical only, fast), and
when retrieval is unavailable or raises, the agent goes on with less context (a note says why).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from repoloop.retrieval import RetrievalOptions, Retriever

INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md", "CONTRIBUTING.md", "CONTRIBUTING.rst", "CONTRIBUTING.txt",
                     ".github/CONTRIBUTING.md", "docs/CONTRIBUTING.md")
MAX_INSTRUCTIONS_CHARS = 12_000


def read_project_text(root: Path, rel: str, limit: int = 1 << 20) -> str | None:
    """A text file of the project, or None. It may be hostile: a symlink to ~/.ssh/id_rsa must not
    reach the model, nor may a FIFO hang the run (the indexer's bounded, non-blocking read)."""
    from repoloop.indexer.safe_read import read_repo_file

    data = read_repo_file(str(Path(root) / rel), os.path.realpath(root), limit, prefix=True)
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else None


def project_instructions(root: Path) -> str:
    """AGENTS.md and contributing notes, as the project wrote them (truncated if huge)."""
    parts = []
    for name in INSTRUCTION_FILES:
        text = (read_project_text(root, name, MAX_INSTRUCTIONS_CHARS * 4) or "").strip()
        if text:
            parts.append(f"--- {name} ---\n{text}")
    joined = "\n\n".join(parts)
    if len(joined) > MAX_INSTRUCTIONS_CHARS:
        joined = joined[:MAX_INSTRUCTIONS_CHARS] + "\n[... truncated ...]"
    return joined


@dataclass
class Observer:
    """Retrieval for the loop; `retriever` is None when none could be opened."""

    retriever: Retriever | None
    notes: list[str] = field(default_factory=list)  # why retrieval is degraded, for the trajectory
    seconds: float = 0.0  # time spent in retrieval (part of repoloop's own share)
    located: list[dict] = field(default_factory=list)  # the last `locations` answer (path, functions)

    @classmethod
    def open(cls, repo: Path, index_dir: Path | None, *, options: RetrievalOptions, lexical_only: bool,
             build: bool = True, log: Callable[[str], None] | None = None, rerank: bool = True) -> Observer:
        """`options`: how to rank (the caller's, read at its edge: nothing here reads the environment);
        `lexical_only` and `rerank` are set on them."""
        from dataclasses import replace

        t0 = time.perf_counter()
        notes: list[str] = []
        retriever = None
        opts = replace(options, lexical_only=lexical_only, rerank=rerank)
        try:
            from repoloop.errors import IndexMissingError
            from repoloop.retrieval import open_retriever

            try:
                retriever = open_retriever(repo, index_dir, opts)
            except IndexMissingError:
                if not build:
                    raise
                if log:
                    log("no index yet: building a lexical one (run `repoloop index` for embeddings)")
                from repoloop.indexer.pipeline import index_repo

                index_repo(repo, index_dir, embed=False, progress=False)
                retriever = open_retriever(repo, index_dir, opts)
        except Exception as e:  # noqa: BLE001 - retrieval must never stop the agent
            notes.append(f"retrieval unavailable ({type(e).__name__}: {e}); going on without it")
        return cls(retriever=retriever, notes=notes, seconds=time.perf_counter() - t0)

    def _try(self, what: str, fn: Callable[[Retriever], Any], default: Any) -> Any:
        """`fn(retriever)`, timed; `default` where there is no retriever or it raised (noted)."""
        if self.retriever is None:
            return default
        r = self.retriever
        t0 = time.perf_counter()
        try:
            return fn(r)
        except Exception as e:  # noqa: BLE001
            self.notes.append(f"{what} failed: {type(e).__name__}: {e}")
        finally:
            self.seconds += time.perf_counter() - t0
        return default

    def repo_map(self, budget: int) -> str:
        return self._try("repo map", lambda r: r.repo_map(budget), "") or ""

    def context(self, query: str, budget: int) -> tuple[str, list[dict]]:
        """Rendered context pack and its items (path, lines, score, tokens) for the trajectory,
        headed by the likeliest files and functions (`locate`, at most a tenth of the budget)."""
        if not query.strip():
            return "", []
        head = self.locations(query, budget // 10)
        cost = _tokens(head) if head else 0
        pack = self._try("context", lambda r: r.context(query, budget - cost), None)
        if pack is None:
            return head, []
        items = [{"path": i.path, "start_line": i.start_line, "end_line": i.end_line, "tokens": i.tokens,
                  "score": round(float(i.score), 4)} for i in pack.items]
        return (head + "\n\n" if head else "") + (pack.text or ""), items

    def locations(self, query: str, budget: int, files: int = 5, functions: int = 3) -> str:
        """"Likely locations": the files `repoloop locate` ranks first with their likeliest
        functions, one line per file, within `budget` tokens (over-estimated at 3.5 chars a token);
        "" without a retriever. Kept in `self.located` for the trajectory."""
        if budget <= 0:
            return ""
        from repoloop.retrieval.limits import bounded_prefix

        # a long task: its first part, as the context pack does (a search would refuse it whole)
        got = self._try("locate", lambda r: r.locate(bounded_prefix(query), files, functions=functions), None)
        if got is None or not got.files:
            return ""
        lines = ["Likely locations (files, then their likeliest functions):"]
        self.located = []
        for f in got.files:
            fns = ", ".join(f"{fn.symbol.rsplit('.', 2)[-2] + '.' if fn.kind == 'method' and fn.symbol.count('.') >= 2 else ''}"
                            f"{fn.name} ({fn.start_line}-{fn.end_line})" for fn in f.functions)
            line = f"- {f.path}" + (f": {fns}" if fns else "")
            if _tokens("\n".join([*lines, line])) > budget:
                break
            lines.append(line)
            self.located.append({"path": f.path, "functions": [fn.symbol for fn in f.functions]})
        return "\n".join(lines) if len(lines) > 1 else ""

    def snippets(self, query: str, budget: int, k: int = 10) -> tuple[str, list[dict]]:
        """Top search hits rendered within `budget` tokens (over-estimated at 3.5 chars a token).
        Used after each failed verification: a ranked search costs milliseconds where a full
        context pack (with its repo map) costs far more on a big repository, on every failure."""
        if not query.strip():
            return "", []
        hits = self._try("search", lambda r: r.search(query, k, merge=False), None) or []  # fitted one by one
        parts, items, used = [], [], 0
        for h in hits:
            block = f"# {h.path} (lines {h.start_line}-{h.end_line})\n{h.text.rstrip()}\n"
            cost = _tokens(block)
            if used + cost > budget:
                continue
            used += cost
            parts.append(block)
            items.append({"path": h.path, "start_line": h.start_line, "end_line": h.end_line, "tokens": cost,
                          "score": round(float(h.score), 4)})
        return "\n".join(parts), items

    # -- the tools' search backend ------------------------------------------------------------------
    def search(self, query: str, k: int) -> str | None:
        hits = self._try("search", lambda r: r.search(query, k), None)
        if hits is None:
            return None
        out = []
        for h in hits:
            head = f"{h.path}:{h.start_line}-{h.end_line}" + (f"  {h.symbol}" if h.symbol else "")
            body = h.text if len(h.text) < 2500 else h.text[:2500] + "\n[...]"
            out.append(f"{head}\n{body}")
        return "\n\n".join(out) if out else ""

    def symbol(self, name: str) -> list[dict] | None:
        """Definitions with their direct callers and callees (the graph's, guesses marked)."""
        from repoloop.retrieval.graph import NEIGHBOURS  # noqa: PLC0415 - numpy only when used

        return self._try("definitions", lambda r: list(r.definitions(name, neighbours=NEIGHBOURS)), None)

    def close(self) -> None:
        if self.retriever is not None:
            try:
                self.retriever.close()
            except Exception:  # noqa: BLE001
                pass


def _tokens(text: str) -> int:
    """An over-estimate of the tokens in `text` (about 3.5 characters a token, as the conversation
    counts): cheap, and a block it admits always fits the budget."""
    return int(len(text) / 3.5) + 1
