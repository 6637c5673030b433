"""How much time repoloop itself adds to each agent step (retrieval, git, tools, bookkeeping).

A synthetic Python repository (default 2,000 files) is indexed (lexical), then the real agent loop
runs a scripted session against the fake OpenAI-compatible server (tests/fake_llm.py) over real
HTTP, with commands and tests in the real bwrap sandbox. Every step's wall time is split into model
(HTTP round trip to the fake server), sandbox (commands and verification) and repoloop's own share
(the rest); the figures come from the run's trajectory. The same session on a 20-file repository is
the baseline measured in the same run, and a bare `openai` client round trip is the model floor.

    nice .venv/bin/python benchmarks/agent_overhead.py [--files 2000] [--rounds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from repoloop.agent.config import BudgetConfig, ModelConfig, RetrievalConfig, RunConfig, SandboxConfig  # noqa: E402
from repoloop.agent.llm import LLMClient, LLMConfig  # noqa: E402
from repoloop.agent.loop import Agent  # noqa: E402
from repoloop.agent.trajectory import read  # noqa: E402
from tests.fake_llm import FakeLLM, call, text  # noqa: E402

MODULE = '''"""Module {p}.{m}: configuration helpers number {n}."""
from pkg{q:03d}.mod_{r:04d} import helper_{r}


class Handler{n}:
    """Handles requests of kind {n}."""

    def __init__(self, limit: int = {n}) -> None:
        self.limit = limit

    def process(self, value: int) -> int:
        if value > self.limit:
            return helper_{r}(value - self.limit)
        return value * {m}

    def parse_config_value(self, raw: str) -> int:
        return int(raw.strip() or 0) + {n}


def helper_{n}(x: int) -> int:
    """Scale x for module {n}."""
    return x * 2 + {m}


def compute_total_{n}(items: list[int]) -> int:
    total = 0
    for item in items:
        total += helper_{n}(item)
    return total
'''


def make_repo(root: Path, files: int) -> Path:
    root.mkdir(parents=True)
    per_pkg = 50
    for n in range(files):
        p, m = divmod(n, per_pkg)
        r = (n * 7 + 3) % files
        q = r // per_pkg
        d = root / f"pkg{p:03d}"
        d.mkdir(exist_ok=True)
        (d / "__init__.py").touch()
        (d / f"mod_{n:04d}.py").write_text(MODULE.format(p=p, m=m, n=n, q=q, r=r))
    (root / "README.md").write_text("synthetic repository for benchmarks/agent_overhead.py\n")
    (root / "AGENTS.md").write_text("Keep helpers pure.\n")
    g = ["git", "-c", "user.name=b", "-c", "user.email=b@b", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*g, "add", "-A"], cwd=root, check=True)
    subprocess.run([*g, "commit", "-qm", "init"], cwd=root, check=True)
    return root


def script(files: int, rounds: int) -> list:
    """A session touching every tool; one failed verification that triggers a retrieval query."""
    steps = [text("Plan: read the handlers, adjust helper scaling, run tests.")]
    for k in range(rounds):
        n = (k * 617 + 11) % files
        p = n // 50
        path = f"pkg{p:03d}/mod_{n:04d}.py"
        steps += [
            call("search_code", {"query": f"parse config value handler {n}", "k": 8}),
            call("get_symbol", {"name": f"Handler{n}.process"}),
            call("read_file", {"path": path}),
            call("list_dir", {"path": f"pkg{p:03d}"}),
            call("edit_file", {"path": path, "old_str": f"return x * 2 + {n % 50}",
                               "new_str": f"return x * 3 + {n % 50}"}),
            call("run_command", {"command": "ls | wc -l"}),
        ]
    steps.append(call("write_file", {"path": "ok.marker", "content": "verified\n"}))
    steps.append(call("finish", {"summary": "scaled helpers"}))
    return steps


def model_floor(n: int = 20) -> float:
    """Median seconds of a bare client round trip to the fake server (no repoloop around it)."""
    with FakeLLM([text("x") for _ in range(n)]) as fake:
        return _floor(fake, n)


def _floor(fake: FakeLLM, n: int) -> float:
    c = LLMClient(LLMConfig(model="fake-model", base_url=fake.base_url, api_key="x"))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        c.chat([{"role": "user", "content": "hi"}])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def one_run(repo: Path, files: int, rounds: int) -> tuple[str, list[dict], dict[int, str], float, float]:
    """One scripted session; returns status, step records, first tool per step, startup and run time."""
    with FakeLLM(script(files, rounds)) as fake:
        # The test fails until ok.marker exists: the first edits' verifications fail (retrieval on the
        # failure output), the last one passes.
        cfg = RunConfig(task="Scale helper outputs by 3 instead of 2 where configured.", repo=repo,
                        model=ModelConfig("fake-model", base_url=fake.base_url, api_key="x"),
                        sandbox=SandboxConfig(kind="bwrap"),
                        test_cmd="test -f ok.marker || { echo 'FAILED tests/test_cfg.py::test_marker - "
                                 "AssertionError: ok.marker missing in parse_config_value'; exit 1; }",
                        retrieval=RetrievalConfig(lexical_only=True), budget=BudgetConfig(max_steps=100, repeat_limit=99))
        t1 = time.perf_counter()
        result = Agent(cfg).run()
        run_s = time.perf_counter() - t1
    recs = list(read(result.trajectory))
    tools: dict[int, str] = {}
    for r in recs:
        if r["type"] == "tool":
            tools.setdefault(r["step"], r["name"])
    start = next(r for r in recs if r["type"] == "request")  # time to the first model request
    return result.status, [r for r in recs if r["type"] == "step"], tools, start["t"], run_s


def session(repo: Path, files: int, rounds: int, repeat: int) -> dict:
    from repoloop.indexer.pipeline import index_repo

    t0 = time.perf_counter()
    index_repo(repo, embed=False, progress=False)
    index_s = time.perf_counter() - t0
    floor = model_floor()
    steps: list[dict] = []
    by_tool: dict[str, list[float]] = {}
    statuses, startups, runs = [], [], []
    load = []
    for _ in range(repeat):
        status, st, tools, startup, run_s = one_run(repo, files, rounds)
        statuses.append(status)
        startups.append(startup)
        runs.append(run_s)
        load.append(os.getloadavg()[0])
        steps += st
        for s in st:
            by_tool.setdefault(tools.get(s["step"], "?"), []).append(s["repoloop_s"])
    own = [s["repoloop_s"] for s in steps]
    q = statistics.quantiles(own, n=10)

    def ms(v: float) -> float:
        return round(v * 1000, 1)

    return {
        "files": files, "runs": repeat, "statuses": statuses, "steps": len(steps),
        "loadavg_1m": [round(x, 1) for x in load], "index_s": round(index_s, 2),
        "run_s_median": round(statistics.median(runs), 2), "startup_s_median": round(statistics.median(startups), 3),
        "own_median_ms": ms(statistics.median(own)), "own_p90_ms": ms(q[-1]), "own_max_ms": ms(max(own)),
        "model_median_ms": ms(statistics.median(s["model_s"] for s in steps)),
        "floor_ms": ms(floor),
        "own_by_tool_median_ms": {k: ms(statistics.median(v)) for k, v in sorted(by_tool.items())},
        "own_by_tool_max_ms": {k: ms(max(v)) for k, v in sorted(by_tool.items())},
        "git_median_ms_edit_steps": ms(statistics.median([s.get("git_s", 0) for s in steps if s.get("git_s")] or [0])),
        "retrieval_median_ms_search_steps": ms(statistics.median(
            [s.get("retrieval_s", 0) for s in steps if s.get("retrieval_s")] or [0])),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--baseline-files", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3, help="edit rounds per session (6 tool steps each)")
    ap.add_argument("--repeat", type=int, default=3, help="sessions per repository size")
    ap.add_argument("--out", default=None, help="write the JSON results here")
    args = ap.parse_args()
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    results = []
    with tempfile.TemporaryDirectory(prefix="agent-overhead-") as tmp:
        for files in (args.baseline_files, args.files):
            repo = make_repo(Path(tmp) / f"repo{files}", files)
            res = session(repo, files, args.rounds, args.repeat)
            results.append(res)
            print(json.dumps(res), flush=True)
    base, big = results
    ratio = big["own_median_ms"] / base["own_median_ms"] if base["own_median_ms"] else float("nan")
    print(f"own share per step: {big['files']} files median {big['own_median_ms']} ms "
          f"(p90 {big['own_p90_ms']}, max {big['own_max_ms']}); {base['files']} files median "
          f"{base['own_median_ms']} ms; ratio {ratio:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"results": results, "ratio_median": ratio}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
