"""Stable-prefix share of the agent's requests on scripted scenarios, and `runs stats --by model` over
runs of two scripted "models".

The real agent loop runs against the scripted chat-completions server (tests/fake_llm.py) over real
HTTP, with the real bwrap sandbox and pytest as the test command, on the calc bug. For each request
the trajectory records `prefix_share`: the share of the request (tools, then messages) that repeats
the previous request's prefix byte for byte (repoloop.agent.prefix). The figure is the median from
the second request on, per scenario and tool mode; the server side is checked too (how many requests
contain the whole previous request, unchanged, as their start).

    nice .venv/bin/python benchmarks/prompt_cache.py
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from repoloop.agent.config import ModelConfig, RetrievalConfig, RunConfig, SandboxConfig  # noqa: E402
from repoloop.agent.loop import Agent  # noqa: E402
from repoloop.agent.trajectory import read  # noqa: E402
from tests.fake_llm import TEST_CMD, FakeLLM, call, make_bug_repo, text  # noqa: E402

FIX = {"path": "calc/__init__.py", "old_str": "return a - b", "new_str": "return a + b"}
WRONG = {"path": "calc/__init__.py", "old_str": "return a - b", "new_str": "return b - a"}
REFIX = {"path": "calc/__init__.py", "old_str": "return b - a", "new_str": "return a + b"}
PLAN = text("Plan: read calc/__init__.py, make add() return a + b, run the tests.")


def act(tool: str, args: dict):
    return text(f"I'll use {tool}.\n```action\n{json.dumps({'tool': tool, **args})}\n```")


def scenarios(mode: str) -> dict[str, list]:
    do = call if mode == "native" else act
    short = [PLAN, do("edit_file", FIX), do("finish", {"summary": "add() adds"})]
    typical = [PLAN, do("list_dir", {"path": "."}), do("search_code", {"query": "add"}),
               do("read_file", {"path": "calc/__init__.py"}), do("read_file", {"path": "tests/test_calc.py"}),
               do("edit_file", WRONG), do("edit_file", REFIX), do("finish", {"summary": "add() adds"})]
    long = [PLAN, *[do("read_file", {"path": p}) for p in ("README.md", "calc/__init__.py", "tests/test_calc.py")],
            do("run_command", {"command": "python -m pytest -q -p no:cacheprovider"}),
            do("get_symbol", {"name": "add"}), do("edit_file", WRONG),
            do("finish", {"summary": "first try"}), do("edit_file", REFIX),
            do("run_command", {"command": "git diff"}), do("list_dir", {"path": "calc"}),
            do("finish", {"summary": "add() adds"})]
    return {"short (2 steps)": short, "typical (7 steps, one failed verification)": typical,
            "long (11 steps, a refused finish)": long}


def extends(prev: dict, cur: dict) -> bool:
    if prev.get("tools") != cur.get("tools"):
        return False
    a, b = prev["messages"], cur["messages"]
    if len(b) < len(a) or a[:-1] != b[:len(a) - 1]:
        return False
    last, same = a[-1], b[len(a) - 1]
    return last == same or (last["role"] == same["role"] and same["content"].startswith(last["content"]))


def run(script: list, mode: str, model: str, repo: Path) -> tuple[dict, list[dict]]:
    with FakeLLM(script) as fake:
        prices = json.dumps({model: {"input": 1.0, "output": 4.0, "cached_input": 0.1}})
        cfg = RunConfig(task="Fix add(): test_add fails", repo=repo, test_cmd=TEST_CMD,
                        model=ModelConfig(model, base_url=fake.base_url, api_key="sk-local-0000000000000",
                                          tool_mode=mode, backoff=0.01, prices=prices),
                        sandbox=SandboxConfig(kind="bwrap"), retrieval=RetrievalConfig(lexical_only=True))
        result = Agent(cfg).run()
        return {"status": result.status, "trajectory": result.trajectory}, list(fake.requests)


def main() -> int:
    rows = []
    all_shares: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("native", "text"):
            for name, script in scenarios(mode).items():
                repo = make_bug_repo(Path(tmp) / f"{mode}-{len(rows)}")
                res, reqs = run(script, mode, "fake-model", repo)
                recs = list(read(res["trajectory"]))
                shares = [r["prefix_share"] for r in recs if r["type"] == "request"][1:]
                all_shares += shares
                ext = sum(extends(reqs[i - 1], reqs[i]) for i in range(1, len(reqs)))
                rows.append(f"| {mode} | {name} | {res['status']} | {len(reqs)} | {statistics.median(shares):.1%} | "
                            f"{min(shares):.1%} | {ext} of {len(reqs) - 1} |")
        print("| tool mode | scenario | status | requests | median prefix share (2nd request on) | min | "
              "requests that start with the whole previous one |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(rows))
        print(f"\nall scenarios: median {statistics.median(all_shares):.1%} over {len(all_shares)} requests "
              f"(min {min(all_shares):.1%})\n")
        # Two scripted "models" into one repository, then `runs stats --by model`.
        repo = make_bug_repo(Path(tmp) / "stats")
        for model, mode, names in (("model-a", "native", ["short (2 steps)", "typical (7 steps, one failed "
                                                          "verification)", "long (11 steps, a refused finish)"]),
                                   ("model-b", "text", ["typical (7 steps, one failed verification)",
                                                        "long (11 steps, a refused finish)"])):
            for n in names:
                run(scenarios(mode)[n], mode, model, repo)
        run([PLAN] + [call("read_file", {"path": "nope.py"})] * 3, "native", "model-b", repo)  # a failure
        cmd = [sys.executable, "-m", "repoloop.cli", "runs", "stats", "--by", "model", "--repo", str(repo)]
        print("$ repoloop runs stats --by model")
        print(subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
