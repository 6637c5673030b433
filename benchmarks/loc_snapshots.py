"""Per-instance index snapshots for the SWE-bench dev set: build once, query with any later code.

Why: indexing each repository at each base commit is the expensive part of the benchmark (a move
between base commits re-parses hundreds of files), querying is cheap. So `build` moves one working
tree per repository through the sampled base commits in commit-date order, indexes it
incrementally (in a child process, so the index is closed, chroma included, when it is copied), and
keeps a copy of the index for each instance:

    DIR/<instance_id>/index/index.db    SQLite (sqlite3 backup API: one consistent file)
    DIR/<instance_id>/index/chroma/     the vector store, when built with embeddings
    DIR/<instance_id>/meta.json         repo, base commit, index stats and seconds, parser fingerprint

`HybridRetriever.search` reads only the index (SQLite, chroma); the tree is read by `context`
(file lines), which this benchmark does not call, so a snapshot keeps no tree: the snapshot
directory itself stands in as `--repo`.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from materialize import WorkTree, checkout_name, commit_time, git_dir

HERE = Path(__file__).resolve().parent
META = "meta.json"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One instance's saved index."""

    root: Path  # stands in for the repository root (`--repo`)
    meta: dict

    @property
    def index_dir(self) -> Path:
        return self.root / "index"


def load(snap_dir: Path) -> dict[str, Snapshot]:
    """Every complete snapshot under snap_dir (a half-written one has no meta.json yet)."""
    out: dict[str, Snapshot] = {}
    if not snap_dir.is_dir():
        return out
    for m in sorted(snap_dir.glob(f"*/{META}")):
        meta = json.loads(m.read_text())
        out[meta["id"]] = Snapshot(m.parent, meta)
    return out


def index_child(root: Path, idx: Path, *, embed: bool) -> dict:
    """Index `root` into `idx` in a child process; returns its stats (see loc_repoloop.index_stats)."""
    cmd = [sys.executable, str(HERE / "loc_repoloop.py"), "index", str(root), str(idx)]
    if not embed:
        cmd.append("--no-embed")
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"index of {root} failed (rc={p.returncode}): {p.stderr.strip()[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def save(idx: Path, dest: Path, meta: dict) -> Snapshot:
    """Copy a closed index to dest atomically (a .tmp directory renamed at the end)."""
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "index").mkdir(parents=True)
    src = sqlite3.connect(str(idx / "index.db"))
    dst = sqlite3.connect(str(tmp / "index" / "index.db"))
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    if (idx / "chroma").is_dir():
        shutil.copytree(idx / "chroma", tmp / "index" / "chroma")
    (tmp / META).write_text(json.dumps(meta, indent=1))
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return Snapshot(dest, meta)


def code_head() -> str:
    root = HERE.parent
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                          text=True).stdout.strip()


def date_order(records: list[dict]) -> Iterator[tuple[str, list[dict]]]:
    """Per repository (fewest instances first: results come early), its instances by commit date."""
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_repo[r["repo"]].append(r)
    for repo in sorted(by_repo, key=lambda x: (len(by_repo[x]), x)):
        gd = git_dir(repo)
        yield repo, sorted(by_repo[repo], key=lambda r: (commit_time(gd, r["base_commit"]), r["id"]))


def build(records: list[dict], snap_dir: Path, trees: Path, *, embed: bool) -> None:
    """Snapshots for every record that has none yet (a restart resumes)."""
    snap_dir.mkdir(parents=True, exist_ok=True)
    trees.mkdir(parents=True, exist_ok=True)
    head = code_head()
    for repo, recs in date_order(records):
        todo = [r for r in recs if not (snap_dir / r["id"] / META).exists()]
        if not todo:
            continue
        gd = git_dir(repo)
        wt = WorkTree(gd, trees / checkout_name(repo))
        idx = trees / (checkout_name(repo) + ".repoloop")
        for rec in todo:
            t0 = time.perf_counter()
            moved = wt.move_to(rec["base_commit"])
            t1 = time.perf_counter()
            stats = index_child(wt.root, idx, embed=embed)
            t2 = time.perf_counter()
            meta = {"id": rec["id"], "repo": repo, "base_commit": rec["base_commit"], "embed": embed,
                    "moved_paths": moved, "move_s": round(t1 - t0, 2), "index_s": round(t2 - t1, 2),
                    "stats": stats, "code_head": head, "created": time.strftime("%Y-%m-%d %H:%M:%S")}
            save(idx, snap_dir / rec["id"], meta)
            print(f"[{time.strftime('%H:%M:%S')}] snapshot {rec['id']} moved={moved} index={t2 - t1:.1f}s"
                  f" save={time.perf_counter() - t2:.1f}s parsed={stats['parsed']}"
                  f" graph={stats['seconds'].get('graph', 0):.1f}s", flush=True)
        print(f"[{time.strftime('%H:%M:%S')}] done {repo}", flush=True)


def check_fingerprint(snaps: dict[str, Snapshot]) -> list[str]:
    """Snapshots whose parser fingerprint differs from the code at hand (their rows would differ
    from a fresh index's): the query run warns, since it then measures old parsing + new ranking."""
    sys.path.insert(0, str(HERE.parent))
    from repoloop.indexer.pipeline import parser_fingerprint

    fp = parser_fingerprint()
    return sorted(i for i, s in snaps.items() if s.meta["stats"].get("parser_fingerprint") != fp)


if __name__ == "__main__":  # pragma: no cover - a helper module
    sys.exit("use benchmarks/localization.py swe --snapshots DIR / --from-snapshots DIR")
