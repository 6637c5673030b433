"""A one-shot CLI query computes its dense half in a forked child (repoloop.retrieval.dense_ahead):
the parent never imports numpy and answers exactly what the in-process search answers; a child
computed for another query is stopped and reaped; where the child has no answer (an unreadable
array) the parent searches in process as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_retrieval_fixtures import index, write_repo

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ("retry a request with exponential backoff", "parse a date string", "checkout the shopping cart")

_CLI = ("import contextlib, io, json, sys\nfrom repoloop.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    rc = main(sys.argv[1:])\n"
        "print(json.dumps({'rc': rc, 'out': json.loads(out.getvalue() or 'null'), 'numpy': 'numpy' in sys.modules}))\n")

_IN_PROCESS = ("import json, sys\nfrom pathlib import Path\n"
               "from repoloop.retrieval.api import RetrievalOptions\n"
               "from repoloop.retrieval.retriever import open_retriever\n"
               "r = open_retriever(Path(sys.argv[1]), options=RetrievalOptions.from_env())\n"
               "signals = sys.argv[3] if len(sys.argv) > 3 else None\n"
               "print(json.dumps([h.to_json() for h in r.search(sys.argv[2], 10, signals=signals)]))\n")


def _python(code: str, *args: str, **env: str) -> dict | list:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300,
                         cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), **env))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_repo(tmp_path_factory.mktemp("ahead") / "repo")
    index(root, embed=True)
    assert list((root / ".repoloop" / "dense").glob("*.npy"))
    return root


def test_the_cli_answers_as_in_process_without_importing_numpy(embedded: Path) -> None:
    for q in QUERIES:
        for signals in (None, "dense"):
            extra = ["--signals", signals] if signals else []
            got = _python(_CLI, "search", q, "--repo", str(embedded), "-k", "10", "--json", *extra)
            want = _python(_IN_PROCESS, str(embedded), q, *([signals] if signals else []))
            assert got["rc"] == 0 and got["out"]["results"] == want and want
            # dense alone answered without numpy in this process: the forked child computed it
            assert got["numpy"] is False


def test_context_and_locate_take_the_childs_answer_too(embedded: Path) -> None:
    q = QUERIES[0]
    ctx = _python(_CLI, "context", q, "--repo", str(embedded), "--budget", "800", "--json")
    want = _python("import json, sys\nfrom pathlib import Path\n"
                   "from repoloop.retrieval.retriever import open_retriever\n"
                   "p = open_retriever(Path(sys.argv[1])).context(sys.argv[2], 800)\n"
                   "print(json.dumps(p.text))\n", str(embedded), q)
    assert ctx["rc"] == 0 and ctx["out"]["text"] == want and want  # (its repo map's PageRank imports numpy)
    loc = _python(_CLI, "locate", q, "--repo", str(embedded), "--json")
    assert loc["rc"] == 0 and loc["out"]["files"] and loc["numpy"] is False


def test_a_child_computed_for_another_query_is_stopped_and_reaped(embedded: Path) -> None:
    code = ("import json, os, sys\nfrom pathlib import Path\n"
            "from repoloop.retrieval.dense_ahead import DenseAhead\n"
            "from repoloop.retrieval.retriever import open_retriever\n"
            "root = Path(sys.argv[1])\n"
            "ahead = DenseAhead.start(root, None, 'something else entirely', 100)\n"
            "assert ahead is not None\n"
            "r = open_retriever(root, dense_ahead=ahead)\n"
            "hits = [h.to_json() for h in r.search(sys.argv[2], 10)]\n"
            "r.close()\n"
            "try:\n    os.waitpid(ahead.pid, os.WNOHANG)\n    reaped = False\n"
            "except ChildProcessError:\n    reaped = True\n"
            "print(json.dumps({'hits': hits, 'reaped': reaped}))\n")
    got = _python(code, str(embedded), QUERIES[1])
    assert got["reaped"] is True
    assert got["hits"] == _python(_IN_PROCESS, str(embedded), QUERIES[1])


def test_without_an_answer_from_the_child_the_parent_searches_in_process(embedded: Path, tmp_path: Path) -> None:
    """An unreadable compact array: the child answers nothing; the parent goes the usual way
    (chromadb, the store of record) and finds what an in-process search finds there."""
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(embedded, root, symlinks=True)
    for npy in (root / ".repoloop" / "dense").glob("*.npy"):
        npy.write_bytes(b"\x93NUMPY not an array")
    got = _python(_CLI, "search", QUERIES[0], "--repo", str(root), "-k", "10", "--json", "--signals", "dense")
    want = _python(_IN_PROCESS, str(embedded), QUERIES[0], "dense", REPOLOOP_DENSE_STORE="chroma")
    assert got["rc"] == 0 and got["numpy"] is True
    assert [(h["path"], h["start_line"]) for h in got["out"]["results"]] == [(h["path"], h["start_line"]) for h in want]
    assert want
