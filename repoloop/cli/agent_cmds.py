"""`repoloop run TASK` (the agent) and `repoloop runs [show ID | stats]` (its past runs)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from repoloop.cli.common import add_repo_args, console, index_dir, print_json, repo_root, styled
from repoloop.errors import RepoloopError

if TYPE_CHECKING:
    from repoloop.agent.config import RunConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the coding agent on a task (works on a git worktree)")
    p.add_argument("task", help="what to do, in words (or @FILE to read it from a file)")
    add_repo_args(p)
    p.add_argument("--model", default=None, help="model name (env REPOLOOP_MODEL)")
    p.add_argument("--plan-model", default=None, help="model that writes the plan (default: --model)")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint (env OPENAI_BASE_URL)")
    p.add_argument("--sandbox", default=None, choices=("bwrap", "docker", "local"),
                   help="where commands run (default: docker if an engine answers, else bwrap)")
    p.add_argument("--image", default=None, help="docker sandbox: the image to run commands in")
    p.add_argument("--test-cmd", default=None, help="command that verifies the work (default: detected)")
    p.add_argument("--max-steps", type=int, default=30)
    p.add_argument("--max-tokens", type=int, default=None, help="token budget for the run (prompt+completion)")
    p.add_argument("--max-cost", type=float, default=None, help="cost budget in USD")
    p.add_argument("--approve-plan", action="store_true", help="show the plan and wait for approve/reject/edit")
    p.add_argument("--apply", action="store_true", help="apply the verified diff to your working tree")
    p.add_argument("--context-limit", type=int, default=128_000, help="the model's context window, tokens")
    p.add_argument("--budget", type=int, default=6_000, help="tokens of retrieved code given with the task")
    p.add_argument("--lexical", action="store_true", help="lexical retrieval only (no embedding model)")
    p.add_argument("--no-rerank", dest="rerank", action="store_false",
                   help="on an index without embeddings, do not re-order retrieved files by embedding "
                        "similarity (which embeds the top candidates' chunks once, at query time)")
    p.add_argument("--stream", action="store_true", help="stream model replies")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds per model request, as a whole: a reply not complete by then is abandoned "
                        "(and retried like other timeouts)")
    p.add_argument("--retries", type=int, default=4, help="retries on 429/5xx/timeouts")
    p.add_argument("--backoff", type=float, default=float(os.environ.get("REPOLOOP_LLM_BACKOFF", "1.0")),
                   help="seconds before the first retry (doubles each time)")
    p.add_argument("--prices", default=None, help="price table JSON (or a path): {model: {input, output}} per 1M")
    p.add_argument("--tool-mode", default="auto", choices=("native", "text", "auto"),
                   help="how the model calls tools: native function calls, text (one fenced action block per "
                        "reply, for models or servers without function calling) or auto (native, falling back to "
                        "text when the server refuses tools or the model keeps answering in prose)")
    p.add_argument("--max-output-tokens", type=int, default=None,
                   help="limit each reply to this many tokens (sent as max_tokens; a local model can otherwise "
                        "write until its context is full)")
    p.set_defaults(func=_run)

    r = sub.add_parser("runs", help="past agent runs: list, `runs show ID`, `runs stats`")
    r.add_argument("what", nargs="*", metavar="show ID | stats",
                   help="nothing: list runs; `show ID`: replay one; `stats`: figures per model")
    r.add_argument("--full", action="store_true", help="show: do not shorten long outputs")
    r.add_argument("--by", default="model", choices=("model", "tool-mode"),
                   help="stats: group runs by model (default) or by tool mode")
    add_repo_args(r)
    r.set_defaults(func=_runs)


def _validate(args: argparse.Namespace) -> None:
    if args.max_steps < 1:
        raise RepoloopError("--max-steps must be at least 1")
    for name in ("max_tokens", "max_cost"):
        v = getattr(args, name)
        if v is not None and v <= 0:
            raise RepoloopError(f"--{name.replace('_', '-')} must be positive")
    if args.context_limit < 4_000:
        raise RepoloopError("--context-limit must be at least 4000 tokens")
    if args.timeout <= 0 or args.retries < 0 or args.backoff < 0:
        raise RepoloopError("--timeout must be positive; --retries and --backoff must not be negative")
    if args.max_output_tokens is not None and args.max_output_tokens < 16:
        raise RepoloopError("--max-output-tokens must be at least 16")


def _task(text: str) -> str:
    if text.startswith("@"):
        try:
            text = open(text[1:], encoding="utf-8").read()
        except OSError as e:
            raise RepoloopError(f"cannot read the task from {text[1:]}: {e.strerror}") from None
    if not text.strip():
        raise RepoloopError("the task is empty")
    return text


def _run(args: argparse.Namespace) -> int:
    from repoloop.agent.loop import Agent

    _validate(args)
    cfg = run_config(args, os.environ)
    redact = _redactor(cfg.model.api_key)
    reporter = ConsoleReporter(live=sys.stderr.isatty() and not args.json, redact=redact)
    _interrupt_on_sigterm()  # so a killed run still removes its worktree and records its end
    result = Agent(cfg, reporter=reporter).run()
    if args.json:
        print_json(redact.deep(result.to_json()))
    else:
        _print_result(result, redact)
    return result.exit_code


def run_config(args: argparse.Namespace, env: Mapping[str, str]) -> RunConfig:
    """The run's configuration from the flags and, where a flag is not given, the user's environment
    (REPOLOOP_MODEL, OPENAI_BASE_URL, OPENAI_API_KEY, REPOLOOP_PRICES, REPOLOOP_SANDBOX_IMAGE, and
    retrieval's REPOLOOP_DENSE_STORE and REPOLOOP_TOKENIZER): read here, once, and passed down."""
    from repoloop.agent.config import BudgetConfig, ModelConfig, RetrievalConfig, RunConfig, SandboxConfig
    from repoloop.retrieval.api import RetrievalOptions

    model = args.model or env.get("REPOLOOP_MODEL")
    if not model:
        raise RepoloopError("no model: pass --model or set REPOLOOP_MODEL")
    base_url = args.base_url or env.get("OPENAI_BASE_URL")
    api_key = env.get("OPENAI_API_KEY")
    if not base_url and not api_key:
        raise RepoloopError("no endpoint: set OPENAI_API_KEY (OpenAI) or pass --base-url (a local server)")
    return RunConfig(
        task=_task(args.task), repo=repo_root(args.repo), test_cmd=args.test_cmd, approve_plan=args.approve_plan,
        apply=args.apply,
        model=ModelConfig(name=model, plan_model=args.plan_model, base_url=base_url, api_key=api_key,
                          stream=args.stream, timeout=args.timeout, retries=args.retries, backoff=args.backoff,
                          prices=args.prices or env.get("REPOLOOP_PRICES"), tool_mode=args.tool_mode,
                          max_output_tokens=args.max_output_tokens, context_limit=args.context_limit),
        retrieval=RetrievalConfig(index_dir=index_dir(args), lexical_only=args.lexical, rerank=args.rerank,
                                  options=RetrievalOptions.from_env(env), context_budget=args.budget),
        sandbox=SandboxConfig(kind=args.sandbox, image=args.image or env.get("REPOLOOP_SANDBOX_IMAGE")),
        budget=BudgetConfig(max_steps=args.max_steps, max_tokens=args.max_tokens, max_cost=args.max_cost),
    )


def _redactor(api_key: str | None = None) -> Any:
    """The one redaction function for what a run prints (the trajectory uses the same one)."""
    from repoloop.agent.trajectory import Redactor

    return Redactor.from_env([api_key] if api_key else [])


def _interrupt_on_sigterm() -> None:
    import signal

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _print_result(result: Any, redact: Any) -> None:
    from rich.syntax import Syntax

    out = console()
    style = {"success": "bold green", "rejected": "yellow"}.get(result.status, "bold red")
    out.print(styled((result.status, style), f": {redact(result.reason)}"))
    if result.summary:
        out.print(redact(result.summary))
    cost = f"${result.cost:.4f}" if result.cost_known else "cost unknown (no price for this model)"
    out.print(f"{result.steps} steps, {result.usage.total} tokens ({result.usage.prompt} prompt, "
              f"{result.usage.completion} completion), {cost}, {result.wall_s:.1f}s")
    if result.branch:
        out.print(f"branch: {result.branch}")
    out.print(f"trajectory: {result.trajectory}")
    if result.diff:
        diff = redact(result.diff)
        out.print(Syntax(diff, "diff", theme="ansi_dark") if out.is_terminal else diff)


class ConsoleReporter:
    """Live progress on a terminal (stderr) and the plan approval prompt (stdin)."""

    def __init__(self, *, live: bool, redact: Any = None) -> None:
        self.live = live
        self.err = console(stderr=True)
        self.redact = redact or _redactor()

    def event(self, name: str, data: dict[str, Any]) -> None:
        if not self.live:
            return
        if name == "note":
            self.err.print(styled((self.redact(str(data["text"])), "dim")))
        elif name == "tool_mode":
            self.err.print(styled((self.redact(f"switching to {data['mode']}-mode tool calls: {data['reason']}"), "dim")))
        elif name == "observe":
            self.err.print(styled((f"observe: {data['items']} context items; tests: {data['test_cmd'] or 'none'}",
                                   "dim")))
        elif name == "step":
            tools = ", ".join(data["tools"]) or "(no tool)"
            self.err.print(styled((f"step {data['step']}/{data['max_steps']}", "bold"), f" {tools}  ",
                                  (f"{data['tokens']:,} tok  model {data['model_s']:.1f}s  sandbox "
                                   f"{data['sandbox_s']:.1f}s  step {data['wall_s']:.1f}s", "dim")))
        elif name == "verify":
            mark = ("tests pass", "green") if data["passed"] else ("tests fail", "red")
            self.err.print(styled("  verify: ", mark, f" ({data['seconds']:.1f}s)"))

    def approve_plan(self, plan: str) -> Any:
        from repoloop.agent.interfaces import PlanDecision

        sys.stderr.write("\n--- plan ---\n" + self.redact(plan) + "\n------------\n")
        while True:
            sys.stderr.write("Approve the plan? [a]pprove / [r]eject / [e]dit: ")
            sys.stderr.flush()
            line = sys.stdin.readline()
            if not line:  # EOF: nobody to approve, so nothing is changed
                return PlanDecision("reject")
            answer = line.strip().lower()
            if answer in ("a", "approve", "y", "yes"):
                return PlanDecision("approve")
            if answer in ("r", "reject", "n", "no"):
                return PlanDecision("reject")
            if answer in ("e", "edit"):
                sys.stderr.write("Type the plan; end with a line holding only '.':\n")
                sys.stderr.flush()
                lines = []
                for ln in sys.stdin:
                    if ln.rstrip("\n") == ".":
                        break
                    lines.append(ln)
                return PlanDecision("edit", "".join(lines).strip())


def _runs(args: argparse.Namespace) -> int:
    from repoloop.agent import runs

    root = repo_root(args.repo)
    state = root / ".repoloop"
    if state.is_dir() and not state.is_symlink():  # worktrees of runs that died without cleaning up (kill -9): remove, keep branches
        from repoloop.agent.workspace import sweep_stale

        for gone in sweep_stale(root, state):
            print(f"repoloop: removed the worktree of dead run {gone.run_id} (branch {gone.branch} kept)",
                  file=sys.stderr)
    what = list(args.what)
    cmd = what[0] if what else None
    if cmd not in (None, "show", "stats") or (cmd == "show" and len(what) != 2) or (cmd == "stats" and len(what) > 1):
        raise RepoloopError("usage: repoloop runs [show ID | stats]")
    redact = _redactor()  # trajectories are redacted when written; this also covers older ones
    if cmd == "show":
        if args.json:
            from repoloop.agent.trajectory import find, read

            print_json(redact.deep({"records": list(read(find(state, what[1])))}))
        else:
            print(redact(runs.replay(state, what[1], full=args.full)))
        return 0
    if cmd == "stats":
        data = runs.stats(state, by=args.by)
        if args.json:
            print_json(data)
        else:
            _print_stats(data)
        return 0
    listed = runs.list_runs(state) if state.is_dir() else []
    if args.json:
        print_json(redact.deep({"runs": [r.to_json() for r in listed]}))
        return 0
    if not listed:
        print("no runs yet")
        return 0
    for r in listed:
        cost = f"${r.cost:.4f}" if r.cost_known else "cost ?"
        task = redact(r.task.strip().splitlines()[0][:60]) if r.task.strip() else ""
        print(f"{r.id}  {r.status:<8} {r.steps:>3} steps {r.tokens:>8} tok {cost:>10} {r.wall_s:7.1f}s  "
              f"{r.model}  {task}")
    return 0


def _print_stats(data: dict) -> None:
    groups = data["groups"]
    if not groups:
        print("no runs yet")
        return
    by = data.get("by", "model")
    print(f"{by:<24} {'runs':>5} {'ok':>4} {'rate':>6} {'steps':>6} {'calls':>6} {'prompt':>8} {'compl':>7} "
          f"{'cached':>8} {'cost $':>9} {'wall s':>7} {'prefix':>7}")
    for name, e in groups.items():
        def med(key: str, fmt: str, e: dict = e) -> str:
            return format(e[key]["median"], fmt) if e[key] else "-"
        rate = f"{e['success_rate']:.0%}" if e["success_rate"] is not None else "-"
        cost = med("cost", ".4f") if e.get("cost_known") else "?"
        share = f"{e['prefix_share']:.0%}" if e.get("prefix_share") is not None else "-"
        print(f"{name[:24]:<24} {e['runs']:>5} {e['successes']:>4} {rate:>6} {med('steps', '.1f'):>6} "
              f"{med('model_calls', '.1f'):>6} {med('prompt_tokens', '.0f'):>8} {med('completion_tokens', '.0f'):>7} "
              f"{med('cached_tokens', '.0f'):>8} {cost:>9} {med('wall_s', '.1f'):>7} {share:>7}")
    print("(medians per successful run; prefix: median share of each request that repeats the previous one's "
          "prefix, over all runs)")
