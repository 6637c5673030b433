"""Security review, issue 14 (items 7 and 8): a hostile model, a hostile model server and hostile tool
arguments against `repoloop run`. Each attack must end in an outcome - a tool error the model can act
on, a retry, or a clear status and reason - never a traceback: `--json` printed, a `run_end` record,
the worktree and its lock gone, the branch kept.

Driven through the real scripted server (tests/fake_llm.py) and the real `openai` client, mostly with
`repoloop run --json` as a subprocess in the bwrap sandbox, as tests/test_agent_loop.py does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.fake_llm import (
    FAKE_KEY,
    QUICK_TEST_CMD,
    Reply,
    body,
    call,
    calls,
    completion,
    drop,
    error,
    html,
    make_bug_repo,
    raw,
    run_repoloop,
    sse,
    text,
    trickle,
)

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

PLAN = text("Plan: change add() in calc/__init__.py to return a + b.")
FIX = call("edit_file", {"path": "calc/__init__.py", "old_str": "return a - b", "new_str": "return a + b"})
FINISH = call("finish", {"summary": "add() now adds"})
# A key that no pattern recognises: only knowing the value (the environment's OPENAI_API_KEY) redacts it.
PLAIN_KEY = "localkey-7f3a9b2c4d5e6f70-NEVERPRINT"


# -- helpers ------------------------------------------------------------------------------------------------
def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def run_cli(fake, repo: Path, *extra: str, key: str = FAKE_KEY, timeout: float = 240,
            ) -> tuple[subprocess.CompletedProcess[str], dict, float]:
    """`repoloop run --json` against the fake server in the bwrap sandbox: (process, JSON or {}, seconds)."""
    args = ["run", "Fix add(): test_add fails", "--repo", str(repo), "--base-url", fake.base_url,
            "--model", "fake-model", "--sandbox", "bwrap", "--lexical", "--test-cmd", QUICK_TEST_CMD,
            "--json", *extra]
    t0 = time.monotonic()
    proc = run_repoloop(args, input="", env={"OPENAI_API_KEY": key}, timeout=timeout)
    spent = time.monotonic() - t0
    out = proc.stdout.strip()
    return proc, (json.loads(out) if out.startswith("{") else {}), spent


def records(out: dict) -> list[dict]:
    return [json.loads(line) for line in Path(out["trajectory"]).read_text().splitlines()]


def tool_messages(request: dict) -> list[str]:
    return [m.get("content") or "" for m in request["messages"] if m.get("role") == "tool"]


def assert_clean_end(repo: Path, proc, out: dict, *, status: str, reason: str, code: int = 1,
                     branch: bool = True) -> list[dict]:
    """The run ended as a run should: exit code, status and reason in --json, `run_end` last in the
    trajectory, no worktree or lock left, the branch kept (when the run got as far as making one)."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert out, f"no --json output (exit {proc.returncode}): {proc.stdout[-500:]!r} {proc.stderr[-2000:]}"
    assert proc.returncode == code, (proc.returncode, out.get("reason"), proc.stderr[-2000:])
    assert out["status"] == status, out["reason"]
    assert reason in out["reason"], out["reason"]
    recs = records(out)
    assert recs[-1]["type"] == "run_end" and recs[-1]["status"] == status
    assert reason in recs[-1]["reason"]
    worktrees = repo / ".repoloop" / "worktrees"
    left = sorted(p.name for p in worktrees.iterdir()) if worktrees.is_dir() else []
    assert left == [], f"left behind under .repoloop/worktrees: {left}"  # no worktree, no lock file
    assert len(git(repo, "worktree", "list").splitlines()) == 1
    if branch:
        assert out["branch"] == f"repoloop/{out['run_id']}"
        assert git(repo, "branch", "--list", out["branch"]).strip(), "the run's branch is gone"
    return recs


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_bug_repo(tmp_path / "repo")


# -- 7: tool arguments ---------------------------------------------------------------------------------------
@needs_bwrap
@pytest.mark.hostile("7: list_dir with a non-string path")
def test_list_dir_with_a_non_string_path_is_a_tool_error(fake_llm, repo):
    fake_llm.add(PLAN, calls(("list_dir", {"path": 5}), ("list_dir", {"path": None}), ("list_dir", {"path": ["calc"]}),
                             ("list_dir", {"path": {"p": "."}}), ("list_dir", {"path": "."})), FIX, FINISH)
    proc, out, _ = run_cli(fake_llm, repo)
    assert_clean_end(repo, proc, out, status="success", reason="verified", code=0)
    msgs = tool_messages(fake_llm.requests[2])
    assert "'path' must be a string, not a number" in msgs[0]
    assert "list_dir needs path" in msgs[1]
    assert "'path' must be a string, not a list" in msgs[2]
    assert "'path' must be a string, not an object" in msgs[3]
    assert "calc/" in msgs[4]  # the good call of the same turn still ran


@needs_bwrap
@pytest.mark.hostile("7: tool arguments nested 100,000 deep, 5,000-digit numbers, NaN, Infinity")
def test_arguments_that_cannot_be_parsed_are_tool_errors(fake_llm, repo):
    deep = "[" * 100_000 + "]" * 100_000
    fake_llm.add(PLAN, calls(("read_file", deep), ("read_file", '{"path": ' + deep + "}"),
                             ("search_code", '{"query": "add", "k": 1' + "0" * 5000 + "}"),
                             ("search_code", '{"query": "add", "k": Infinity}'),
                             ("read_file", '{"path": "calc/__init__.py", "start_line": NaN}'),
                             ("finish", {"summary": 42})), FIX, FINISH)
    proc, out, _ = run_cli(fake_llm, repo)
    assert_clean_end(repo, proc, out, status="success", reason="verified", code=0)
    msgs = tool_messages(fake_llm.requests[2])
    assert len(msgs) == 6 and all(m.startswith("error:") for m in msgs), msgs
    assert "nested too deeply" in msgs[0] and "nested too deeply" in msgs[1]
    assert "could not be read" in msgs[2]
    assert "'k' must be an integer" in msgs[3]
    assert "'start_line' must be an integer" in msgs[4]
    assert "'summary' must be a string" in msgs[5]
    assert out["steps"] == 3 and out["summary"] == "add() now adds"  # the bad finish did not end the run


class _Recorder:
    def __init__(self) -> None:
        self.commands: list[str] = []

    def run(self, command: str, timeout: float):
        from types import SimpleNamespace

        self.commands.append(command)
        return SimpleNamespace(exit_code=0, stdout="ran", stderr="", timed_out=False, duration=0.0)


@pytest.mark.hostile("7: tool arguments of every JSON type, for every tool")
def test_every_tool_answers_arguments_of_every_json_type_with_an_error(tmp_path):
    from repoloop.agent.tools import TOOL_SCHEMAS, Toolbox

    root = make_bug_repo(tmp_path / "repo")
    box = Toolbox(root, _Recorder())
    before = git(root, "status", "--porcelain", "--untracked-files=all")
    wrong = {"string": [5, 2.5, True, [], ["a"], {}, {"a": 1}],
             "integer": ["abc", 2.5, True, [], {}, "1e9999", float("inf")]}
    checked = 0
    for schema in TOOL_SCHEMAS:
        name = schema["function"]["name"]
        params = schema["function"]["parameters"]
        good = {"path": "calc/__init__.py", "content": "x", "old_str": "return a - b", "new_str": "return a + b",
                "query": "add", "k": 3, "name": "add", "start_line": 1, "end_line": 2, "command": "true",
                "timeout": 5, "summary": "done"}
        base = {k: good[k] for k in params["required"]}
        for key, prop in params["properties"].items():
            for value in wrong[prop["type"]]:
                raw_args = json.dumps({**base, key: value}).replace("Infinity", "1e999")
                res = box.call(name, raw_args)
                assert not res.ok and res.output.startswith("error:"), (name, key, value, res.output)
                assert f"{key!r} must be" in res.output, (name, key, value, res.output)
                checked += 1
            if prop["type"] == "string":  # megabytes where a path or a query belongs
                res = box.call(name, json.dumps({**base, key: "y" * 3_000_000}))
                assert not res.ok and "the limit is" in res.output, (name, key, res.output[:200])
        for args in ("[]", '"text"', "5", "null", "true", "[" * 50_000, '{"a": ' * 50_000):
            res = box.call(name, args)
            if args == "null" and not params["required"]:
                continue
            assert not res.ok and res.output.startswith("error:"), (name, args[:20], res.output)
        for r in params["required"]:
            res = box.call(name, json.dumps({k: v for k, v in base.items() if k != r}))
            assert not res.ok and f"{name} needs {r}" in res.output
            res = box.call(name, json.dumps({**base, r: None}))
            assert not res.ok and f"{name} needs {r}" in res.output
        res = box.call(name, json.dumps({**base, "extra": 1, "more": [1]}))
        assert not res.ok and "no argument(s) extra, more" in res.output
    assert checked > 40
    assert box.runner.commands == []  # nothing ran on bad arguments
    assert not box.call(5, "{}").ok and not box.call(None, "{}").ok  # a tool name that is not a string
    # The forgiving cases: an integer as 5.0 or "5", an optional argument sent as null.
    assert box.call("read_file", '{"path": "calc/__init__.py", "start_line": "2", "end_line": 3.0}').ok
    assert box.call("search_code", '{"query": "add", "k": null}').ok
    assert git(root, "status", "--porcelain", "--untracked-files=all") == before


# -- 8: git metadata -----------------------------------------------------------------------------------------
@needs_bwrap
@pytest.mark.hostile("8: write_file into sub/.git/HEAD (and .GIT, .Git)")
def test_git_metadata_is_off_limits_at_any_depth(fake_llm, repo):
    fake_llm.add(PLAN, calls(("write_file", {"path": "sub/.git/HEAD", "content": "ref: refs/heads/evil\n"}),
                             ("write_file", {"path": "a/b/.GIT/config", "content": "[core]\n\tfsmonitor = x\n"}),
                             ("write_file", {"path": ".Git", "content": "gitdir: /tmp\n"}),
                             ("edit_file", {"path": "calc/.git/config", "old_str": "a", "new_str": "b"}),
                             ("read_file", {"path": ".git/config"}),
                             ("list_dir", {"path": "calc/.git"})), FIX, FINISH)
    proc, out, _ = run_cli(fake_llm, repo)
    assert_clean_end(repo, proc, out, status="success", reason="verified", code=0)
    msgs = tool_messages(fake_llm.requests[2])
    assert len(msgs) == 6
    for m, part in zip(msgs, (".git", ".GIT", ".Git", ".git", ".git", ".git"), strict=True):
        assert m.startswith("error:") and f"{part}/ is off limits" in m, m
    tree = git(repo, "ls-tree", "-r", "--name-only", out["branch"]).split()
    assert not any(".git" in p.lower().split("/") for p in tree), tree


@pytest.mark.hostile("8: read and write git metadata through a symlink")
def test_symlinks_into_git_metadata_are_refused(tmp_path):
    from repoloop.agent.tools import Toolbox

    root = make_bug_repo(tmp_path / "repo")
    (root / "gl").symlink_to(".git")
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to("../.git/config")
    box = Toolbox(root, _Recorder())
    config = (root / ".git" / "config").read_text()
    for name, args in (("read_file", {"path": "gl/config"}), ("read_file", {"path": "sub/up"}),
                       ("write_file", {"path": "gl/hooks/pre-commit", "content": "#!/bin/sh\necho pwned\n"}),
                       ("edit_file", {"path": "sub/up", "old_str": "[core]", "new_str": "[core]\n\thooksPath = /tmp"}),
                       ("list_dir", {"path": "gl"})):
        res = box.call(name, json.dumps(args))
        assert not res.ok and "git metadata" in res.output, (name, res.output)
    assert (root / ".git" / "config").read_text() == config
    assert not (root / ".git" / "hooks" / "pre-commit").exists()


# -- 7: what the model server sends --------------------------------------------------------------------------
MALFORMED = [
    pytest.param(raw('{"id": "x", "choices": [{"message": {"content": "cut off'), "not valid JSON",
                 id="invalid-json", marks=pytest.mark.hostile("7: model reply 200 with invalid JSON")),
    pytest.param(html(), "an HTML page instead of a chat completion",
                 id="html", marks=pytest.mark.hostile("7: model reply 200 with an HTML page")),
    pytest.param(body(completion(None)), "choices[0].message is null",
                 id="message-null", marks=pytest.mark.hostile("7: model reply with message: null")),
    pytest.param(body(completion({"role": "assistant", "content": 42})), "content is a number",
                 id="content-number", marks=pytest.mark.hostile("7: model reply with content of the wrong type")),
    pytest.param(raw(b""), "empty reply",
                 id="empty", marks=pytest.mark.hostile("7: model reply 200 with an empty body")),
    pytest.param(body([1, 2, 3]), "a list instead of a chat-completion object",
                 id="json-list", marks=pytest.mark.hostile("7: model reply that is a JSON list")),
]


@needs_bwrap
@pytest.mark.parametrize("bad, reason", MALFORMED)
def test_malformed_reply_is_retried_then_ends_the_run_cleanly(fake_llm, repo, bad, reason):
    fake_llm.add(PLAN, FIX)
    fake_llm.default = bad
    proc, out, _ = run_cli(fake_llm, repo, "--retries", "1")
    recs = assert_clean_end(repo, proc, out, status="error", reason=reason)
    assert "after 2 attempts" in out["reason"]
    assert len(fake_llm.requests) == 4  # plan, the fix, and the bad reply twice
    failed = [r for r in recs if r["type"] == "model_error"]
    assert len(failed) == 1 and failed[0]["attempts"] == 2 and failed[0]["step"] == 2
    # The verified fix before the bad reply is on the branch.
    assert "return a + b" in git(repo, "show", f"{out['branch']}:calc/__init__.py")


@needs_bwrap
@pytest.mark.hostile("7: streamed reply with a chunk that is not JSON")
def test_streamed_chunk_that_is_not_json_ends_the_run_cleanly(fake_llm, repo):
    fake_llm.add(PLAN)
    fake_llm.default = sse({"choices": [{"index": 0, "delta": {"content": "fine so far"}}]}, '{"choices": [{"delt')
    proc, out, _ = run_cli(fake_llm, repo, "--stream", "--retries", "1")
    assert_clean_end(repo, proc, out, status="error", reason="a streamed chunk that is not valid JSON")


@needs_bwrap
@pytest.mark.hostile("7: model reply with choices: []")
def test_reply_with_no_choices_is_retried(fake_llm, repo):
    fake_llm.add(PLAN, body(completion(None, choices=[])), FIX, FINISH)
    proc, out, _ = run_cli(fake_llm, repo)
    recs = assert_clean_end(repo, proc, out, status="success", reason="verified", code=0)
    first = next(r for r in recs if r["type"] == "reply" and r["phase"] == "act")
    assert first["attempts"] == 2 and "no choices" in first["errors"][0]


@needs_bwrap
@pytest.mark.hostile("7: tool call arguments sent as an object, function: null")
def test_odd_tool_calls_become_tool_errors_or_are_understood(fake_llm, repo):
    odd = completion({"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "list_dir", "arguments": {"path": "calc"}}},
        {"id": "c2", "type": "function", "function": None},
        {"id": 7, "type": "function", "function": {"name": ["read_file"], "arguments": "{}"}},
    ]})
    fake_llm.add(PLAN, body(odd), FIX, FINISH)
    proc, out, _ = run_cli(fake_llm, repo)
    assert_clean_end(repo, proc, out, status="success", reason="verified", code=0)
    msgs = tool_messages(fake_llm.requests[2])
    assert "__init__.py" in msgs[0]  # arguments sent as an object were taken as that object
    assert "unknown tool ''" in msgs[1] and "unknown tool" in msgs[2]


@needs_bwrap
@pytest.mark.hostile("7: a thousand tool calls in one reply")
def test_a_flood_of_tool_calls_runs_only_the_first_ones(fake_llm, repo):
    fake_llm.add(PLAN, calls(*[("list_dir", {"path": "."})] * 1000), FIX, FINISH)
    proc, out, _ = run_cli(fake_llm, repo)
    assert_clean_end(repo, proc, out, status="success", reason="verified", code=0)
    nxt = fake_llm.requests[2]["messages"]
    assert len(tool_messages(fake_llm.requests[2])) == 32
    assert "only the first 32 were run" in nxt[-1]["content"]


@needs_bwrap
@pytest.mark.hostile("7: a 70 MB model reply")
def test_a_reply_over_the_size_limit_ends_the_run_without_a_retry(fake_llm, repo):
    huge = json.dumps(completion({"role": "assistant", "content": "z" * 70_000_000})).encode()
    fake_llm.add(PLAN, raw(huge), FIX, FINISH)
    proc, out, _ = run_cli(fake_llm, repo)
    assert_clean_end(repo, proc, out, status="error", reason="over the 67,108,864-byte limit")
    assert len(fake_llm.requests) == 2  # not asked again: it would likely do it again, at a price
    assert Path(out["trajectory"]).stat().st_size < 1_000_000


@needs_bwrap
@pytest.mark.hostile("8: a 5 MB model reply is stored capped in the trajectory")
def test_a_huge_reply_is_capped_in_the_trajectory_and_the_conversation(fake_llm, repo):
    fake_llm.add(PLAN, text("w" * 5_000_000), FIX, FINISH)
    proc, out, _ = run_cli(fake_llm, repo)
    recs = assert_clean_end(repo, proc, out, status="success", reason="verified", code=0)
    traj = Path(out["trajectory"])
    assert traj.stat().st_size < 2_000_000, traj.stat().st_size
    big = next(r for r in recs if r["type"] == "reply" and r.get("content_bytes"))
    assert big["content_bytes"] == 5_000_000
    assert len(big["content"]) <= 256 * 1024 and "repoloop cut this field: 5,000,000 bytes" in big["content"]
    # What the model gets back of its own reply on the next request is bounded too.
    said = [m for m in fake_llm.requests[2]["messages"] if m["role"] == "assistant"][-1]["content"]
    assert 1_000 < len(said) < 25_000 and "characters of this reply cut" in said


# -- 7/8: the model server fails ----------------------------------------------------------------------------
@needs_bwrap
@pytest.mark.hostile("8: a 401 whose message quotes the API key")
def test_a_401_that_quotes_the_key_is_redacted_everywhere(fake_llm, repo):
    fake_llm.add(PLAN, FIX)
    fake_llm.default = error(401, f"Incorrect API key provided: {PLAIN_KEY}. Authorization: Bearer {PLAIN_KEY}")
    proc, out, _ = run_cli(fake_llm, repo, key=PLAIN_KEY)
    assert_clean_end(repo, proc, out, status="error", reason="refused the request: AuthenticationError 401")
    assert len(fake_llm.requests) == 3  # a 401 is not retried
    assert fake_llm.headers[0]["authorization"] == f"Bearer {PLAIN_KEY}"  # the key was really used
    assert "[REDACTED]" in out["reason"]
    shown = run_repoloop(["runs", "show", out["run_id"], "--repo", str(repo), "--full"])
    shown_json = run_repoloop(["runs", "show", out["run_id"], "--repo", str(repo), "--json"])
    listed = run_repoloop(["runs", "--repo", str(repo)])
    assert shown.returncode == 0 and "AuthenticationError" in shown.stdout
    for where, blob in (("stdout", proc.stdout), ("stderr", proc.stderr),
                        ("trajectory", Path(out["trajectory"]).read_text()), ("runs show", shown.stdout),
                        ("runs show --json", shown_json.stdout), ("runs", listed.stdout + listed.stderr)):
        assert PLAIN_KEY not in blob and PLAIN_KEY[:20] not in blob, where


@needs_bwrap
@pytest.mark.hostile("8: the API key in the model's own words")
def test_the_key_in_what_the_model_says_is_redacted(fake_llm, repo):
    fake_llm.add(PLAN, text(f"my key is {PLAIN_KEY}"), FIX,
                 call("finish", {"summary": f"done; key {PLAIN_KEY}; header Authorization: Basic dXNlcjpwYXNzd29yZA=="}))
    proc, out, _ = run_cli(fake_llm, repo, key=PLAIN_KEY)
    assert_clean_end(repo, proc, out, status="success", reason="verified", code=0)
    assert "[REDACTED]" in out["summary"] and "dXNlcjpwYXNzd29yZA" not in out["summary"]
    assert PLAIN_KEY not in proc.stdout + proc.stderr
    assert PLAIN_KEY not in Path(out["trajectory"]).read_text()


@needs_bwrap
@pytest.mark.hostile("7: model server answers 503 for good, mid-run")
def test_a_server_that_keeps_failing_mid_run_ends_cleanly(fake_llm, repo):
    fake_llm.add(PLAN, FIX)
    fake_llm.default = error(503)
    proc, out, _ = run_cli(fake_llm, repo, "--retries", "2")
    recs = assert_clean_end(repo, proc, out, status="error", reason="after 3 attempts: InternalServerError 503")
    (failed,) = [r for r in recs if r["type"] == "model_error"]
    assert failed["attempts"] == 3 and len(failed["errors"]) == 3 and failed["phase"] == "act"
    assert "return a + b" in git(repo, "show", f"{out['branch']}:calc/__init__.py")


@needs_bwrap
@pytest.mark.hostile("7: model server stops listening mid-run (connection refused)")
def test_connection_refused_mid_run_ends_cleanly_and_names_the_endpoint(fake_llm, repo):
    def plan_then_close(req: dict) -> Reply:
        fake_llm._server.shutdown()  # stop accepting and close the port; this reply still goes out,
        fake_llm._server.server_close()  # and its connection is closed after it (no keep-alive)
        return Reply(content=PLAN.content, close=True)

    fake_llm.add(plan_then_close)
    proc, out, _ = run_cli(fake_llm, repo, "--retries", "1")
    recs = assert_clean_end(repo, proc, out, status="error", reason=f"connection to {fake_llm.base_url} failed")
    assert "after 2 attempts" in out["reason"]
    assert [r["type"] for r in recs].count("model_error") == 1


@needs_bwrap
@pytest.mark.hostile("7: model server hangs up without answering")
def test_a_server_that_hangs_up_ends_cleanly(fake_llm, repo):
    fake_llm.add(PLAN)
    fake_llm.default = drop()
    proc, out, _ = run_cli(fake_llm, repo, "--retries", "1")
    recs = assert_clean_end(repo, proc, out, status="error", reason=f"connection to {fake_llm.base_url} failed")
    assert [r["type"] for r in recs].count("model_error") == 1


@needs_bwrap
@pytest.mark.hostile("8: --timeout against a server that trickles its reply")
def test_timeout_is_a_deadline_for_the_whole_request(fake_llm, repo):
    fake_llm.add(PLAN)
    fake_llm.default = trickle(every=0.3)  # ~300 bytes: about 90 s in all, each byte well within 3 s
    proc, out, spent = run_cli(fake_llm, repo, "--timeout", "3", "--retries", "0")
    recs = assert_clean_end(repo, proc, out, status="error", reason="no complete reply within the 3s deadline")
    (failed,) = [r for r in recs if r["type"] == "model_error"]
    assert 2.5 <= failed["model_s"] < 20, failed  # near the deadline, not the ~90 s the trickle takes
    assert spent < 60


@pytest.mark.hostile("8: --timeout against a server that trickles its status line and headers")
def test_deadline_covers_trickled_headers(fake_llm):
    from repoloop.agent.llm import LLMClient, LLMConfig, LLMError

    fake_llm.add(trickle(every=0.2, trickle_headers=True))
    client = LLMClient(LLMConfig(model="m", base_url=fake_llm.base_url, api_key="k", timeout=1.5, max_retries=0))
    t0 = time.monotonic()
    with pytest.raises(LLMError, match="1.5s deadline") as err:
        client.chat([{"role": "user", "content": "hi"}])
    assert time.monotonic() - t0 < 15 and err.value.attempts == 1


# -- 7: anything else: the structural catch-all ---------------------------------------------------------------
@pytest.mark.hostile("7: an unexpected exception inside the loop")
def test_an_unexpected_exception_ends_the_run_cleanly(fake_llm, repo):
    from repoloop.agent.config import ModelConfig, RetrievalConfig, RunConfig, SandboxConfig
    from repoloop.agent.loop import Agent

    class Exploding:
        kind = "local"

        def run(self, command: str, timeout: float):
            raise RuntimeError("the sandbox exploded\nsecond line")

        def stop(self) -> None:
            pass

    fake_llm.add(PLAN, FIX, FINISH)
    cfg = RunConfig(task="Fix add", repo=repo, test_cmd=QUICK_TEST_CMD,
                    model=ModelConfig("fake-model", base_url=fake_llm.base_url, api_key="k", backoff=0.01),
                    sandbox=SandboxConfig(kind="local"), retrieval=RetrievalConfig(lexical_only=True))
    result = Agent(cfg, sandbox=lambda kind, path: Exploding()).run()
    assert result.status == "error" and result.exit_code == 1
    assert result.reason == "internal error: RuntimeError: the sandbox exploded"
    recs = [json.loads(x) for x in result.trajectory.read_text().splitlines()]
    err = next(r for r in recs if r["type"] == "error")
    assert "Traceback" in err["traceback"] and "RuntimeError" in err["traceback"]
    assert recs[-1]["type"] == "run_end" and recs[-1]["status"] == "error"
    worktrees = repo / ".repoloop" / "worktrees"
    assert sorted(p.name for p in worktrees.iterdir()) == []
    assert result.branch == f"repoloop/{result.run_id}"
    # The unverified edit is kept on the branch, labelled as such.
    assert "return a + b" in git(repo, "show", f"{result.branch}:calc/__init__.py")
    assert "unverified" in git(repo, "log", "-1", "--format=%s", result.branch)


@pytest.mark.hostile("7: a streamed reply over the size limit")
def test_a_streamed_reply_over_the_limit_is_refused_while_reading(fake_llm):
    from repoloop.agent.llm import LLMClient, LLMConfig, LLMError

    fake_llm.add(text("v" * 200_000))
    client = LLMClient(LLMConfig(model="m", base_url=fake_llm.base_url, api_key="k", stream=True, max_retries=3))
    client.max_reply_bytes = 50_000  # the SSE body has no Content-Length: the limit holds while reading
    with pytest.raises(LLMError, match="over the 50,000-byte limit; stopped reading") as err:
        client.chat([{"role": "user", "content": "hi"}])
    assert err.value.attempts == 1 and len(fake_llm.requests) == 1


def test_content_as_a_list_of_text_parts_is_read():
    from repoloop.agent.llm import parse_reply

    content, tcalls, usage = parse_reply(json.dumps(completion(
        {"role": "assistant", "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "world"}]},
        usage={"prompt_tokens": -5, "completion_tokens": 10**30, "total_tokens": "many"})).encode())
    assert content == "hello world" and tcalls == [] and usage.prompt == 0 and usage.completion == 0
