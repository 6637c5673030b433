"""A hard-killed `repoloop run` (kill -9: no cleanup code runs) leaves its git worktree behind; the
next `repoloop runs` or `repoloop run` removes it, keeps its branch (with the dead run's unverified
work committed onto it) and leaves a live run's worktree alone. Real subprocesses, real git, the
real bwrap sandbox, the scripted chat-completions server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fake_llm import (
    FAKE_KEY,
    QUICK_TEST_CMD,
    ROOT,
    FakeLLM,
    Reply,
    call,
    run_agent_cli,
    run_repoloop,
    text,
)

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

PLAN = text("Plan: change add() in calc/__init__.py to return a + b.")
FIX = call("edit_file", {"path": "calc/__init__.py", "old_str": "return a - b", "new_str": "return a + b"})


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def worktrees(repo: Path) -> list[str]:
    return [ln.split()[1] for ln in git(repo, "worktree", "list", "--porcelain").splitlines()
            if ln.startswith("worktree ")][1:]  # the first is the checkout itself


def start_run(fake: FakeLLM, repo: Path) -> subprocess.Popen:
    env = dict(os.environ, OPENAI_API_KEY=FAKE_KEY, PYTHONPATH=str(ROOT), REPOLOOP_LLM_BACKOFF="0.01")
    env.pop("OPENAI_BASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "repoloop.cli", "run", "Fix add", "--repo", str(repo), "--base-url", fake.base_url,
         "--model", "fake-model", "--sandbox", "bwrap", "--test-cmd", QUICK_TEST_CMD, "--lexical", "--json"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def wait_requests(fake: FakeLLM, n: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while len(fake.requests) < n and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert len(fake.requests) >= n, f"the run stopped before its model call {n}: {proc.poll()}"


def test_kill_9_mid_run_then_the_next_commands_sweep_the_worktree_and_keep_the_branch(fake_llm, bug_repo):
    # run 1: a verified fix (committed), an unverified breaking edit (tests fail: not committed),
    # then a slow model call during which it is killed with SIGKILL
    fake_llm.add(PLAN, FIX, call("edit_file", {"path": "calc/__init__.py", "old_str": "return a + b",
                                               "new_str": "return a + b  # checked"}),
                 Reply(content="thinking...", delay=60))
    proc = start_run(fake_llm, bug_repo)
    wait_requests(fake_llm, 4, proc)
    # meanwhile `repoloop runs` must leave the live run's worktree alone
    listed = run_repoloop(["runs", "--repo", str(bug_repo), "--json"])
    assert listed.returncode == 0, listed.stderr
    assert len(worktrees(bug_repo)) == 1 and "removed the worktree" not in listed.stderr
    (live,) = json.loads(listed.stdout)["runs"]
    assert live["status"] == "running"

    (repo_wt,) = worktrees(bug_repo)
    Path(repo_wt, "calc", "__init__.py").write_text(  # work the dead run leaves uncommitted
        Path(repo_wt, "calc", "__init__.py").read_text().replace("return a * b", "return a * b  # unsaved"))
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert worktrees(bug_repo) == [repo_wt] and Path(repo_wt).is_dir()  # a hard kill cleans nothing up
    branch = "repoloop/" + Path(repo_wt).name

    # the next `repoloop runs` sweeps it: worktree gone, branch kept with all the work
    listed = run_repoloop(["runs", "--repo", str(bug_repo), "--json"])
    assert listed.returncode == 0, listed.stderr
    assert f"removed the worktree of dead run {Path(repo_wt).name}" in listed.stderr
    assert worktrees(bug_repo) == [] and not Path(repo_wt).exists()
    assert git(bug_repo, "branch", "--list", branch).strip()
    code = git(bug_repo, "show", f"{branch}:calc/__init__.py")
    assert "return a + b  # checked" in code and "return a * b  # unsaved" in code
    subjects = git(bug_repo, "log", "--format=%s", f"main..{branch}").splitlines()
    assert subjects[0].startswith("repoloop: unverified work of a run that died") and len(subjects) >= 2
    (dead,) = json.loads(listed.stdout)["runs"]
    assert dead["status"] == "killed" and dead["branch"] == branch
    assert git(bug_repo, "status", "--porcelain", "--untracked-files=no") == ""  # the checkout untouched

    # run 2 killed the same way; this time the next `repoloop run` sweeps it before making its own
    fake_llm.add(PLAN, FIX, Reply(content="thinking...", delay=60))
    proc = start_run(fake_llm, bug_repo)
    wait_requests(fake_llm, len(fake_llm.requests) + 3, proc)
    (second_wt,) = worktrees(bug_repo)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    fake_llm.add(PLAN, call("finish", {"summary": "nothing to do"}))
    done, out = run_agent_cli(fake_llm, bug_repo, "Fix add")
    assert out, done.stderr
    assert worktrees(bug_repo) == [] and not Path(second_wt).exists()
    assert git(bug_repo, "branch", "--list", "repoloop/" + Path(second_wt).name).strip()
