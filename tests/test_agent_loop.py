"""End to end: `repoloop run` as a subprocess, the real `openai` client against a scripted
chat-completions server on 127.0.0.1, a real git repository, commands in the real bwrap sandbox."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fake_llm import (
    FAKE_KEY,
    QUICK_TEST_CMD,
    TEST_CMD,
    call,
    calls,
    error,
    run_agent_cli,
    run_repoloop,
    snapshot,
    text,
)

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

PLAN = text("Plan: change add() in calc/__init__.py to return a + b; run tests/test_calc.py.")
READ = call("read_file", {"path": "calc/__init__.py"})
FIX = call("edit_file", {"path": "calc/__init__.py", "old_str": "return a - b", "new_str": "return a + b"})
WRONG = call("edit_file", {"path": "calc/__init__.py", "old_str": "return a - b", "new_str": "return b - a"})
REFIX = call("edit_file", {"path": "calc/__init__.py", "old_str": "return b - a", "new_str": "return a + b"})
FINISH = call("finish", {"summary": "add() now adds"})

EXPECTED_DIFF_LINES = ("-    return a - b", "+    return a + b")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def branches(repo: Path) -> list[str]:
    return git(repo, "branch", "--list", "repoloop/*", "--format=%(refname:short)").split()


def tool_messages(request: dict) -> list[str]:
    return [m.get("content") or "" for m in request["messages"] if m.get("role") == "tool"]


def test_scripted_fix_ends_verified_with_the_diff_on_the_branch(fake_llm, bug_repo):
    before = snapshot(bug_repo)
    fake_llm.add(PLAN, READ, FIX, FINISH)
    proc, out = run_agent_cli(fake_llm, bug_repo, "Fix add(): test_add fails", "--stream", test_cmd=TEST_CMD)
    assert proc.returncode == 0, proc.stderr
    assert out["status"] == "success"
    assert out["steps"] == 3
    assert out["tokens"] == {"prompt": 400, "completion": 80, "total": 480}
    assert out["cost"] == 0 and out["cost_known"] is False  # no price for "fake-model": unknown, not free
    for line in EXPECTED_DIFF_LINES:
        assert line in out["diff"].splitlines()
    assert out["diff"].count("\n+") == 2  # '+++ b/...' and the one changed line: nothing else
    # The verified work is a commit on the branch; the worktree is gone, the branch stays.
    branch = out["branch"]
    assert branches(bug_repo) == [branch]
    assert git(bug_repo, "show", f"{branch}:calc/__init__.py").count("return a + b") == 1
    assert git(bug_repo, "log", "--format=%s", f"main..{branch}").splitlines() == [
        "repoloop step 2: calc/__init__.py (tests pass)"]
    assert git(bug_repo, "diff", f"main..{branch}").strip() == out["diff"].strip()
    assert len(git(bug_repo, "worktree", "list").splitlines()) == 1
    # The user's checkout is exactly as it was.
    assert snapshot(bug_repo) == before
    # Every request went through streaming and carried the tools by their exact names.
    assert all(r.get("stream") for r in fake_llm.requests)
    names = {t["function"]["name"] for t in fake_llm.requests[1]["tools"]}
    assert names == {"search_code", "get_symbol", "read_file", "list_dir", "edit_file", "write_file",
                     "run_command", "finish"}
    # The trajectory holds the run without the key.
    traj = Path(out["trajectory"])
    assert traj.parent == bug_repo / ".repoloop" / "runs"
    raw = traj.read_text()
    assert FAKE_KEY not in raw
    types = [json.loads(line)["type"] for line in raw.splitlines()]
    for t in ("run_start", "observe", "plan", "request", "reply", "tool", "verify", "commit", "step", "run_end"):
        assert t in types


def test_model_sees_context_and_then_the_failure(fake_llm, bug_repo):
    fake_llm.add(PLAN, WRONG, REFIX, FINISH)
    proc, out = run_agent_cli(fake_llm, bug_repo, "add() returns the wrong result", test_cmd=TEST_CMD)
    assert proc.returncode == 0, proc.stderr
    assert out["status"] == "success"
    first = fake_llm.request_text(0)
    assert "AGENTS-MARKER-7731" in first  # the project's own instructions
    assert "Repository map" in first and "calc/__init__.py" in first  # map / context pack
    assert "def add" in first  # retrieved code, before any tool call
    assert "add() returns the wrong result" in first
    # Request 1 gets the wrong edit back; the next request carries the failed verification.
    after_wrong = fake_llm.request_text(2)
    assert "Verification failed" in after_wrong
    assert "test_add" in after_wrong and "assert 1 == 5" in after_wrong
    assert "Verification failed" not in fake_llm.request_text(1)
    related = after_wrong.split("Code related to the failure", 1)[1]
    assert "tests/test_calc.py" in related and "def test_add" in related
    # The failure became a retrieval query whose context was added.
    recs = [json.loads(x) for x in Path(out["trajectory"]).read_text().splitlines()]
    followups = [r for r in recs if r["type"] == "observe" and r.get("after")]
    assert followups and "add" in followups[0]["query"]


def test_malformed_arguments_and_unknown_tool_get_errors_the_model_can_act_on(fake_llm, bug_repo):
    fake_llm.add(PLAN, call("read_file", '{"path": "calc/__init__.py"'), call("frobnicate", {"x": 1}),
                 calls(("read_file", {"path": "calc/__init__.py", "lines": 3}), ("list_dir", {"path": "."})),
                 FIX, FINISH)
    proc, out = run_agent_cli(fake_llm, bug_repo)
    assert proc.returncode == 0, proc.stderr
    assert out["status"] == "success"
    bad_json = tool_messages(fake_llm.requests[2])[-1]
    assert "not valid JSON" in bad_json and "read_file" in bad_json
    unknown = tool_messages(fake_llm.requests[3])[-1]
    assert "unknown tool 'frobnicate'" in unknown and "edit_file" in unknown
    two = tool_messages(fake_llm.requests[4])[-2:]
    assert "no argument(s) lines" in two[0]
    assert "calc/" in two[1] and "tests/" in two[1]  # the second call of the same turn still ran


def test_server_error_then_success_is_retried(fake_llm, bug_repo):
    fake_llm.add(error(500), error(429), PLAN, FIX, FINISH)
    proc, out = run_agent_cli(fake_llm, bug_repo)
    assert proc.returncode == 0, proc.stderr
    assert out["status"] == "success"
    assert len(fake_llm.requests) == 5
    assert fake_llm.requests[0] == fake_llm.requests[2]  # the same request, sent again
    recs = [json.loads(x) for x in Path(out["trajectory"]).read_text().splitlines()]
    plan_reply = next(r for r in recs if r["type"] == "reply" and r["phase"] == "plan")
    assert plan_reply["attempts"] == 3 and len(plan_reply["errors"]) == 2


def test_endpoint_that_keeps_failing_ends_with_error(fake_llm, bug_repo):
    fake_llm.default = error(503)
    proc, out = run_agent_cli(fake_llm, bug_repo, "Fix add", "--retries", "2")
    assert proc.returncode == 1
    assert out["status"] == "error" and "after 3 attempts" in out["reason"]
    assert len(fake_llm.requests) == 3


def test_model_that_never_finishes_stops_at_max_steps_and_keeps_the_branch(fake_llm, bug_repo):
    before = snapshot(bug_repo)
    fake_llm.add(PLAN, WRONG)
    fake_llm.default = call("list_dir", {"path": "."})
    proc, out = run_agent_cli(fake_llm, bug_repo, "Fix add", "--max-steps", "4")
    assert proc.returncode == 1
    assert out["status"] == "failed" and "max steps" in out["reason"]
    assert out["steps"] == 4
    assert len(fake_llm.requests) == 5  # the plan and four steps
    assert branches(bug_repo) == [out["branch"]]
    # The unverified work is kept on the branch, labelled as such; the checkout is untouched.
    assert "return b - a" in git(bug_repo, "show", f"{out['branch']}:calc/__init__.py")
    assert "unverified" in git(bug_repo, "log", "-1", "--format=%s", out["branch"])
    assert snapshot(bug_repo) == before


def test_repeated_failing_call_stops_the_run(fake_llm, bug_repo):
    fake_llm.add(PLAN)
    fake_llm.default = call("read_file", {"path": "nope.py"})
    proc, out = run_agent_cli(fake_llm, bug_repo, "Fix add", "--max-steps", "20")
    assert proc.returncode == 1
    assert out["status"] == "failed" and "repeated" in out["reason"]
    assert out["steps"] == 3


def test_token_budget_stops_the_run(fake_llm, bug_repo):
    fake_llm.add(PLAN)
    fake_llm.default = call("list_dir", {"path": "."})
    proc, out = run_agent_cli(fake_llm, bug_repo, "Fix add", "--max-tokens", "300")
    assert proc.returncode == 1
    assert "token budget" in out["reason"] and out["tokens"]["total"] >= 300
    assert out["steps"] == 2  # 120 tokens a call: plan + 2 steps = 360


def test_rejected_plan_changes_nothing(fake_llm, bug_repo):
    before = snapshot(bug_repo)
    fake_llm.add(PLAN, FIX, FINISH)
    proc, out = run_agent_cli(fake_llm, bug_repo, "Fix add", "--approve-plan", input="r\n")
    assert proc.returncode == 1
    assert out["status"] == "rejected"
    assert "change add()" in proc.stderr  # the plan was shown
    assert len(fake_llm.requests) == 1  # no step after the plan
    assert branches(bug_repo) == [] and out["branch"] is None and out["diff"] == ""
    assert snapshot(bug_repo) == before


def test_edited_plan_is_what_the_executor_follows(fake_llm, bug_repo):
    fake_llm.add(PLAN, FIX, FINISH)
    proc, out = run_agent_cli(fake_llm, bug_repo, "Fix add", "--approve-plan", "--plan-model", "planner-x",
                              input="e\nOnly touch calc/__init__.py, EDITED-PLAN-42\n.\n")
    assert proc.returncode == 0, proc.stderr
    assert fake_llm.requests[0]["model"] == "planner-x"
    assert fake_llm.requests[1]["model"] == "fake-model"
    assert "EDITED-PLAN-42" in fake_llm.request_text(1)


def test_path_escapes_are_refused_through_the_loop(fake_llm, bug_repo, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret outside the repo")
    (bug_repo / "link").symlink_to(outside)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "add", "link"], cwd=bug_repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "link"], cwd=bug_repo,
                   check=True)
    fake_llm.add(PLAN, call("read_file", {"path": "../outside.txt"}), call("read_file", {"path": str(outside)}),
                 call("read_file", {"path": "link"}), call("write_file", {"path": "link", "content": "pwned"}),
                 call("write_file", {"path": ".git/config", "content": "x"}), FIX, FINISH)
    proc, out = run_agent_cli(fake_llm, bug_repo)
    assert proc.returncode == 0, proc.stderr
    msgs = [tool_messages(fake_llm.requests[i])[-1] for i in range(2, 7)]
    assert "'..' is not allowed" in msgs[0]
    assert "absolute paths are not allowed" in msgs[1]
    assert "outside the repository" in msgs[2] and "outside the repository" in msgs[3]
    assert ".git/ is off limits" in msgs[4]
    assert outside.read_text() == "secret outside the repo"
    assert all("secret outside" not in fake_llm.request_text(i) for i in range(len(fake_llm.requests)))


def test_commands_run_in_the_sandbox(fake_llm, bug_repo, tmp_path):
    marker = tmp_path / "escaped"
    fake_llm.add(PLAN, call("run_command", {"command": f"touch {marker}; echo inside-$REPOLOOP_SANDBOX"}),
                 FIX, FINISH)
    proc, out = run_agent_cli(fake_llm, bug_repo)
    assert proc.returncode == 0, proc.stderr
    result = tool_messages(fake_llm.requests[2])[-1]
    assert "inside-bwrap" in result
    assert not marker.exists()  # /tmp outside the workspace is not the host's


def test_apply_puts_the_verified_diff_in_the_working_tree(fake_llm, bug_repo):
    fake_llm.add(PLAN, FIX, FINISH)
    proc, out = run_agent_cli(fake_llm, bug_repo, "Fix add", "--apply")
    assert proc.returncode == 0, proc.stderr
    assert "return a + b" in (bug_repo / "calc/__init__.py").read_text()
    assert git(bug_repo, "status", "--porcelain").strip() == "M calc/__init__.py"


def test_trajectory_replays_and_runs_are_listed(fake_llm, bug_repo):
    fake_llm.add(PLAN, WRONG, REFIX, FINISH)
    proc, out = run_agent_cli(fake_llm, bug_repo, "Fix add", "--prices",
                              '{"fake-model": {"input": 1000, "output": 2000}}', test_cmd=TEST_CMD)
    assert proc.returncode == 0, proc.stderr
    # 4 calls of 100 prompt + 20 completion tokens at $1000/$2000 per 1M tokens.
    assert out["cost"] == pytest.approx(4 * (100 * 1000 + 20 * 2000) / 1e6)
    assert out["cost_known"] is True
    run_id = out["run_id"]
    show = run_repoloop(["runs", "show", run_id, "--repo", str(bug_repo)])
    assert show.returncode == 0, show.stderr
    text_out = show.stdout
    for needle in ("Fix add", "plan (approve)", "tool edit_file", "FAILED", "PASSED", "assert 1 == 5",
                   "end: SUCCESS", "+    return a + b"):
        assert needle in text_out, needle
    assert FAKE_KEY not in text_out
    listed = run_repoloop(["runs", "--repo", str(bug_repo), "--json"])
    runs = json.loads(listed.stdout)["runs"]
    assert [r["id"] for r in runs] == [run_id] and runs[0]["status"] == "success"
    stats = json.loads(run_repoloop(["runs", "stats", "--repo", str(bug_repo), "--json"]).stdout)
    entry = stats["models"]["fake-model"]
    assert entry["successes"] == 1 and entry["steps"]["median"] == 3
    missing = run_repoloop(["runs", "show", "nope", "--repo", str(bug_repo)])
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr and "Traceback" not in missing.stderr


def test_usage_errors_are_one_line(bug_repo, tmp_path):
    no_model = run_repoloop(["run", "x", "--repo", str(bug_repo), "--base-url", "http://127.0.0.1:9/v1"])
    assert no_model.returncode == 2 and "no model" in no_model.stderr
    plain = tmp_path / "plain"
    plain.mkdir()
    not_git = run_repoloop(["run", "x", "--repo", str(plain), "--model", "m", "--base-url", "http://127.0.0.1:9/v1"],
                           cwd=plain)
    assert not_git.returncode == 2 and "not a git repository" in not_git.stderr
    assert list(plain.iterdir()) == []  # nothing written there
    assert "Traceback" not in no_model.stderr + not_git.stderr
    bad = run_repoloop(["run", "x", "--repo", str(bug_repo), "--model", "m", "--max-steps", "0",
                        "--base-url", "http://127.0.0.1:9/v1"])
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    no_docker = run_repoloop(["run", "x", "--repo", str(bug_repo), "--model", "m", "--sandbox", "docker",
                              "--base-url", "http://127.0.0.1:9/v1"], env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert no_docker.returncode == 2 and "docker sandbox is unavailable" in no_docker.stderr
    assert not (bug_repo / ".repoloop" / "runs").exists()  # refused before any run started


def test_retrieval_failure_degrades_instead_of_crashing(fake_llm, bug_repo, monkeypatch):
    from repoloop.agent.config import ModelConfig, RunConfig, SandboxConfig
    from repoloop.agent.loop import Agent
    from repoloop.retrieval import retriever

    def broken(*a, **k):
        raise RuntimeError("the index cannot be read")

    monkeypatch.setattr(retriever, "open_retriever", broken)
    fake_llm.add(PLAN, call("search_code", {"query": "Sum of a and b"}), FIX, FINISH)
    cfg = RunConfig(task="Fix add", repo=bug_repo, test_cmd=QUICK_TEST_CMD,
                    model=ModelConfig("fake-model", base_url=fake_llm.base_url, api_key="k", backoff=0.01),
                    sandbox=SandboxConfig(kind="bwrap"))
    result = Agent(cfg).run()
    assert result.status == "success", result.reason
    first = fake_llm.request_text(0)
    assert "AGENTS-MARKER-7731" in first and "Repository map" not in first
    assert "calc/__init__.py:2" in tool_messages(fake_llm.requests[2])[-1]  # search fell back to grep
    notes = [r for r in map(json.loads, result.trajectory.read_text().splitlines()) if r["type"] == "observe"][0]
    assert any("retrieval unavailable (RuntimeError: the index cannot be read)" in n for n in notes["notes"])


def test_long_runs_compact_old_turns_and_keep_the_prefix_stable(fake_llm, bug_repo):
    big = "".join(f"line {i:04d} " + "x" * 40 + "\n" for i in range(400))
    reads = [call("read_file", {"path": "big.txt", "start_line": 1 + 50 * i}) for i in range(5)]
    fake_llm.add(PLAN, call("write_file", {"path": "big.txt", "content": big}), *reads, FIX,
                 call("run_command", {"command": "rm big.txt"}), FINISH)
    proc, out = run_agent_cli(fake_llm, bug_repo, "Fix add", "--context-limit", "6000")
    assert proc.returncode == 0, proc.stderr
    assert out["status"] == "success"
    assert "big.txt" not in out["diff"]
    reqs = fake_llm.requests
    compacted = [i for i, r in enumerate(reqs) if "Summary of earlier steps" in fake_llm.request_text(i)]
    assert compacted, "no request was compacted"
    # The prefix (system, task, plan exchange) is byte-identical in every executor request: cacheable.
    # (Consecutive user messages are sent joined, so the summary of a compaction follows "execute" there.)
    from repoloop.agent.prompts import EXECUTE

    prefix = reqs[1]["messages"][:3]
    assert all(r["messages"][:3] == prefix and r["messages"][3]["content"].startswith(EXECUTE) for r in reqs[1:])
    assert "Plan: change add()" in json.dumps(prefix)
    # Later requests stay near the limit instead of growing with every read.
    sizes = [len(json.dumps(r["messages"])) for r in reqs]
    assert sizes[-1] < sizes[compacted[0] - 1] + 20_000
    assert max(sizes) < 6000 * 4 * 1.5


def test_context_overflow_from_the_server_compacts_and_retries(fake_llm, bug_repo):
    big = "".join(f"row {i:04d} " + "y" * 40 + "\n" for i in range(300))
    fake_llm.add(PLAN, call("write_file", {"path": "big.txt", "content": big}),
                 call("read_file", {"path": "big.txt"}), call("read_file", {"path": "big.txt", "start_line": 2}),
                 error(400, "This model's maximum context length is 8192 tokens; your messages exceed it"),
                 FIX, call("run_command", {"command": "rm big.txt"}), FINISH)
    proc, out = run_agent_cli(fake_llm, bug_repo)
    assert proc.returncode == 0, proc.stderr
    assert out["status"] == "success"
    sizes = [len(json.dumps(r["messages"])) for r in fake_llm.requests]
    refused = 4  # the request answered with 400
    assert sizes[refused + 1] < sizes[refused] * 0.7  # resent smaller, not the same
    # system, task + plan request (sent as one user message), plan: kept whole; "execute" starts the next
    # message (a compaction's summary follows it there).
    from repoloop.agent.prompts import EXECUTE

    assert fake_llm.requests[refused + 1]["messages"][:3] == fake_llm.requests[refused]["messages"][:3]
    assert fake_llm.requests[refused + 1]["messages"][3]["content"].startswith(EXECUTE)


def test_endpoint_model_and_key_come_from_the_environment(fake_llm, bug_repo):
    fake_llm.add(PLAN)
    proc = run_repoloop(["run", "Fix add", "--repo", str(bug_repo), "--sandbox", "bwrap", "--approve-plan"],
                        input="reject\n", env={"OPENAI_BASE_URL": fake_llm.base_url, "REPOLOOP_MODEL": "env-model"})
    assert proc.returncode == 1, proc.stderr
    assert "rejected" in proc.stdout
    assert fake_llm.requests[0]["model"] == "env-model"
    assert fake_llm.headers[0]["authorization"] == f"Bearer {FAKE_KEY}"


def test_console_reporter_shows_live_progress(capsys):
    from repoloop.cli.agent_cmds import ConsoleReporter

    rep = ConsoleReporter(live=True)
    rep.event("step", {"step": 3, "max_steps": 30, "tokens": 12345, "cost": 0.0, "wall_s": 2.5, "model_s": 1.5,
                       "sandbox_s": 0.5, "tools": ["edit_file", "run_command"]})
    rep.event("verify", {"step": 3, "passed": False, "seconds": 0.4})
    err = capsys.readouterr().err
    assert "step 3/30" in err and "edit_file, run_command" in err and "12,345 tok" in err
    assert "tests fail" in err
    ConsoleReporter(live=False).event("step", {})  # quiet when not on a terminal
    assert capsys.readouterr().err == ""


def test_detected_pytest_runs_with_the_projects_own_virtualenv(fake_llm, bug_repo):
    import site
    import sys

    venv = bug_repo / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # The project's venv sees pytest through a .pth file (no network to install it here).
    sp = next(venv.glob("lib/python*/site-packages"))
    (sp / "host.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    (bug_repo / ".gitignore").write_text(".venv/\n")
    fake_llm.add(PLAN, FIX, FINISH)
    proc, out = run_agent_cli(fake_llm, bug_repo, "Fix add", test_cmd=None)
    assert proc.returncode == 0, proc.stderr
    assert out["status"] == "success" and out["reason"] == "verified"
    recs = [json.loads(x) for x in Path(out["trajectory"]).read_text().splitlines()]
    verify = [r for r in recs if r["type"] == "verify"]
    assert verify[0]["command"].startswith(f"{venv}/bin/python -m pytest")
    assert verify[0]["passed"] and "2 passed" in verify[0]["output"]


def test_finishing_again_and_again_with_failing_tests_stops(fake_llm, bug_repo):
    fake_llm.add(PLAN)
    fake_llm.default = FINISH
    proc, out = run_agent_cli(fake_llm, bug_repo, "Fix add", "--max-steps", "10")
    assert proc.returncode == 1
    assert out["status"] == "failed" and "called finish 3 times" in out["reason"]
    assert out["steps"] == 3 and out["diff"] == ""
    # Each refusal came with the failure for the model to act on.
    assert "finish refused" in fake_llm.request_text(2) and "Verification failed" in fake_llm.request_text(2)


def test_cost_budget_stops_the_run(fake_llm, bug_repo):
    fake_llm.add(PLAN)
    fake_llm.default = call("list_dir", {"path": "."})
    proc, out = run_agent_cli(fake_llm, bug_repo, "Fix add", "--max-cost", "0.0003",
                              "--prices", '{"fake-model": {"input": 1, "output": 1}}')
    assert proc.returncode == 1
    assert "cost budget" in out["reason"]
    assert out["cost"] == pytest.approx(3 * 120 / 1e6) and out["steps"] == 2


def test_sigterm_mid_run_cleans_up_and_keeps_the_verified_work(fake_llm, bug_repo):
    import os
    import signal
    import sys
    import time

    from tests.fake_llm import ROOT, Reply

    before = snapshot(bug_repo)
    fake_llm.add(PLAN, FIX, Reply(content="thinking...", delay=20))
    env = dict(os.environ, OPENAI_API_KEY=FAKE_KEY, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "repoloop.cli", "run", "Fix add", "--repo", str(bug_repo), "--base-url",
         fake_llm.base_url, "--model", "fake-model", "--sandbox", "bwrap", "--test-cmd", QUICK_TEST_CMD,
         "--lexical", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.time() + 120
    while len(fake_llm.requests) < 3 and time.time() < deadline:
        time.sleep(0.1)
    assert len(fake_llm.requests) == 3, "the run never reached its third model call"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert len(git(bug_repo, "worktree", "list").splitlines()) == 1  # the worktree is gone
    (branch,) = branches(bug_repo)
    assert "return a + b" in git(bug_repo, "show", f"{branch}:calc/__init__.py")  # verified step kept
    traj = next((bug_repo / ".repoloop" / "runs").glob("*.jsonl"))
    end = json.loads(traj.read_text().splitlines()[-1])
    assert end["type"] == "run_end" and end["reason"] == "interrupted"
    assert snapshot(bug_repo) == before
