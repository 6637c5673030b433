"""Past runs from their trajectories: a list, a readable replay of one, and loop-to-success figures.

Loop-to-success (`stats`): per model (or tool mode), how many runs succeeded and, per successful run,
the median steps, model calls, prompt/completion/cached tokens, cost and wall time - what it takes a
given provider to get a task done, the figure users compare providers by. Runs still going (or
killed) count as runs but not in the success rate.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repoloop.agent.trajectory import find, read, runs_dir


@dataclass(slots=True)
class RunSummary:
    id: str
    task: str
    model: str
    status: str  # success | failed | rejected | error | running (no run_end: in progress or killed)
    steps: int
    tokens: int
    cost: float
    cost_known: bool
    wall_s: float
    branch: str | None
    started: float
    path: Path
    model_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    tool_mode: str = "native"
    prefix_share: float | None = None  # median over its requests from the second on (repoloop.agent.prefix)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "task": self.task, "model": self.model, "status": self.status, "steps": self.steps,
                "tokens": self.tokens, "cost": self.cost, "cost_known": self.cost_known, "wall_s": self.wall_s,
                "branch": self.branch, "started": self.started, "trajectory": str(self.path),
                "model_calls": self.model_calls, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cached_tokens": self.cached_tokens,
                "tool_mode": self.tool_mode, "prefix_share": self.prefix_share}


def summarize(path: Path) -> RunSummary:
    start: dict = {}
    end: dict = {}
    steps = replies = 0
    shares: list[float] = []
    mode = None
    for rec in read(path):
        t = rec.get("type")
        if t == "run_start":
            start = rec
        elif t == "run_end":
            end = rec
        elif t == "step":
            steps = max(steps, _int(rec.get("step")))
        elif t == "reply":
            replies += 1
        elif t == "request":
            if isinstance(rec.get("prefix_share"), (int, float)) and not isinstance(rec["prefix_share"], bool):
                shares.append(float(rec["prefix_share"]))
        elif t == "tool_mode":
            mode = rec.get("mode")
    tok = end.get("tokens") if isinstance(end.get("tokens"), dict) else {}
    mode = end.get("tool_mode") or mode or start.get("tool_mode") or "native"
    if mode == "auto":
        mode = "native"  # a run that never switched stayed native
    return RunSummary(id=start.get("id", path.stem), task=start.get("task", ""), model=start.get("model", "?"),
                      status=end.get("status", "running"), steps=_int(end.get("steps", steps)),
                      tokens=_int(tok.get("total")), cost=float(end.get("cost") or 0.0),
                      cost_known=bool(end.get("cost_known", False)), wall_s=float(end.get("wall_s") or 0.0),
                      branch=end.get("branch"), started=float(start.get("started") or 0.0), path=path,
                      model_calls=_int(end.get("model_calls", replies)), prompt_tokens=_int(tok.get("prompt")),
                      completion_tokens=_int(tok.get("completion")), cached_tokens=_int(tok.get("cached")),
                      tool_mode=str(mode),
                      prefix_share=round(statistics.median(shares[1:]), 4) if len(shares) > 1 else None)


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def list_runs(state_dir: Path) -> list[RunSummary]:
    d = runs_dir(state_dir)
    if not d.is_dir():
        return []
    runs = [summarize(p) for p in d.glob("*.jsonl")]
    return sorted(runs, key=lambda r: (r.started, r.id))


STAT_KEYS = ("steps", "model_calls", "prompt_tokens", "completion_tokens", "cached_tokens", "tokens", "cost",
             "wall_s")
GROUP_BY = {"model": lambda r: r.model, "tool-mode": lambda r: r.tool_mode}


def stats(state_dir: Path, by: str = "model") -> dict[str, Any]:
    """Per model (or `by="tool-mode"`): runs, success rate, and per successful run the median, mean and
    max of steps, model calls, prompt/completion/cached tokens, cost and wall time; and the median
    stable-prefix share of the group's runs (all of them: a cache is paid for whether the run succeeds)."""
    key = GROUP_BY[by]
    groups: dict[str, list[RunSummary]] = {}
    for r in list_runs(state_dir):
        groups.setdefault(key(r), []).append(r)
    out: dict[str, Any] = {}
    for name, runs in sorted(groups.items()):
        ok = [r for r in runs if r.status == "success"]
        finished = [r for r in runs if r.status in ("success", "failed", "error")]
        entry: dict[str, Any] = {"runs": len(runs), "successes": len(ok),
                                 "success_rate": round(len(ok) / len(finished), 3) if finished else None,
                                 "statuses": dict(sorted(_count(r.status for r in runs).items()))}
        for k in STAT_KEYS:
            vals = [float(getattr(r, k)) for r in ok]
            entry[k] = ({"median": round(statistics.median(vals), 4), "mean": round(statistics.fmean(vals), 4),
                         "max": round(max(vals), 4)} if vals else None)
        entry["cost_known"] = all(r.cost_known for r in ok) if ok else None
        shares = [r.prefix_share for r in runs if r.prefix_share is not None]
        entry["prefix_share"] = round(statistics.median(shares), 4) if shares else None
        out[name] = entry
    result: dict[str, Any] = {"by": by, "groups": out}
    if by == "model":
        result["models"] = out  # the name this had before --by
    return result


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for x in items:
        counts[x] = counts.get(x, 0) + 1
    return counts


def replay(state_dir: Path, run_id: str, *, full: bool = False) -> str:
    """A readable account of one run, from its trajectory."""
    path = find(state_dir, run_id)
    lines: list[str] = []
    clip = (lambda s, n: s) if full else _clip  # noqa: E731
    for rec in read(path):
        t, at = rec.get("type"), f"[{rec.get('t', 0):7.2f}s]"
        if t == "run_start":
            lines.append(f"{at} run {rec.get('id')}  model {rec.get('model')}  repo {rec.get('repo')}")
            lines.append(f"          task: {rec.get('task')}")
        elif t == "observe":
            items = rec.get("context_items") or []
            what = "after a failure" if rec.get("after") else "for the task"
            lines.append(f"{at} observe {what}: {len(items)} context items"
                         + (f"; query: {clip(rec.get('query') or '', 120)}" if rec.get("after") else ""))
            for n in rec.get("notes") or []:
                lines.append(f"          note: {n}")
        elif t == "plan":
            lines.append(f"{at} plan ({rec.get('decision')}):")
            lines += ["          " + ln for ln in clip(rec.get("edited") or rec.get("text") or "", 1200).splitlines()]
        elif t == "reply":
            u = rec.get("usage") or {}
            head = (f"{at} model [{rec.get('phase')}] step {rec.get('step')}: {u.get('prompt', 0)}+"
                    f"{u.get('completion', 0)} tokens, {rec.get('model_s', 0):.2f}s")
            if rec.get("attempts", 1) > 1:
                head += f", {rec['attempts']} attempts ({'; '.join(rec.get('errors') or [])})"
            lines.append(head)
            if rec.get("content") and rec.get("phase") != "plan":
                lines.append("          says: " + clip(rec["content"], 400).replace("\n", "\n                "))
        elif t == "model_error":
            lines.append(f"{at} model [{rec.get('phase')}] step {rec.get('step')} FAILED after {rec.get('attempts')} "
                         f"attempt(s), {rec.get('model_s') or 0:.2f}s: {clip(str(rec.get('error') or ''), 400)}"
                         + (f"; {rec['recovered']}" if rec.get("recovered") else ""))
        elif t == "tool_mode":
            lines.append(f"{at} tool mode: {rec.get('mode')} ({rec.get('reason')})")
        elif t == "parse" and rec.get("outcome") not in ("native", "action", "bash"):
            lines.append(f"{at} reply read as {rec.get('outcome')}: {rec.get('detail')}")
        elif t == "error":
            lines.append(f"{at} internal error: {clip(str(rec.get('error') or ''), 400)}")
        elif t == "tool":
            mark = "ok" if rec.get("ok") else "ERROR"
            lines.append(f"{at} tool {rec.get('name')}({clip(rec.get('arguments') or '', 160)}) -> {mark}")
            lines.append("          " + clip(rec.get("output") or "", 600).replace("\n", "\n          "))
        elif t == "verify":
            lines.append(f"{at} verify `{rec.get('command')}`: {'PASSED' if rec.get('passed') else 'FAILED'} "
                         f"(exit {rec.get('exit_code')}, {rec.get('seconds', 0):.2f}s)")
            if not rec.get("passed"):
                lines.append("          " + clip(rec.get("output") or "", 800).replace("\n", "\n          "))
        elif t == "commit":
            lines.append(f"{at} commit {str(rec.get('sha') or '')[:10]} {rec.get('message')}")
        elif t == "step":
            lines.append(f"{at} step {rec.get('step')} took {rec.get('wall_s', 0):.2f}s: model {rec.get('model_s', 0):.2f}s,"
                         f" sandbox {rec.get('sandbox_s', 0):.2f}s, repoloop {rec.get('repoloop_s', 0):.3f}s"
                         f" (git {rec.get('git_s', 0):.3f}s, retrieval {rec.get('retrieval_s', 0):.3f}s)")
        elif t == "request" and full:
            lines.append(f"{at} request [{rec.get('phase')}] step {rec.get('step')}: {rec.get('n_messages')} messages,"
                         f" ~{rec.get('est_tokens')} tokens; new:")
            for m in rec.get("messages") or []:
                lines.append(f"          {m.get('role')}: " + str(m.get("content") or "").replace("\n", "\n            "))
        elif t == "note":
            lines.append(f"{at} note: {rec.get('text')}")
        elif t == "compaction":
            lines.append(f"{at} context compacted ({rec.get('messages')} messages kept)")
        elif t == "run_end":
            tok = rec.get("tokens") or {}
            cost = f"${rec.get('cost', 0):.4f}" if rec.get("cost_known") else "cost unknown"
            lines.append(f"{at} end: {str(rec.get('status')).upper()} ({rec.get('reason')}); {rec.get('steps')} steps, "
                         f"{tok.get('total', 0)} tokens, {cost}, {rec.get('wall_s', 0):.2f}s; branch {rec.get('branch')}")
            if rec.get("diff"):
                lines.append(clip(rec["diff"], 4000))
    return "\n".join(lines)


def _clip(s: str, n: int) -> str:
    s = s if isinstance(s, str) else json.dumps(s)
    return s if len(s) <= n else s[:n] + f" [... {len(s) - n} more chars]"
