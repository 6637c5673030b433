"""Run every user-facing command of repoloop over a corpus of real public repositories and record
each command's exit code, stderr and time. Repositories nobody here wrote break a tool in ways no
unit test foresees (issue 15); this is the check that they do not.

Per repository: `index --no-embed` (fresh), `git status` (the index must not show up), `status`,
`status --json`, `tags --json`, 20 searches made from the repo's own identifiers and comments
(JSON; the first five also as text), `symbol --callers --callees` of 10 random symbols, `deps` and
`outline` of 10 files (each in JSON and as text), `map` (text and JSON), `context` (text and
JSON), an MCP session over stdio (`serve --lexical`: every tool), and a one-file re-index (the
new token must be found, then the file is restored and re-indexed).

A failure is: a traceback on stderr, a query command over 60 s (a hang), `--json` output that is
not one JSON document, an exit code other than the expected one, or an error message over one line.

Usage:
  nice -n 10 .venv/bin/python benchmarks/corpus_run.py prepare            # mirrors -> /work/corpus
  nice -n 10 .venv/bin/python benchmarks/corpus_run.py run [--only a,b] [--force]
  .venv/bin/python benchmarks/corpus_run.py report                        # markdown table
Results: one JSON per repository under --results (default benchmarks/corpus_results/).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUERY_TIMEOUT = 60.0  # a query command slower than this is a hang
INDEX_TIMEOUT = 3 * 3600.0


@dataclass(frozen=True)
class Repo:
    name: str  # directory under the corpus
    github: str  # owner/name of the snapshot
    language: str
    note: str = ""


# The Python repositories of SWE-bench, the ones issue 15 names, and one per other language.
REPOS: tuple[Repo, ...] = (
    Repo("django", "apprent1c3/django", "Python", "fork of django/django (the original snapshot is over the fetch limit)"),
    Repo("sympy", "sympy/sympy", "Python"),
    Repo("astropy", "astropy/astropy", "Python"),
    Repo("matplotlib", "williamlus/matplotlib", "Python", "fork of matplotlib/matplotlib (size limit)"),
    Repo("scikit-learn", "Agent-Benchmarking/scikit-learn", "Python", "fork of scikit-learn (size limit)"),
    Repo("xarray", "pydata/xarray", "Python"),
    Repo("pylint", "pylint-dev/pylint", "Python"),
    Repo("sphinx", "sphinx-doc/sphinx", "Python"),
    Repo("pytest", "pytest-dev/pytest", "Python"),
    Repo("requests", "psf/requests", "Python"),
    Repo("flask", "pallets/flask", "Python"),
    Repo("seaborn", "mwaskom/seaborn", "Python"),
    Repo("black", "psf/black", "Python"),
    Repo("scrapy", "scrapy/scrapy", "Python"),
    Repo("vue-core", "vuejs/core", "TypeScript"),
    Repo("caddy", "caddyserver/caddy", "Go"),
    Repo("ripgrep", "BurntSushi/ripgrep", "Rust"),
    Repo("gin", "gin-gonic/gin", "Go"),
    Repo("serde", "serde-rs/serde", "Rust"),
    Repo("gson", "google/gson", "Java"),
    Repo("jq", "jqlang/jq", "C"),
    Repo("nlohmann-json", "nlohmann/json", "C++"),
    Repo("Newtonsoft.Json", "JamesNK/Newtonsoft.Json", "C#", "one blob absent from the snapshot (large.json)"),
    Repo("sinatra", "sinatra/sinatra", "Ruby"),
    Repo("guzzle", "guzzle/guzzle", "PHP"),
    Repo("zod", "colinhacks/zod", "TypeScript"),
    Repo("babel", "babel/babel", "JS/TS monorepo"),
)

# Source files the searches, outlines and re-index take their material from.
SOURCE_EXT = {".py", ".pyi", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".go", ".rs", ".java",
              ".c", ".h", ".cc", ".cpp", ".hpp", ".cxx", ".hh", ".cs", ".rb", ".php"}
LINE_COMMENT = {".py": "#", ".pyi": "#", ".rb": "#", ".php": "//"}  # default: //
IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]{5,40}\b")
COMMENT = re.compile(r"^\s*(?:#+|//+|/?\*+|\"\"\")\s*(.+)$")
KEYWORDS = {"return", "import", "public", "private", "static", "struct", "function", "const", "string",
            "self", "false", "true", "class", "extends", "implements", "override", "package", "default"}


def repoloop_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "repoloop"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "repoloop.cli"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(ANONYMIZED_TELEMETRY="False", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               PYTHONUNBUFFERED="1", COLUMNS="120")
    env.pop("REPOLOOP_DEBUG", None)
    return env


def code_revision() -> str:
    """The commit of the repoloop the commands run (PYTHONPATH may point at another checkout)."""
    probe = subprocess.run([*repoloop_cmd()[:1], "--version"], capture_output=True, text=True, env=child_env())
    import importlib.util

    spec = importlib.util.find_spec("repoloop")
    where = Path(spec.origin).parent.parent if spec and spec.origin else ROOT
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=where, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "repoloop"], cwd=where,
                           capture_output=True, text=True).stdout.strip()
    return f"{rev.stdout.strip()}{'+uncommitted' if dirty else ''} ({where}; {probe.stdout.strip()})"


def load() -> float:
    return os.getloadavg()[0]


# -- one command ----------------------------------------------------------------------------------
@dataclass
class Outcome:
    label: str
    argv: list[str]
    rc: int | None
    seconds: float
    stdout: str
    stderr: str
    json_ok: bool | None = None
    problem: str | None = None

    def record(self) -> dict[str, Any]:
        return {"label": self.label, "argv": self.argv, "rc": self.rc, "seconds": round(self.seconds, 3),
                "stderr": self.stderr[-2000:], "stdout_bytes": len(self.stdout), "json_ok": self.json_ok,
                "problem": self.problem}


def run_cmd(label: str, args: list[str], *, cwd: Path, timeout: float = QUERY_TIMEOUT, want_json: bool = False,
            ok_codes: tuple[int, ...] = (0,), stdout_file: Path | None = None) -> Outcome:
    """Run one repoloop command in its own process group (a hang kills the whole group)."""
    argv = [*repoloop_cmd(), *args]
    t0 = time.perf_counter()
    out_f = open(stdout_file, "wb") if stdout_file else subprocess.PIPE
    proc = subprocess.Popen(argv, cwd=cwd, stdout=out_f, stderr=subprocess.PIPE, env=child_env(),
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        rc = None
    finally:
        if stdout_file:
            out_f.close()
    secs = time.perf_counter() - t0
    stdout = stdout_file.read_bytes().decode("utf-8", "replace") if stdout_file else out.decode("utf-8", "replace")
    stderr = err.decode("utf-8", "replace")
    o = Outcome(label, args, rc, secs, stdout, stderr)
    if rc is None:
        o.problem = f"hang: killed after {timeout:.0f} s"
    elif "Traceback (most recent call last)" in stderr:
        o.problem = "traceback: " + stderr.strip().splitlines()[-1][:300]
    elif rc not in ok_codes:
        o.problem = f"exit {rc}: " + (stderr.strip().splitlines() or [""])[-1][:300]
    elif rc != 0 and len([ln for ln in stderr.splitlines() if ln.strip()]) > 1:
        o.problem = "error message over one line: " + stderr.strip()[:300]
    if want_json and rc == 0:
        try:
            json.loads(stdout)
            o.json_ok = True
        except ValueError as e:
            o.json_ok = False
            o.problem = o.problem or f"--json output is not JSON: {e}"
    return o


# -- material from the repository itself ------------------------------------------------------------
def source_files(repo: Path) -> list[str]:
    """Tracked source files (git ls-files), so ignored and generated files are not sampled."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout
    files = [p for p in out.decode("utf-8", "surrogateescape").split("\0") if p]
    return sorted(p for p in files if os.path.splitext(p)[1].lower() in SOURCE_EXT
                  and (repo / p).is_file() and not (repo / p).is_symlink() and (repo / p).stat().st_size < 500_000)


def queries_from(repo: Path, files: list[str], rng: random.Random, n: int) -> list[str]:
    """Half identifiers (one or two), half comment lines, from random source files."""
    idents: list[str] = []
    comments: list[str] = []
    for rel in rng.sample(files, min(len(files), 60)):
        try:
            text = (repo / rel).read_text("utf-8", errors="replace")
        except OSError:
            continue
        words = [w for w in IDENT.findall(text) if w.lower() not in KEYWORDS]
        if words:
            idents.append(rng.choice(words) if rng.random() < 0.5 else f"{rng.choice(words)} {rng.choice(words)}")
        for line in text.splitlines():
            m = COMMENT.match(line)
            if m and len(m.group(1).split()) >= 4 and not m.group(1).startswith(("!", "-*-", "@")):
                comments.append(" ".join(m.group(1).split()[:10]))
    rng.shuffle(comments)
    out = idents[: n // 2] + comments[: n - min(len(idents), n // 2)]
    out += idents[n // 2:]
    return out[:n]


# -- the MCP session --------------------------------------------------------------------------------
async def mcp_session(repo: Path, queries: list[str], symbols: list[str], files: list[str],
                      errlog: Path) -> list[dict[str, Any]]:
    """`repoloop serve --lexical` over stdio with the official client: every tool, timed."""
    from mcp import Client, StdioServerParameters

    cmd = " ".join(f"'{a}'" for a in [*repoloop_cmd(), "serve", "--repo", str(repo), "--lexical"])
    params = StdioServerParameters(command="sh", args=["-c", f"exec {cmd} 2>>'{errlog}'"], env=child_env())
    calls: list[tuple[str, dict[str, Any]]] = [("search_code", {"query": q, "k": 10}) for q in queries[:3]]
    calls += [("get_symbol", {"name": s}) for s in symbols[:2]]
    calls += [("outline", {"path": f}) for f in files[:2]]
    calls += [("repo_map", {"budget": 1024}), ("get_context", {"task": queries[0] if queries else "main", "budget": 2000})]
    results = []
    async with Client(params, read_timeout_seconds=QUERY_TIMEOUT) as c:
        for tool, arguments in calls:
            t0 = time.perf_counter()
            try:
                got = await asyncio.wait_for(c.call_tool(tool, arguments), QUERY_TIMEOUT)
                err = bool(got.is_error)
                text = " ".join(getattr(x, "text", "") for x in got.content)[:300] if err else ""
                problem = f"tool error: {text}" if err else None
            except Exception as e:  # noqa: BLE001 - a transport failure is the finding
                problem = f"{type(e).__name__}: {e}"[:300]
            results.append({"label": f"mcp {tool}", "argv": [tool, json.dumps(arguments)[:200]], "rc": 0,
                            "seconds": round(time.perf_counter() - t0, 3), "problem": problem})
    return results


# -- one repository ---------------------------------------------------------------------------------
def run_repo(spec: Repo, corpus: Path, results: Path) -> dict[str, Any]:
    repo = corpus / spec.name
    rng = random.Random(f"corpus:{spec.name}")
    shutil.rmtree(repo / ".repoloop", ignore_errors=True)
    tmp = results / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    cmds: list[dict[str, Any]] = []
    load0 = load()

    def rec(o: Outcome) -> Outcome:
        cmds.append(o.record())
        print(f"  {o.label:<28} rc={o.rc} {o.seconds:7.2f}s {o.problem or ''}", flush=True)
        return o

    files_total = int(subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True).stdout.count("\n"))
    idx = rec(run_cmd("index --no-embed", ["index", "--no-embed", "--json", "--repo", str(repo)], cwd=repo,
                      timeout=INDEX_TIMEOUT, want_json=True))
    report = json.loads(idx.stdout) if idx.json_ok else {}
    porcelain = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo,
                               capture_output=True, text=True).stdout
    shown = [ln for ln in porcelain.splitlines() if ".repoloop" in ln]
    cmds.append({"label": "git status after index", "argv": ["git", "status", "--porcelain"], "rc": 0, "seconds": 0,
                 "problem": f"git status shows the index: {shown[0]}" if shown else None})
    rec(run_cmd("status", ["status", "--repo", str(repo)], cwd=repo))
    st = rec(run_cmd("status --json", ["status", "--json", "--repo", str(repo)], cwd=repo, want_json=True))
    status = json.loads(st.stdout) if st.json_ok else {}
    tags_file = tmp / f"{spec.name}.tags.json"
    tg = rec(run_cmd("tags --json", ["tags", str(repo), "--json"], cwd=repo, want_json=True, timeout=INDEX_TIMEOUT,
                     stdout_file=tags_file))
    tags = json.loads(tg.stdout)["tags"] if tg.json_ok else []
    tags_file.unlink(missing_ok=True)

    src = source_files(repo)
    queries = queries_from(repo, src, rng, 20)
    for i, q in enumerate(queries):
        rec(run_cmd(f"search #{i + 1} --json", ["search", q, "--json", "--repo", str(repo)], cwd=repo, want_json=True))
        if i < 5:
            rec(run_cmd(f"search #{i + 1}", ["search", q, "--repo", str(repo)], cwd=repo))
    defs = [t for t in tags if t.get("kind") in ("function", "method", "class", "struct", "interface", "type")]
    picked = rng.sample(defs, min(10, len(defs)))
    symbols = [t["qualname"] or t["name"] for t in picked]
    for s in symbols:
        js = rec(run_cmd(f"symbol {s[:20]} --json", ["symbol", s, "--callers", "--callees", "--json", "--repo",
                                                      str(repo)], cwd=repo, want_json=True))
        tx = rec(run_cmd(f"symbol {s[:20]}", ["symbol", s, "--callers", "--callees", "--repo", str(repo)], cwd=repo))
        if js.json_ok and tx.rc == 0:
            lost = [d["signature"] for d in json.loads(js.stdout)["definitions"]
                    if d.get("signature") and d["signature"] not in tx.stdout]
            if lost:
                cmds.append({"label": "symbol prints literally", "argv": [s], "rc": 0, "seconds": 0,
                             "problem": f"signature altered in text output: {lost[0][:120]!r}"})
    tag_files = sorted({t["path"] for t in tags})
    some = rng.sample(tag_files, min(10, len(tag_files)))
    for f in some:
        for cmd in ("deps", "outline"):
            js = rec(run_cmd(f"{cmd} --json", [cmd, f, "--json", "--repo", str(repo)], cwd=repo, want_json=True))
            tx = rec(run_cmd(cmd, [cmd, f, "--repo", str(repo)], cwd=repo))
            if cmd == "outline" and js.json_ok and tx.rc == 0:
                # text output prints the repository's text literally: every signature as the JSON has it
                lost = [s["signature"] for s in json.loads(js.stdout)["symbols"]
                        if s.get("signature") and s["signature"] not in tx.stdout]
                if lost:
                    cmds.append({"label": "outline prints literally", "argv": [f], "rc": 0, "seconds": 0,
                                 "problem": f"{len(lost)} signatures altered in text output, e.g. {lost[0][:120]!r}"})
    rec(run_cmd("map", ["map", "--repo", str(repo)], cwd=repo))
    rec(run_cmd("map --json", ["map", "--json", "--repo", str(repo)], cwd=repo, want_json=True))
    task = queries[0] if queries else "main entry point"
    rec(run_cmd("context", ["context", task, "--repo", str(repo)], cwd=repo))
    rec(run_cmd("context --json", ["context", task, "--json", "--repo", str(repo)], cwd=repo, want_json=True))
    errlog = tmp / f"{spec.name}.serve.err"
    errlog.unlink(missing_ok=True)
    try:
        for r in asyncio.run(mcp_session(repo, queries, symbols, some, errlog)):
            cmds.append(r)
            print(f"  {r['label']:<28} {r['seconds']:7.2f}s {r['problem'] or ''}", flush=True)
    except Exception as e:  # noqa: BLE001
        cmds.append({"label": "mcp session", "argv": [], "rc": None, "seconds": 0,
                     "problem": f"{type(e).__name__}: {e}"[:300]})
    serve_err = errlog.read_text("utf-8", "replace") if errlog.exists() else ""
    if "Traceback (most recent call last)" in serve_err:
        cmds.append({"label": "mcp server stderr", "argv": [], "rc": None, "seconds": 0,
                     "problem": "traceback: " + serve_err.strip().splitlines()[-1][:300]})

    # one-file re-index: a new function with a unique name, found by search, then taken back
    reindex = {}
    target = next((f for f in some if f.endswith((".py", ".go", ".rs", ".js", ".ts", ".java", ".c", ".cs", ".rb",
                                                   ".php", ".cpp", ".hpp", ".h"))), None)
    if target:
        path = repo / target
        original = path.read_bytes()
        token = f"corpusprobe{rng.randrange(10**6)}"
        cm = LINE_COMMENT.get(os.path.splitext(target)[1], "//")
        path.write_bytes(original + f"\n{cm} {token} appended by corpus_run\n".encode())
        try:
            o = rec(run_cmd("re-index one file", ["index", "--no-embed", "--json", "--repo", str(repo)], cwd=repo,
                            timeout=INDEX_TIMEOUT, want_json=True))
            reindex["seconds"] = round(o.seconds, 2)
            found = rec(run_cmd("search the new token", ["search", token, "--json", "--repo", str(repo)], cwd=repo,
                                want_json=True))
            hit = found.json_ok and any(r["path"] == target for r in json.loads(found.stdout)["results"])
            if not hit:
                cmds.append({"label": "re-index finds the change", "argv": [], "rc": None, "seconds": 0,
                             "problem": f"{token} in {target} not found after the re-index"})
        finally:
            path.write_bytes(original)
        rec(run_cmd("re-index (restore)", ["index", "--no-embed", "--repo", str(repo)], cwd=repo,
                    timeout=INDEX_TIMEOUT))

    failures = [c for c in cmds if c.get("problem")]
    query_times = [c["seconds"] for c in cmds if c["label"].split()[0] in ("search", "symbol", "deps", "outline",
                                                                           "map", "context", "mcp")]
    return {
        "repo": spec.name, "github": spec.github, "language": spec.language, "note": spec.note,
        "commit": (corpus / spec.name / ".corpus_commit").read_text().strip()
        if (corpus / spec.name / ".corpus_commit").exists() else None,
        "files_in_tree": files_total,
        "files_indexed": report.get("files_indexed", report.get("files")) if report else status.get("files"),
        "status_files": status.get("files"), "skips": status.get("skips"),
        "symbols": status.get("symbols"), "edges": status.get("edges"),
        "index_s": round(idx.seconds, 1), "reindex_one_file_s": reindex.get("seconds"),
        "query_max_s": round(max(query_times), 2) if query_times else None,
        "commands": len(cmds), "failures": failures, "load_start": round(load0, 1), "load_end": round(load(), 1),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "code": code_revision(),
        "all": cmds,
    }


# -- prepare / report -------------------------------------------------------------------------------
def prepare(corpus: Path, mirrors: Path) -> None:
    """Check each snapshot's HEAD out into CORPUS/NAME as a one-commit git repository (the index's
    `git status` check needs one), skipping blobs a snapshot lacks."""
    corpus.mkdir(parents=True, exist_ok=True)
    for spec in REPOS:
        dst = corpus / spec.name
        if (dst / ".git").exists():
            continue
        gitdir = mirrors / spec.github.replace("/", "+") / "repo"
        if not gitdir.is_dir():
            print(f"{spec.name}: no snapshot at {gitdir} (fetch github:{spec.github})", file=sys.stderr)
            continue
        commit = subprocess.run(["git", "--git-dir", str(gitdir), "rev-parse", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dst.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, GIT_INDEX_FILE=str(corpus / f".{spec.name}.idx"))
        subprocess.run(["git", "--git-dir", str(gitdir), "read-tree", commit], env=env, check=True)
        subprocess.run(["git", "--git-dir", str(gitdir), "--work-tree", str(dst), "checkout-index", "-a", "-f"],
                       env=env)
        os.unlink(env["GIT_INDEX_FILE"])
        subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
        (dst / ".git" / "info").mkdir(exist_ok=True)
        # sphinx has files with a working-tree-encoding git add refuses; take every byte as it is
        (dst / ".git" / "info" / "attributes").write_text("* -working-tree-encoding -filter\n")
        for args in (["add", "-A"], ["-c", "user.name=corpus", "-c", "user.email=c@localhost",
                                                      "commit", "-qm", f"snapshot of {spec.github} {commit}"]):
            subprocess.run(["git", *args], cwd=dst, check=True, capture_output=True)
        with open(dst / ".git" / "info" / "exclude", "a") as f:
            f.write(".corpus_commit\n")
        (dst / ".corpus_commit").write_text(commit + "\n")
        print(f"{spec.name}: {commit}")


def report(results: Path) -> str:
    rows = []
    totals = {"repos": 0, "commands": 0, "failures": 0, "tracebacks": 0, "hangs": 0, "json_bad": 0}
    for spec in REPOS:
        f = results / f"{spec.name}.json"
        if not f.exists():
            continue
        d = json.loads(f.read_text())
        totals["repos"] += 1
        totals["commands"] += d["commands"]
        totals["failures"] += len(d["failures"])
        for c in d["failures"]:
            p = c["problem"] or ""
            totals["tracebacks"] += p.startswith("traceback")
            totals["hangs"] += p.startswith("hang")
            totals["json_bad"] += "not JSON" in p
        fails = "; ".join(f"{c['label']}: {c['problem']}" for c in d["failures"])[:300] or "none"
        rows.append(f"| {d['repo']} ({d['github']}) | {d['language']} | {d['files_in_tree']:,} | "
                    f"{d['status_files'] or 0:,} | {d['index_s']:.1f} | {d['reindex_one_file_s'] or '-'} | "
                    f"{d['query_max_s']} | {d['commands']} | {fails} |")
    head = ("| repo (snapshot) | language | files in tree | files indexed | index s | one-file re-index s | "
            "slowest query s | commands | failures |\n|---|---|---|---|---|---|---|---|---|")
    summary = (f"{totals['repos']} repositories, {totals['commands']} commands: {totals['failures']} failures "
               f"({totals['tracebacks']} tracebacks, {totals['hangs']} hangs, {totals['json_bad']} unparseable --json)")
    return summary + "\n\n" + head + "\n" + "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("prepare", "run", "report"))
    ap.add_argument("--corpus", required=True, help="where the checkouts live")
    ap.add_argument("--mirrors", required=True, help="snapshots (bare git dirs OWNER+NAME/repo)")
    ap.add_argument("--results", default=str(ROOT / "benchmarks" / "corpus_results"))
    ap.add_argument("--only", default=None, help="comma list of repository names")
    ap.add_argument("--force", action="store_true", help="run repositories that already have a result")
    args = ap.parse_args()
    corpus, results = Path(args.corpus), Path(args.results)
    if args.action == "prepare":
        prepare(corpus, Path(args.mirrors))
        return 0
    if args.action == "report":
        print(report(results))
        return 0
    results.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(",")) if args.only else None
    for spec in REPOS:
        if only and spec.name not in only:
            continue
        out = results / f"{spec.name}.json"
        if out.exists() and not args.force:
            continue
        if not (corpus / spec.name / ".git").exists():
            print(f"{spec.name}: not prepared, skipped", file=sys.stderr)
            continue
        print(f"== {spec.name} (load {load():.1f})", flush=True)
        data = run_repo(spec, corpus, results)
        out.write_text(json.dumps(data, indent=1))
        print(f"== {spec.name}: {len(data['failures'])} failures, index {data['index_s']} s", flush=True)
    shutil.rmtree(results / "tmp", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
