"""The indexer's configuration is read once, at the edge, and passed down as objects: the user's
variable names keep working through `repoloop index`, flags go on top, an object given to the
pipeline wins over whatever the environment says, and the CLI never writes the environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from repoloop.errors import RepoloopError
from repoloop.indexer.config import ClusterConfig, EmbedConfig, IndexConfig
from repoloop.indexer.pipeline import index_repo
from repoloop.indexer.schema import META_MODEL
from repoloop.indexer.store import IndexStore
from tests.test_embed_scope import FILES, _keyed_paths
from tests.test_retrieval_fixtures import write_repo

ROOT = Path(__file__).resolve().parents[1]
CODE_ONLY = {"shop/cart.py", "shop/tax.py"}



def test_from_env_reads_each_variable_and_flags_go_on_top(tmp_path: Path) -> None:
    env = {"REPOLOOP_EMBED_MODEL": "/models/m", "REPOLOOP_EMBED_BASE_URL": "http://127.0.0.1:1/v1",
           "OPENAI_API_KEY": "sk-secret", "REPOLOOP_EMBED_MAX_TOKENS": "64", "REPOLOOP_EMBED_BACKEND": "Torch",
           "REPOLOOP_EMBED_PRECISION": "fp32", "REPOLOOP_EMBED_THREADS": "3",
           "REPOLOOP_CACHE_DIR": str(tmp_path / "c"), "REPOLOOP_CHROMA_URL": "http://127.0.0.1:2",
           "REPOLOOP_EMBED_TESTS": "yes", "REPOLOOP_VECTOR_CACHE": str(tmp_path / "v.db")}
    c = EmbedConfig.from_env(env)
    assert (c.model, c.base_url, c.api_key, c.max_tokens, c.backend, c.precision, c.threads) == (
        "/models/m", "http://127.0.0.1:1/v1", "sk-secret", 64, "torch", "fp32", 3)
    assert (c.cache_dir, c.chroma_url, c.scope, c.vector_cache) == (
        tmp_path / "c", "http://127.0.0.1:2", "all", tmp_path / "v.db")
    assert "sk-secret" not in repr(c)  # the key is not printed with the rest
    assert EmbedConfig.from_env(env, model="flag", max_tokens=None).model == "flag"  # a flag not given leaves it
    assert c.replace(scope="code", model=None).scope == "code" and c.replace(model=None).model == "/models/m"
    # Unset: the defaults, and the cache under XDG_CACHE_HOME when that is set.
    d = EmbedConfig.from_env({"XDG_CACHE_HOME": str(tmp_path)})
    assert d == EmbedConfig(cache_dir=tmp_path / "repoloop") and d.scope == "code" and d.backend == "onnx"
    assert EmbedConfig().onnx_cache_dir() == Path.home() / ".cache" / "repoloop"
    for var, bad in (("REPOLOOP_EMBED_BACKEND", "tpu"), ("REPOLOOP_EMBED_PRECISION", "int4"),
                     ("REPOLOOP_EMBED_MAX_TOKENS", "0")):
        with pytest.raises(RepoloopError, match=var):
            EmbedConfig.from_env({var: bad})
    cl = ClusterConfig.from_env({"RAY_ADDRESS": " 127.0.0.1:6379 ", "REPOLOOP_CLUSTER_BATCH_FILES": "2",
                                 "REPOLOOP_CLUSTER_EMBED_SUB": "x", "REPOLOOP_CLUSTER_TRACE": str(tmp_path / "t")})
    assert cl == ClusterConfig(address="127.0.0.1:6379", batch_files=2, embed_sub=128, trace=tmp_path / "t")
    assert ClusterConfig.from_env({"RAY_ADDRESS": "a:1"}, "local").address == "local"  # --cluster wins
    assert IndexConfig.from_env({}).auto_seed and not IndexConfig.from_env({"REPOLOOP_NO_SEED": "1"}).auto_seed


def test_a_config_given_to_the_pipeline_wins_over_the_environment(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing under the CLI reads the variables: with them set, the pipeline does what its object says."""
    monkeypatch.setenv("REPOLOOP_EMBED_TESTS", "1")
    monkeypatch.setenv("REPOLOOP_EMBED_MAX_TOKENS", "64")
    monkeypatch.setenv("REPOLOOP_VECTOR_CACHE", str(tmp_path / "elsewhere.db"))
    root = write_repo(tmp_path / "repo", FILES)
    rep = index_repo(root, embed=True, progress=False, jobs=1, embed_config=EmbedConfig(max_tokens=128))
    assert rep.embedded > 0 and _keyed_paths(root) == CODE_ONLY
    with IndexStore.open(root) as store:
        assert store.get_meta(META_MODEL) == "all-MiniLM-L6-v2@128"
    assert not (tmp_path / "elsewhere.db").exists()


def test_cli_index_reads_the_variables_once_and_leaves_the_environment_alone(tmp_path: Path) -> None:
    # A user's REPOLOOP_EMBED_TESTS=1 still embeds tests through `repoloop index` ...
    root = write_repo(tmp_path / "repo", FILES)
    env = dict(os.environ, PYTHONPATH=str(ROOT), REPOLOOP_EMBED_TESTS="1")
    out = subprocess.run([sys.executable, "-m", "repoloop.cli", "index", str(root), "--json"], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["embedded"] > 0 and _keyed_paths(root) == set(FILES)
    # ... and the flag does the same in this process without writing the environment for the indexer.
    from repoloop.cli import main

    other = write_repo(tmp_path / "other", FILES)
    before = dict(os.environ)
    assert main(["index", str(other), "--embed-tests", "--embed-max-tokens", "128", "--quiet"]) == 0
    assert _keyed_paths(other) == set(FILES)
    assert {k: v for k, v in os.environ.items() if k.startswith("REPOLOOP_")} == \
        {k: v for k, v in before.items() if k.startswith("REPOLOOP_")}
