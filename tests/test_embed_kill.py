"""A kill -9 in the middle of the embedding phase leaves a usable, self-describing index:
status reports the missing vectors, and the next `repoloop index` completes the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.test_retrieval_fixtures import index, write_repo

ROOT = Path(__file__).resolve().parents[1]

# Embeds in batches of 4 and prints a line after each batch is stored, so the test can kill it
# for certain between batches (and, with the timing, possibly during one).
WORKER = r'''
import sys
from pathlib import Path
from repoloop.indexer.embed.embedders import SentenceTransformerEmbedder
from repoloop.indexer.embed.phase import embed_missing
from repoloop.indexer.store import IndexStore

class Announcing(SentenceTransformerEmbedder):
    def embed(self, texts):
        out = super().embed(texts)
        print("batch", len(texts), flush=True)
        return out

root = Path(sys.argv[1])
with IndexStore.open(root) as store:
    print("start", flush=True)
    embed_missing(store, root / ".repoloop", embedder=Announcing(), batch=4)
print("finished", flush=True)
'''


def _many_functions(n: int) -> str:
    return "\n\n".join(
        f"def handler_{i}(request, retries={i}):\n    \"\"\"Handle request kind {i}.\"\"\"\n"
        f"    value = request.get('field_{i}', {i})\n    return value * retries + {i}\n"
        for i in range(n)
    )


def _status(root: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "repoloop.cli", "status", "--repo", str(root), "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["consistency"]


def test_kill_9_mid_embedding_then_next_index_completes(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo")
    (root / "handlers.py").write_text(_many_functions(32))
    index(root)  # --no-embed
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(root)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT, start_new_session=True)
    batches = 0
    deadline = time.monotonic() + 240
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("batch"):
                batches += 1
                if batches == 3:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            assert time.monotonic() < deadline
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL and batches == 3

    c = _status(root)
    assert c["enabled"] and not c["consistent"]
    # The announcement comes after embedding, before storing: at least two batches of 4 were stored.
    assert c["missing"] > 0 and c["vectors"] >= 8
    assert c["vectors"] + c["missing"] == c["keys"] + c["unkeyed_chunks"]

    out = subprocess.run([sys.executable, "-m", "repoloop.cli", "index", str(root), "--quiet"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    c2 = _status(root)
    assert c2["consistent"] and c2["missing"] == 0 and c2["vectors"] == c2["keys"] > c["vectors"]
