"""A team's shared vectors through a real `chroma run` on 127.0.0.1, and indexes seeded from a
sibling checkout: a second clone (another path, another branch) embeds only the texts nobody
embedded yet; a new git worktree starts from its sibling's index and re-parses only what differs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures_cluster import cli, git, real_repo, snapshot, wait_for
from tests.test_chroma_server import chroma_server  # noqa: F401 - the real `chroma run` fixture

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

PATHS = ("repoloop/sandbox", "repoloop/indexer/parse/handlers")


def _index(repo: Path, *extra: str) -> dict:
    r = cli("index", str(repo), "--json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _server_up(url: str) -> None:
    import chromadb
    from chromadb.config import Settings

    host, port = url.rsplit("/", 1)[-1].split(":")

    def up() -> bool:
        try:
            chromadb.HttpClient(host=host, port=int(port), settings=Settings(anonymized_telemetry=False)).heartbeat()
            return True
        except Exception:  # noqa: BLE001 - not answering yet
            return False

    wait_for(up, "the Chroma server answers", 120)


def _edit(repo: Path) -> None:
    """One function changed, one added, in two files: a few new chunk texts."""
    f = repo / "repoloop/sandbox/base.py"
    text = f.read_text()
    f.write_text(text + "\n\ndef team_cache_probe(x: int) -> int:\n    \"\"\"Added on the branch.\"\"\"\n"
                 "    return x * 41 + 1\n")
    g = sorted((repo / "repoloop/indexer/parse/handlers").glob("*.py"))[1]
    g.write_text(g.read_text().replace("return", "return  ", 1))


def test_second_clone_embeds_only_new_texts(tmp_path: Path, chroma_server) -> None:  # noqa: F811
    url, _ = chroma_server
    _server_up(url)
    a = real_repo(tmp_path / "a", PATHS)
    first = _index(a, "--chroma-url", url)
    keys_a = set(snapshot(a / ".repoloop/index.db")["vector_ids"])
    assert first["embedded"] == len(keys_a) > 50

    b = tmp_path / "elsewhere" / "b"
    b.parent.mkdir()
    git(tmp_path, "clone", "-q", str(a), str(b))
    git(b, "checkout", "-q", "-b", "feature")
    _edit(b)
    git(b, "commit", "-q", "-am", "feature work")
    second = _index(b, "--chroma-url", url)
    keys_b = set(snapshot(b / ".repoloop/index.db")["vector_ids"])
    new = keys_b - keys_a
    assert 0 < len(new) < 10
    assert second["embedded"] == len(new)  # everything else came from the team's cache
    st = json.loads(cli("status", "--repo", str(b), "--json").stdout)["consistency"]
    assert st["consistent"] and st["vectors"] == len(keys_b) and st["location"] == url

    c = tmp_path / "c"  # a third clone of main: nothing left to embed
    git(tmp_path, "clone", "-q", str(a), str(c))
    assert _index(c, "--chroma-url", url)["embedded"] == 0
    # Each index keeps its own collection (pruning one never takes another's vectors): b's
    # branch-only texts are not in a's index, and a's index is still complete.
    st_a = json.loads(cli("status", "--repo", str(a), "--json").stdout)["consistency"]
    assert st_a["consistent"] and st_a["vectors"] == len(keys_a)


def test_new_worktree_starts_from_its_siblings_index(tmp_path: Path) -> None:
    main = real_repo(tmp_path / "main", PATHS)
    base = _index(main)
    keys_main = set(snapshot(main / ".repoloop/index.db")["vector_ids"])
    assert base["embedded"] == len(keys_main) > 50

    wt = tmp_path / "wt"
    git(main, "worktree", "add", "-q", "-b", "feature", str(wt))
    _edit(wt)
    gone = sorted((wt / "repoloop/sandbox").glob("*.py"))[-1]
    gone.unlink()
    (wt / "repoloop/sandbox/extra.py").write_text("def extra_helper():\n    return 'new file'\n")
    out = _index(wt)
    assert out["seeded_from"]["from"] == str(main / ".repoloop")
    assert out["seeded_from"]["vectors"] == len(keys_main)
    assert out["files_indexed"] == 3 and out["files_deleted"] == 1  # 2 edited + 1 added; 1 removed
    keys_wt = set(snapshot(wt / ".repoloop/index.db")["vector_ids"])
    assert out["embedded"] == len(keys_wt - keys_main) > 0

    # The seeded index equals one built from nothing (parse, chunks, graph), vector ids included.
    fresh = _index(wt, "--index-dir", str(tmp_path / "fresh-idx"), "--no-embed")
    assert fresh["files_indexed"] == out["files_seen"]
    a, b = snapshot(wt / ".repoloop/index.db"), snapshot(tmp_path / "fresh-idx/index.db")
    for table in a:
        if table != "vector_ids":
            assert a[table] == b[table], table
    st = json.loads(cli("status", "--repo", str(wt), "--json").stdout)["consistency"]
    assert st["consistent"] and st["vectors"] == len(keys_wt)

    # A fresh clone names its sibling: nothing to parse, nothing to embed.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(main), str(clone))
    again = _index(clone, "--seed-from", str(main))
    assert again["seeded_from"]["files"] == base["files_seen"]
    assert again["files_indexed"] == 0 and again["embedded"] == 0
    # An index that exists is never replaced by a seed.
    assert "seeded_from" not in _index(clone, "--seed-from", str(main))
