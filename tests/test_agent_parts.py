"""The loop's smaller parts: compaction, test-command detection, failure digests, redaction, the worktree."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from repoloop.agent.conversation import Conversation
from repoloop.agent.trajectory import Redactor, Trajectory, read
from repoloop.agent.verify import detect_test_command, failure_digest, failure_query
from repoloop.agent.workspace import Workspace
from repoloop.errors import RepoloopError
from tests.fake_llm import make_bug_repo

PYTEST_FAILURE = """\
F.                                                                       [100%]
=================================== FAILURES ===================================
___________________________________ test_add ___________________________________

    def test_add():
>       assert add(2, 3) == 5
E       assert -1 == 5
E        +  where -1 = add(2, 3)

tests/test_calc.py:5: AssertionError
=========================== short test summary info ============================
FAILED tests/test_calc.py::test_add - assert -1 == 5
1 failed, 1 passed in 0.03s
"""


def test_failure_digest_and_query_from_pytest_output():
    d = failure_digest(PYTEST_FAILURE)
    assert "failed: tests/test_calc.py::test_add" in d
    assert "E assert -1 == 5" in d
    assert "at tests/test_calc.py:5" in d
    q = failure_query(PYTEST_FAILURE)
    assert "test_add" in q and "test_calc" in q and "AssertionError" in q


def test_failure_digest_for_go_and_tracebacks():
    go = "--- FAIL: TestParse (0.00s)\n    parse_test.go:12: got 1 want 2\nFAIL\n"
    assert "failed: TestParse" in failure_digest(go)
    tb = 'Traceback (most recent call last):\n  File "/w/pkg/mod.py", line 9, in load\nKeyError: \'x\'\n'
    assert "at /w/pkg/mod.py:9 load" in failure_digest(tb)


@pytest.mark.parametrize("files, expected", [
    ({"go.mod": "module x\n"}, "go test ./..."),
    ({"Cargo.toml": "[package]\n"}, "cargo test --offline"),
    ({"package.json": json.dumps({"scripts": {"test": "jest"}})}, "npm test --silent"),
    ({"package.json": json.dumps({"scripts": {"test": "echo \"Error: no test specified\" && exit 1"}})}, None),
    ({"Makefile": "test:\n\techo ok\n"}, "make test"),
    ({"README.md": "x"}, None),
])
def test_detect_test_command(tmp_path, files, expected):
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    assert detect_test_command(tmp_path) == expected


def test_detect_pytest(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_x(): pass\n")
    cmd = detect_test_command(tmp_path)
    assert cmd is not None and cmd.endswith("-m pytest -q -x -p no:cacheprovider")


def test_compaction_keeps_prefix_and_pairs():
    conv = Conversation(context_limit=4_000, reserve=500, keep_recent=4)
    conv.add({"role": "system", "content": "SYSTEM"})
    conv.add({"role": "user", "content": "TASK"})
    for i in range(30):
        conv.add({"role": "assistant", "content": "", "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": "read_file", "arguments": f'{{"path": "f{i}.py"}}'}}]})
        conv.add({"role": "tool", "tool_call_id": f"c{i}", "content": f"content of f{i} " + "x" * 600})
    before = conv.tokens()
    summary = conv.compact_if_needed()
    assert summary is not None and conv.compactions == 1
    assert conv.tokens() < before and conv.tokens() <= 3_500
    assert conv.messages[0]["content"] == "SYSTEM" and conv.messages[1]["content"] == "TASK"
    assert 'read_file({"path": "f0.py"})' in conv.messages[2]["content"]
    assert conv.messages[3]["role"] == "assistant"  # cut before an assistant turn
    ids = {tc["id"] for m in conv.messages for tc in m.get("tool_calls") or []}
    assert all(m["tool_call_id"] in ids for m in conv.messages if m["role"] == "tool")
    assert conv.compact_if_needed() is None  # under the limit now


def test_redaction_of_known_and_credential_looking_strings(tmp_path):
    t = Trajectory(tmp_path / "r.jsonl", Redactor(["my-private-value-123"]))
    t.write("x", a="key my-private-value-123", b="Authorization: Bearer abcdefghijklmnopq",
            c="sk-proj-ABCDEFGHIJKLMNOP", d={"api_key": "zzzzzzzzzzzzzzzzzz"})
    t.close()
    raw = (tmp_path / "r.jsonl").read_text()
    for secret in ("my-private-value-123", "abcdefghijklmnopq", "sk-proj-ABCDEFGHIJKLMNOP", "zzzzzzzzzzzz"):
        assert secret not in raw
    rec = next(read(tmp_path / "r.jsonl"))
    assert rec["a"] == "key [REDACTED]" and rec["type"] == "x"


def test_worktree_commits_diff_and_removal_leave_the_checkout_alone(tmp_path):
    repo = make_bug_repo(tmp_path / "repo")
    (repo / "calc/__init__.py").write_text("# the user's own uncommitted edit\n")
    ws = Workspace.create(repo, "t1")
    assert ws.path.is_dir() and ws.branch == "repoloop/t1"
    assert "return a - b" in (ws.path / "calc/__init__.py").read_text()  # starts from HEAD
    (ws.path / "calc/__init__.py").write_text((ws.path / "calc/__init__.py").read_text().replace("a - b", "a + b"))
    (ws.path / "__pycache__").mkdir()
    (ws.path / "__pycache__" / "x.pyc").write_bytes(b"\0")
    sha = ws.commit("step")
    assert sha and ws.commit("again") is None
    diff = ws.branch_diff()
    assert "+    return a + b" in diff and "pyc" not in diff
    ws.remove()
    assert not ws.path.exists()
    assert subprocess.run(["git", "branch", "--list", "repoloop/t1"], cwd=repo, capture_output=True,
                          text=True).stdout.strip()
    assert (repo / "calc/__init__.py").read_text() == "# the user's own uncommitted edit\n"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout
    assert status.strip() == "M calc/__init__.py"  # .repoloop/ stays invisible
    with pytest.raises(RepoloopError, match="does not apply"):
        ws.apply(diff)  # conflicts with the user's edit: refused, nothing written
    assert (repo / "calc/__init__.py").read_text() == "# the user's own uncommitted edit\n"


def test_workspace_refuses_non_repos(tmp_path):
    with pytest.raises(RepoloopError, match="not a git repository"):
        Workspace.check(tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    with pytest.raises(RepoloopError, match="no commits"):
        Workspace.check(Path(tmp_path))
