"""The agent's tools over a real directory: confinement, unique edits, truncation, errors as text."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from repoloop.agent.tools import TOOL_NAMES, Toolbox, truncate
from tests.fake_llm import make_bug_repo


@dataclass
class _Res:
    exit_code: int
    stdout: str
    stderr: str = ""
    timed_out: bool = False
    duration: float = 0.0


class _Recorder:
    """Records commands; the tools' own behaviour is under test here, the sandbox is tested below."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, float]] = []

    def run(self, command: str, timeout: float) -> _Res:
        self.commands.append((command, timeout))
        return _Res(0, "x" * 50_000)


@pytest.fixture
def box(tmp_path: Path) -> Toolbox:
    repo = make_bug_repo(tmp_path / "repo")
    return Toolbox(repo, _Recorder())


def call(box: Toolbox, name: str, **args):
    return box.call(name, json.dumps(args))


def test_tool_names_are_exactly_the_design_names():
    assert TOOL_NAMES == ("search_code", "get_symbol", "read_file", "list_dir", "edit_file", "write_file",
                          "run_command", "finish")


@pytest.mark.parametrize("path, why", [
    ("../outside.txt", "'..' is not allowed"),
    ("calc/../../outside.txt", "'..' is not allowed"),
    ("/etc/passwd", "absolute paths are not allowed"),
    ("~/x", "absolute paths are not allowed"),
    (".git/config", ".git/ is off limits"),
    ("", "path is empty"),
])
def test_paths_outside_are_refused(box, path, why):
    for name, extra in (("read_file", {}), ("write_file", {"content": "x"}), ("list_dir", {})):
        if name == "list_dir" and path == "":
            continue
        res = call(box, name, path=path, **extra)
        assert not res.ok and why in res.output, (name, res.output)


def test_symlinks_out_are_refused(box, tmp_path):
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (box.root / "link").symlink_to(outside)
    (box.root / "dirlink").symlink_to(tmp_path)
    assert "outside the repository" in call(box, "read_file", path="link").output
    assert "outside the repository" in call(box, "write_file", path="dirlink/new.txt", content="x").output
    assert "outside the repository" in call(box, "edit_file", path="link", old_str="secret", new_str="x").output
    assert outside.read_text() == "secret" and not (tmp_path / "new.txt").exists()


def test_read_file_numbers_lines_and_ranges(box):
    res = call(box, "read_file", path="calc/__init__.py", start_line=2, end_line=3)
    assert res.ok
    assert res.output.splitlines()[1:] == ['    2      """Sum of a and b."""', "    3      return a - b"]
    assert "does not exist" in call(box, "read_file", path="nope.py").output
    assert "is a directory" in call(box, "read_file", path="calc").output


def test_edit_file_needs_a_unique_match(box):
    twice = call(box, "edit_file", path="calc/__init__.py", old_str="return a", new_str="return b")
    assert not twice.ok and "found 2 times" in twice.output and "lines 3, 7" in twice.output
    missing = call(box, "edit_file", path="calc/__init__.py", old_str="    return a - c\n", new_str="x")
    assert not missing.ok and "not found" in missing.output and "near line 3" in missing.output
    ok = call(box, "edit_file", path="calc/__init__.py", old_str="return a - b", new_str="return a + b")
    assert ok.ok and ok.edited and "line 3" in ok.output
    assert "return a + b" in (box.root / "calc/__init__.py").read_text()


def test_write_file_and_list_dir(box):
    res = call(box, "write_file", path="pkg/new/mod.py", content="X = 1\n")
    assert res.ok and res.edited and (box.root / "pkg/new/mod.py").read_text() == "X = 1\n"
    listing = call(box, "list_dir", path=".").output.splitlines()
    assert "calc/" in listing and "pkg/" in listing and "AGENTS.md" in listing and ".git" not in listing


def test_bad_arguments_are_explained(box):
    assert "not valid JSON" in box.call("read_file", '{"path": ').output
    assert "must be a JSON object" in box.call("read_file", '["a"]').output
    assert "needs path" in box.call("read_file", "{}").output
    assert "unknown tool 'nope'" in box.call("nope", "{}").output
    assert "no argument(s) bogus" in call(box, "list_dir", path=".", bogus=1).output


def test_run_command_truncates_long_output(box):
    res = call(box, "run_command", command="yes | head", timeout=5)
    assert box.runner.commands == [("yes | head", 5.0)]
    assert "characters truncated" in res.output and len(res.output) < 14_000


def test_search_falls_back_to_grep_without_an_index(box):
    res = call(box, "search_code", query="Sum of a and b")
    assert "calc/__init__.py:2" in res.output
    sym = box.call("get_symbol", json.dumps({"name": "calc.mul"}))
    assert "calc/__init__.py:6" in sym.output


def test_finish_is_flagged(box):
    res = call(box, "finish", summary="done")
    assert res.finish and res.output == "done"


def test_truncate_keeps_head_and_tail():
    t = truncate("a" * 100 + "b" * 100, 60)
    assert t.startswith("a" * 40) and t.endswith("b" * 20) and "140 characters truncated" in t


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_run_command_in_the_real_bwrap_sandbox(tmp_path):
    from repoloop.agent.sandboxing import SandboxRunner

    repo = make_bug_repo(tmp_path / "repo")
    runner = SandboxRunner.open("bwrap", repo)
    try:
        box = Toolbox(repo, runner)
        res = call(box, "run_command", command="echo hi > made.txt; cat made.txt; touch /usr/x; echo $REPOLOOP_SANDBOX")
        assert "hi" in res.output and "bwrap" in res.output and "Read-only file system" in res.output
        assert (repo / "made.txt").read_text() == "hi\n"
        slow = call(box, "run_command", command="sleep 5", timeout=1)
        assert not slow.ok and "timed out" in slow.output
    finally:
        runner.stop()
