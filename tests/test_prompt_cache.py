"""Issue 21: cache-friendly prompts and loop-to-success per model.

Each request should be a byte-identical extension of the previous one (stable system prompt, tool
schemas and repository context first, history only appended), so that a provider's prompt cache
covers almost all of it; the trajectory records per request the share that repeats the previous
request's prefix, and the server's `cached_tokens`. `repoloop runs stats --by model` turns runs into
the per-model figures users compare providers by.

Scripted server over real HTTP (tests/fake_llm.py), `repoloop` as a subprocess, bwrap sandbox.
"""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path

import pytest

from tests.fake_llm import QUICK_TEST_CMD, Reply, call, make_bug_repo, run_repoloop, text

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

PLAN = text("Plan: read calc/__init__.py, make add() return a + b, run the tests.")
FIX = {"path": "calc/__init__.py", "old_str": "return a - b", "new_str": "return a + b"}
WRONG = {"path": "calc/__init__.py", "old_str": "return a - b", "new_str": "return b - a"}
REFIX = {"path": "calc/__init__.py", "old_str": "return b - a", "new_str": "return a + b"}


def act(tool: str, args: dict, **kw) -> Reply:
    return text(f"```action\n{json.dumps({'tool': tool, **args})}\n```", **kw)


def scenario(mode: str) -> list[Reply]:
    """A realistic short session: look around, read, a wrong edit (the tests fail and the failure comes
    back), the right edit, finish."""
    do = call if mode == "native" else act
    return [PLAN, do("list_dir", {"path": "."}), do("search_code", {"query": "add"}),
            do("read_file", {"path": "calc/__init__.py"}), do("read_file", {"path": "tests/test_calc.py"}),
            do("edit_file", WRONG), do("edit_file", REFIX), do("finish", {"summary": "add() now adds"})]


def run_cli(fake, repo: Path, *extra: str, model: str = "fake-model") -> dict:
    proc = run_repoloop(["run", "Fix add(): test_add fails", "--repo", str(repo), "--base-url", fake.base_url,
                         "--model", model, "--sandbox", "bwrap", "--lexical", "--test-cmd", QUICK_TEST_CMD,
                         "--json", *extra], input="")
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def records(out: dict) -> list[dict]:
    return [json.loads(line) for line in Path(out["trajectory"]).read_text().splitlines()]


def extends(prev: dict, cur: dict) -> bool:
    """Whether request `cur` starts with all of request `prev`, as sent: the same tools and the same
    messages, unchanged, with only new ones after them (the last one may have gained text at its end:
    consecutive user messages are sent joined)."""
    if prev.get("tools") != cur.get("tools"):
        return False
    a, b = prev["messages"], cur["messages"]
    if len(b) < len(a) or a[:-1] != b[:len(a) - 1]:
        return False
    last, same = a[-1], b[len(a) - 1]
    return last == same or (last.keys() == same.keys() and last["role"] == same["role"]
                            and same["content"].startswith(last["content"]))


@pytest.mark.parametrize("mode", ["native", "text"])
def test_each_request_extends_the_previous_one_byte_for_byte(fake_llm, tmp_path, mode):
    fake_llm.add(*scenario(mode))
    out = run_cli(fake_llm, make_bug_repo(tmp_path / "repo"), "--tool-mode", mode)
    assert out["status"] == "success", out["reason"]
    reqs = fake_llm.requests
    assert len(reqs) == 8
    # What the server received: every request from the second on extends the one before.
    assert [extends(reqs[i - 1], reqs[i]) for i in range(1, len(reqs))] == [True] * 7
    # The plan request already carries the tool schemas (native), so they are cached from the start.
    if mode == "native":
        assert reqs[0]["tools"] == reqs[1]["tools"] and reqs[0]["tool_choice"] == "none"
    # What the trajectory records: the share of each request that repeats the previous one's prefix.
    shares = [r["prefix_share"] for r in records(out) if r["type"] == "request"]
    assert len(shares) == 8 and shares[0] == 0
    assert statistics.median(shares[1:]) >= 0.9, shares
    assert min(shares[1:]) >= 0.75, shares  # even the request after the failed verification's long output


def test_compaction_happens_only_when_the_window_is_full_and_then_once(fake_llm, tmp_path):
    big = "".join(f"line {i:04d} " + "x" * 40 + "\n" for i in range(400))
    reads = [call("read_file", {"path": "big.txt", "start_line": 1 + 40 * i, "end_line": 40 + 40 * i})
             for i in range(9)]
    fake_llm.add(PLAN, call("write_file", {"path": "big.txt", "content": big}), *reads, call("edit_file", FIX),
                 call("run_command", {"command": "rm big.txt"}), call("finish", {"summary": "done"}))
    out = run_cli(fake_llm, make_bug_repo(tmp_path / "repo"), "--context-limit", "9000", "--tool-mode", "native")
    assert out["status"] == "success", out["reason"]
    recs = records(out)
    compactions = [r for r in recs if r["type"] == "compaction"]
    assert len(compactions) == 1, [c["summary"][:80] for c in compactions]
    reqs = fake_llm.requests
    broken = [i for i in range(1, len(reqs)) if not extends(reqs[i - 1], reqs[i])]
    assert len(broken) == 1  # the one compaction; every other request extends the previous
    shares = [r["prefix_share"] for r in recs if r["type"] == "request"]
    assert shares[broken[0]] < 0.5 and all(s > 0.6 for i, s in enumerate(shares[1:], 1) if i != broken[0]), shares


def test_cached_tokens_reported_by_the_server_are_recorded(fake_llm, tmp_path):
    fake_llm.add(PLAN, call("edit_file", FIX, cached_tokens=64), call("finish", {"summary": "x"}, cached_tokens=96))
    out = run_cli(fake_llm, make_bug_repo(tmp_path / "repo"), "--prices",
                  '{"fake-model": {"input": 1000, "output": 2000, "cached_input": 100}}')
    assert out["status"] == "success" and out["cached_tokens"] == 160
    replies = [r for r in records(out) if r["type"] == "reply"]
    assert [r["usage"]["cached"] for r in replies] == [0, 64, 96]
    # Cached prompt tokens are priced as such: 3 x (100 prompt, 20 completion), 160 of the prompt cached.
    assert out["cost"] == pytest.approx(((300 - 160) * 1000 + 160 * 100 + 60 * 2000) / 1e6)


def test_runs_stats_by_model_over_two_scripted_models(fake_llm, tmp_path):
    repo = make_bug_repo(tmp_path / "repo")
    prices = '{"model-a": {"input": 1000, "output": 2000}, "model-b": {"input": 1000, "output": 2000}}'
    # model-a: two successes (2 and 6 steps) and one failure, native; model-b: one success in 4 steps, text.
    fake_llm.add(PLAN, call("edit_file", FIX), call("finish", {"summary": "x"}, cached_tokens=50))
    a1 = run_cli(fake_llm, repo, "--prices", prices, model="model-a")
    fake_llm.add(PLAN, call("list_dir", {"path": "."}), call("edit_file", WRONG), call("edit_file", REFIX),
                 call("list_dir", {"path": "calc"}), call("read_file", {"path": "calc/__init__.py"}),
                 call("finish", {"summary": "x"}))
    a2 = run_cli(fake_llm, repo, "--prices", prices, model="model-a")
    fake_llm.add(PLAN, call("read_file", {"path": "nope.py"}), call("read_file", {"path": "nope.py"}),
                 call("read_file", {"path": "nope.py"}))
    a3 = run_cli(fake_llm, repo, "--prices", prices, model="model-a")
    fake_llm.add(PLAN, act("list_dir", {"path": "."}), act("read_file", {"path": "calc/__init__.py"}),
                 act("edit_file", FIX), act("finish", {"summary": "x"}))
    b1 = run_cli(fake_llm, repo, "--prices", prices, "--tool-mode", "text", model="model-b")
    assert [a1["status"], a2["status"], a3["status"], b1["status"]] == ["success", "success", "failed", "success"]
    proc = run_repoloop(["runs", "stats", "--by", "model", "--repo", str(repo), "--json"])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["by"] == "model" and set(data["groups"]) == {"model-a", "model-b"}
    a, b = data["groups"]["model-a"], data["groups"]["model-b"]
    assert (a["runs"], a["successes"], a["success_rate"]) == (3, 2, 0.667)
    assert a["statuses"] == {"failed": 1, "success": 2}
    assert a["steps"]["median"] == 4  # (2 + 6) / 2 per successful run; the failure is not in it
    assert a["model_calls"]["median"] == 5  # plan + steps: (3 + 7) / 2
    assert a["prompt_tokens"]["median"] == 500 and a["completion_tokens"]["median"] == 100
    assert a["cached_tokens"]["median"] == 25 and a["cached_tokens"]["max"] == 50
    assert a["cost"]["median"] == pytest.approx(5 * (100 * 1000 + 20 * 2000) / 1e6, rel=1e-3)
    assert a["wall_s"]["median"] == pytest.approx(statistics.median([a1["wall_s"], a2["wall_s"]]), abs=0.01)
    assert (b["runs"], b["successes"], b["success_rate"], b["steps"]["median"], b["model_calls"]["median"]) == \
        (1, 1, 1.0, 4, 5)
    assert a["prefix_share"] >= 0.9 and b["prefix_share"] >= 0.9
    # By tool mode: the text-mode run apart from the native ones.
    modes = json.loads(run_repoloop(["runs", "stats", "--by", "tool-mode", "--repo", str(repo), "--json"]).stdout)
    assert {k: v["runs"] for k, v in modes["groups"].items()} == {"native": 3, "text": 1}
    # The table people read.
    table = run_repoloop(["runs", "stats", "--by", "model", "--repo", str(repo)]).stdout
    head, row_a, row_b = table.splitlines()[:3]
    assert head.split()[:4] == ["model", "runs", "ok", "rate"] and "cached" in head and "calls" in head
    assert row_a.split()[:7] == ["model-a", "3", "2", "67%", "4.0", "5.0", "500"]
    assert row_b.split()[:4] == ["model-b", "1", "1", "100%"]
