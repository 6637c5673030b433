"""Aider's repo map on a tree, timed: run with aider's own interpreter (a separate venv).

    /path/to/aider-venv/bin/python benchmarks/aider_peer.py TREE [--map-tokens 1024]

Prints JSON: files, tags, tag-extraction seconds (RepoMap.get_tags_raw over every file, no cache),
and map-building seconds (RepoMap.get_ranked_tags_map on a fresh cache: extraction + PageRank +
rendering). Aider writes `.aider.tags.cache.v4` into the root: give it a copy or it is removed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path


class _Model:
    """Aider asks its model object for token counts; a chars/4 estimate needs no tokenizer download."""

    def token_count(self, text: str) -> int:
        return len(text) // 4


class _IO:
    def read_text(self, fname: str) -> str | None:
        try:
            return Path(fname).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def tool_output(self, *a: object, **k: object) -> None:
        pass

    tool_warning = tool_error = tool_output


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("tree", type=Path)
    ap.add_argument("--map-tokens", type=int, default=1024)
    args = ap.parse_args()
    from aider.repomap import RepoMap, find_src_files

    root = str(args.tree.resolve())
    cache = Path(root) / RepoMap.TAGS_CACHE_DIR
    shutil.rmtree(cache, ignore_errors=True)
    files = [f for f in find_src_files(root) if RepoMap.TAGS_CACHE_DIR not in f]
    rm = RepoMap(map_tokens=args.map_tokens, root=root, main_model=_Model(), io=_IO())
    c = time.process_time()
    t = time.perf_counter()
    ntags = 0
    for f in files:
        try:
            ntags += sum(1 for _ in rm.get_tags_raw(f, os.path.relpath(f, root)))
        except Exception:  # aider's own behaviour on a bad file is to skip it
            pass
    extract = time.perf_counter() - t
    extract_cpu = time.process_time() - c
    shutil.rmtree(cache, ignore_errors=True)
    rm = RepoMap(map_tokens=args.map_tokens, root=root, main_model=_Model(), io=_IO())
    c = time.process_time()
    t = time.perf_counter()
    out = rm.get_ranked_tags_map([], files, max_map_tokens=args.map_tokens) or ""
    build = time.perf_counter() - t
    build_cpu = time.process_time() - c
    shutil.rmtree(cache, ignore_errors=True)
    json.dump({"files": len(files), "tags": ntags, "extract_s": extract, "map_s": build,
               "extract_cpu_s": extract_cpu, "map_cpu_s": build_cpu,
               "map_chars": len(out)}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
