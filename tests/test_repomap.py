"""The repo map: signatures of the most important files, ranked by PageRank, never over budget."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from repoloop.retrieval.repomap import build_repo_map, render_repo_map
from repoloop.retrieval.tokens_count import get_counter
from tests.graph_fixtures import copy_stdlib_packages, index_dir
from tests.test_graph_queries import FILES, write_repo


@pytest.fixture(scope="module")
def email_repo(tmp_path_factory):
    root = copy_stdlib_packages(tmp_path_factory.mktemp("maprepo"), ["json", "email"])
    store = index_dir(root)
    yield root, store
    store.close()


@pytest.fixture()
def small_repo(tmp_path):
    root = write_repo(tmp_path / "repo", FILES)
    store = index_dir(root)
    yield root, store
    store.close()


def test_never_over_budget(email_repo):
    _root, store = email_repo
    counter = get_counter()
    sizes = []
    for budget in (1, 20, 64, 256, 1024, 4096):
        m = build_repo_map(store, budget)
        assert counter.count(m.text) == m.tokens <= budget
        sizes.append(m.tokens)
    assert sizes == sorted(sizes) and sizes[-1] > 2000  # a bigger budget shows more
    assert render_repo_map(store, 0) == ""


def test_shape_signatures_nesting_no_bodies(small_repo):
    _root, store = small_repo
    text = render_repo_map(store, 2000)
    lines = text.split("\n")
    assert "app/util.py:" in lines
    i = lines.index("app/util.py:")
    block = lines[i + 1:]
    assert "def helper(v)" in block
    assert "class Store(Base)" in block
    assert "    def load(self)" in block  # a method, indented under its class
    assert not any("return" in ln for ln in lines)  # bodies elided
    # the shared helper module ranks above the leaf module that only calls it
    assert lines.index("app/util.py:") < lines.index("app/cli.py:")


def test_important_symbols_first_under_a_small_budget(email_repo):
    _root, store = email_repo
    small = render_repo_map(store, 120)
    # email.message.Message is used by nearly every module of the package
    assert "email/message.py:" in small and "class Message" in small


def test_focus_personalizes(email_repo):
    _root, store = email_repo
    plain = render_repo_map(store, 150)
    focused = build_repo_map(store, 150, ["json/decoder.py"])
    assert focused.files[0].startswith("json/")
    assert "json/decoder.py" in focused.files
    assert focused.text != plain
    by_symbol = build_repo_map(store, 150, ["JSONEncoder"])
    assert by_symbol.files[0] == "json/encoder.py"
    miss = build_repo_map(store, 150, ["no_such_thing_anywhere"])
    assert miss.unmatched_focus == ["no_such_thing_anywhere"]
    assert miss.text == plain  # nothing matched: the global map


def test_map_cli(email_repo):
    root, _store = email_repo
    r = subprocess.run([sys.executable, "-m", "repoloop.cli", "map", "--repo", str(root), "--budget", "300",
                        "--json", "--focus", "email/mime"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["tokens"] <= 300 and d["files"][0].startswith("email/mime/")
    r = subprocess.run([sys.executable, "-m", "repoloop.cli", "map", "--repo", str(root), "--budget", "100",
                        "--focus", "nothing_named_so"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "warning" in r.stderr and r.stdout.strip()
    r = subprocess.run([sys.executable, "-m", "repoloop.cli", "map", "--repo", str(root), "--budget", "0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
