"""Issue 21: `--tool-mode native|text|auto`, every bad reply a weak model or a real server produces,
in both tool modes, and `auto` falling back to text mode.

Driven like tests/test_agent_loop.py: `repoloop run --json` as a subprocess, the real `openai` client
against the scripted chat-completions server on 127.0.0.1 (tests/fake_llm.py), a real git repository,
commands in the real bwrap sandbox. Each bad reply must end in an outcome the model can act on (a
correction or a tool error, then the run goes on) or a clear status and reason, never a traceback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fake_llm import QUICK_TEST_CMD, Reply, body, call, error, make_bug_repo, run_repoloop, text

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")

PLAN = text("Plan: change add() in calc/__init__.py to return a + b.")
FIX_ARGS = {"path": "calc/__init__.py", "old_str": "return a - b", "new_str": "return a + b"}
FINISH_ARGS = {"summary": "add() now adds"}


def act(tool: str, args: dict[str, Any] | None = None, *, prose: str = "", **kw: Any) -> Reply:
    """A text-mode reply: optional prose, then one action block."""
    obj = {"tool": tool, **(args or {})}
    return text(f"{prose}\n```action\n{json.dumps(obj)}\n```" if prose else f"```action\n{json.dumps(obj)}\n```", **kw)


def do(mode: str, tool: str, args: dict[str, Any]) -> Reply:
    """The same action as a native call or a text-mode action block."""
    return call(tool, args) if mode == "native" else act(tool, args)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_bug_repo(tmp_path / "repo")


def run_cli(fake, repo: Path, *extra: str, mode: str | None = None) -> tuple[subprocess.CompletedProcess[str], dict]:
    args = ["run", "Fix add(): test_add fails", "--repo", str(repo), "--base-url", fake.base_url,
            "--model", "fake-model", "--sandbox", "bwrap", "--lexical", "--test-cmd", QUICK_TEST_CMD, "--json",
            *(["--tool-mode", mode] if mode else []), *extra]
    proc = run_repoloop(args, input="")
    out = proc.stdout.strip()
    return proc, (json.loads(out) if out.startswith("{") else {})


def records(out: dict) -> list[dict]:
    return [json.loads(line) for line in Path(out["trajectory"]).read_text().splitlines()]


def ended(proc, out: dict, status: str, reason: str = "") -> list[dict]:
    """The run ended with this status and reason, cleanly: --json, run_end last, no worktree left."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert out, f"no --json output (exit {proc.returncode}): {proc.stderr[-2000:]}"
    assert out["status"] == status, (out["status"], out["reason"])
    assert reason in out["reason"], out["reason"]
    assert proc.returncode == (0 if status == "success" else 1)
    recs = records(out)
    assert recs[-1]["type"] == "run_end" and recs[-1]["status"] == status
    return recs


def last_user(request: dict) -> str:
    """What the model was told last: the final user (or tool) message of a request."""
    return request["messages"][-1].get("content") or ""


def outcomes(recs: list[dict]) -> list[str]:
    return [r["outcome"] for r in recs if r["type"] == "parse"]


# -- text mode: the happy path and what goes on the wire ------------------------------------------------------
def test_text_mode_fixes_the_bug_with_action_blocks_and_sends_no_tools(fake_llm, repo):
    fake_llm.add(PLAN, act("read_file", {"path": "calc/__init__.py"}, prose="Let me look."),
                 text('```json\n{"name": "edit_file", "arguments": ' + json.dumps(FIX_ARGS) + "}\n```"),
                 text("Done.\n```action\n{'tool': 'finish', 'summary': 'add() now adds',}\n```"))
    proc, out = run_cli(fake_llm, repo, mode="text")
    recs = ended(proc, out, "success", "verified")
    assert out["tool_mode"] == "text" and out["model_calls"] == 4
    assert "+    return a + b" in out["diff"]
    # No request carries tools; the system prompt describes them and the action-block format.
    assert all("tools" not in r and "tool_choice" not in r for r in fake_llm.requests)
    system = fake_llm.requests[0]["messages"][0]["content"]
    assert "```action" in system and "- edit_file {" in system and '"old_str": string' in system
    # Results come back as user messages (no `tool` role, which such servers may not take), and roles alternate.
    for r in fake_llm.requests:
        roles = [m["role"] for m in r["messages"]]
        assert "tool" not in roles
        assert all(a != b for a, b in zip(roles[1:], roles[2:], strict=False)), roles
    assert "Output of read_file:" in last_user(fake_llm.requests[2]) and "return a - b" in last_user(fake_llm.requests[2])
    assert outcomes(recs) == ["action", "action", "action"]


def test_a_bash_block_runs_as_run_command_in_the_sandbox(fake_llm, repo):
    fake_llm.add(PLAN, text("```bash\necho inside-$REPOLOOP_SANDBOX\n```"), act("edit_file", FIX_ARGS),
                 act("finish", FINISH_ARGS))
    proc, out = run_cli(fake_llm, repo, mode="text")
    recs = ended(proc, out, "success", "verified")
    assert "Output of run_command:" in last_user(fake_llm.requests[2])
    assert "inside-bwrap" in last_user(fake_llm.requests[2])
    assert outcomes(recs)[0] == "bash"


# -- each bad reply, in both modes ----------------------------------------------------------------------------
MALFORMED_TEXT = [
    pytest.param('```action\n{"tool": "read_file", "path": "calc/__init__.py"\n```',
                 "the action block is not one JSON object (Expecting ',' delimiter", id="unclosed-json"),
    pytest.param('```action\n{"tool": "list_dir", "path": "."}\n```\nthen\n```action\n{"tool": "finish"}\n```',
                 "your reply has 2 action blocks; send exactly one", id="two-blocks"),
    pytest.param('```action\n{"path": "calc/__init__.py"}\n```',
                 'the action has no "tool" key naming the tool (one of: search_code', id="no-tool-name"),
    pytest.param("```action\nplease read calc/__init__.py\n```", "is not one JSON object", id="not-json"),
]


@pytest.mark.parametrize("bad, message", MALFORMED_TEXT)
def test_text_mode_malformed_action_gets_a_precise_correction_and_nothing_runs(fake_llm, repo, bad, message):
    fake_llm.add(PLAN, text(bad), act("edit_file", FIX_ARGS), act("finish", FINISH_ARGS))
    proc, out = run_cli(fake_llm, repo, mode="text")
    recs = ended(proc, out, "success", "verified")
    told = last_user(fake_llm.requests[2])
    assert told.startswith("Format error: ") and message in told and "Nothing was run." in told
    assert "```action\n{" in told  # the format, shown again
    assert outcomes(recs)[0] == "format_error"
    assert not [r for r in recs if r["type"] == "tool" and r["step"] == 1]  # nothing ran from that reply


def test_native_mode_malformed_call_is_a_tool_error(fake_llm, repo):
    fake_llm.add(PLAN, call("read_file", '{"path": "calc/__init__.py"'), call("edit_file", FIX_ARGS),
                 call("finish", FINISH_ARGS))
    proc, out = run_cli(fake_llm, repo, mode="native")
    ended(proc, out, "success", "verified")
    assert "the arguments for read_file are not valid JSON" in last_user(fake_llm.requests[2])


@pytest.mark.parametrize("mode", ["native", "text"])
def test_wrong_argument_types_are_tool_errors_in_both_modes(fake_llm, repo, mode):
    fake_llm.add(PLAN, do(mode, "read_file", {"path": 5}), do(mode, "read_file", {"path": "calc/__init__.py",
                                                                                   "start_line": "one"}),
                 do(mode, "edit_file", FIX_ARGS), do(mode, "finish", FINISH_ARGS))
    proc, out = run_cli(fake_llm, repo, mode=mode)
    ended(proc, out, "success", "verified")
    assert "read_file: 'path' must be a string, not a number" in last_user(fake_llm.requests[2])
    assert "read_file: 'start_line' must be an integer, not a string" in last_user(fake_llm.requests[3])


@pytest.mark.parametrize("mode, told", [("native", "You replied without calling a tool"),
                                        ("text", "Format error: your reply has no action block.")])
def test_prose_gets_a_correction_then_the_same_prose_again_ends_the_run(fake_llm, repo, mode, told):
    fake_llm.add(PLAN)
    fake_llm.default = text("I think the bug is in add(); it subtracts.")
    proc, out = run_cli(fake_llm, repo, mode=mode)
    recs = ended(proc, out, "failed", "the model repeated the same reply 3 times without acting")
    assert out["steps"] == 3
    assert told in last_user(fake_llm.requests[2])
    assert outcomes(recs) == ["prose"] * 3


@pytest.mark.parametrize("mode", ["native", "text"])
def test_prose_that_keeps_changing_ends_the_run_before_max_steps(fake_llm, repo, mode):
    fake_llm.add(PLAN, *[text(f"Thinking about it, take {i}.") for i in range(10)])
    proc, out = run_cli(fake_llm, repo, "--max-steps", "20", mode=mode)
    ended(proc, out, "failed", "the model sent 5 replies in a row without a usable tool call (last: prose)")
    assert out["steps"] == 5


@pytest.mark.parametrize("mode", ["native", "text"])
@pytest.mark.parametrize("empty", [pytest.param(text(""), id="empty-string"),
                                   pytest.param(Reply(content=None), id="null-content")])
def test_empty_replies_get_told_then_end_the_run(fake_llm, repo, mode, empty):
    fake_llm.add(PLAN, empty, do(mode, "edit_file", FIX_ARGS))
    fake_llm.default = empty
    proc, out = run_cli(fake_llm, repo, mode=mode)
    recs = ended(proc, out, "failed", "the model sent 3 empty replies in a row")
    assert "reply was empty" in last_user(fake_llm.requests[2])
    assert outcomes(recs) == ["empty", "native" if mode == "native" else "action", "empty", "empty", "empty"]
    # The edit before the empty replies is kept on the branch (verified: the tests passed after it).
    assert "return a + b" in git(repo, "show", f"{out['branch']}:calc/__init__.py")


@pytest.mark.parametrize("mode", ["native", "text"])
def test_the_same_action_again_and_again_is_noted_then_ends_the_run(fake_llm, repo, mode):
    fake_llm.add(PLAN)
    fake_llm.default = do(mode, "list_dir", {"path": "."})
    proc, out = run_cli(fake_llm, repo, "--max-steps", "30", mode=mode)
    ended(proc, out, "failed", "the model repeated the same action 5 times in a row (list_dir)")
    assert out["steps"] == 5
    assert "Note: this is the same action as your previous reply (2 times in a row)" in last_user(fake_llm.requests[3])
    assert "same action" not in last_user(fake_llm.requests[2])


@pytest.mark.parametrize("mode", ["native", "text"])
def test_a_reply_cut_at_the_output_limit_is_not_run(fake_llm, repo, mode):
    if mode == "text":
        cut = text('```action\n{"tool": "write_file", "path": "half.py", "content": "def f():\n    return [1, 2,',
                   finish_reason="length")
        told = "cut off at the output limit inside the action block"
    else:
        cut = text("Let me explain at length what I am going to do first, in detail, and", finish_reason="length")
        told = "cut off at the output limit before any tool call"
    fake_llm.add(PLAN, cut, do(mode, "edit_file", FIX_ARGS), do(mode, "finish", FINISH_ARGS))
    proc, out = run_cli(fake_llm, repo, "--max-output-tokens", "64", mode=mode)
    recs = ended(proc, out, "success", "verified")
    assert told in last_user(fake_llm.requests[2])
    assert outcomes(recs)[0] == "cut"
    assert "half.py" not in out["diff"]
    assert all(r["max_tokens"] == 64 for r in fake_llm.requests)  # the limit was sent
    assert [r["finish_reason"] for r in recs if r["type"] == "reply"][1] == "length"


def test_text_mode_over_long_reply_runs_its_action_and_is_kept_bounded(fake_llm, repo):
    rambling = "I will now think out loud. " * 150_000  # ~4 MB of prose before the block
    fake_llm.add(PLAN, act("edit_file", FIX_ARGS, prose=rambling), act("finish", FINISH_ARGS))
    proc, out = run_cli(fake_llm, repo, mode="text")
    ended(proc, out, "success", "verified")
    said = [m for m in fake_llm.requests[2]["messages"] if m["role"] == "assistant"][-1]["content"]
    assert len(said) < 25_000 and "characters of this reply cut" in said
    assert Path(out["trajectory"]).stat().st_size < 2_000_000


@pytest.mark.parametrize("mode", ["native", "text"])
def test_context_overflow_compacts_and_retries_in_both_modes(fake_llm, repo, mode):
    big = "".join(f"row {i:04d} " + "y" * 40 + "\n" for i in range(300))
    fake_llm.add(PLAN, do(mode, "write_file", {"path": "big.txt", "content": big}),
                 do(mode, "read_file", {"path": "big.txt"}), do(mode, "read_file", {"path": "big.txt", "start_line": 2}),
                 error(400, "the request exceeds the available context size, try increasing it"),
                 do(mode, "edit_file", FIX_ARGS), do(mode, "run_command", {"command": "rm big.txt"}),
                 do(mode, "finish", FINISH_ARGS))
    proc, out = run_cli(fake_llm, repo, mode=mode)
    recs = ended(proc, out, "success", "verified")
    sizes = [len(json.dumps(r["messages"])) for r in fake_llm.requests]
    assert sizes[5] < sizes[4] * 0.7  # the refused request, resent smaller
    # system, task + plan request, plan: kept whole; "execute" starts the next message (the summary follows it)
    assert fake_llm.requests[5]["messages"][:3] == fake_llm.requests[4]["messages"][:3]
    assert fake_llm.requests[5]["messages"][3]["content"].startswith(fake_llm.requests[4]["messages"][3]["content"][:60])
    assert [r for r in recs if r["type"] == "compaction" and "context size" in (r.get("reason") or "")]
    (refused,) = [r for r in recs if r["type"] == "model_error"]
    assert refused["recovered"] == "compacted the conversation and sent it again"


@pytest.mark.parametrize("mode", ["native", "text"])
def test_a_server_that_names_its_smaller_window_gets_a_conversation_that_fits(fake_llm, repo, mode):
    """llama.cpp started with a smaller -c than --context-limit says: its refusal names n_ctx."""
    big = "".join(f"row {i:04d} " + "y" * 40 + "\n" for i in range(300))
    refusal = body({"error": {"code": 400, "message": "the request exceeds the available context size, try "
                              "increasing it", "type": "exceed_context_size_error", "n_prompt_tokens": 9100,
                              "n_ctx": 3072}}, status=400)
    fake_llm.add(PLAN, do(mode, "write_file", {"path": "big.txt", "content": big}),
                 *[do(mode, "read_file", {"path": "big.txt", "start_line": 1 + 60 * i, "end_line": 60 + 60 * i})
                   for i in range(4)],
                 refusal, do(mode, "edit_file", FIX_ARGS), do(mode, "run_command", {"command": "rm big.txt"}),
                 do(mode, "finish", FINISH_ARGS))
    proc, out = run_cli(fake_llm, repo, mode=mode)
    recs = ended(proc, out, "success", "verified")
    refused = 6
    assert len(json.dumps(fake_llm.requests[refused]["messages"])) / 3.5 > 3072  # it really was over
    for r in fake_llm.requests[refused + 1:]:  # resent, and every later request, within the window
        assert len(json.dumps(r["messages"]) + json.dumps(r.get("tools") or "")) / 3.5 < 3072
    assert "Fix add(): test_add fails" in fake_llm.requests[refused + 1]["messages"][1]["content"]  # task kept
    (err,) = [r for r in recs if r["type"] == "model_error"]
    assert err["recovered"] == "compacted the conversation and sent it again"


# -- auto ---------------------------------------------------------------------------------------------------
NO_TOOLS = [
    pytest.param(500, "tools param requires --jinja flag", id="llama.cpp-without-jinja"),
    pytest.param(400, "registry.ollama.ai/library/gemma3:270m does not support tools", id="ollama"),
]


@pytest.mark.parametrize("status, message", NO_TOOLS)
def test_auto_falls_back_to_text_mode_when_the_server_refuses_tools(fake_llm, repo, status, message):
    def server(body: dict) -> Reply:  # a server without function calling: any request with tools fails
        return error(status, message) if body.get("tools") else script.pop(0)

    script = [PLAN, act("edit_file", FIX_ARGS), act("finish", FINISH_ARGS)]
    fake_llm.default = server
    proc, out = run_cli(fake_llm, repo, "--retries", "4")  # auto is the default
    recs = ended(proc, out, "success", "verified")
    assert out["tool_mode"] == "text"
    reqs = fake_llm.requests
    assert reqs[0].get("tools") and reqs[0]["tool_choice"] == "none"  # the plan request carried them
    assert not any(r.get("tools") for r in reqs[1:]) and len(reqs) == 4  # refused once, not retried
    assert "Native tool calls are not working here" in last_user(reqs[1]) and "```action" in last_user(reqs[1])
    (switch,) = [r for r in recs if r["type"] == "tool_mode"]
    assert switch["mode"] == "text" and message in switch["reason"]
    # The refused request is on record with how the run went on: every request has an outcome.
    (refused,) = [r for r in recs if r["type"] == "model_error"]
    assert refused["recovered"] == "switched to text-mode tool calls" and message in refused["error"]
    assert len([r for r in recs if r["type"] == "request"]) == len(reqs) == 1 + len(
        [r for r in recs if r["type"] == "reply"])


def test_a_server_that_refuses_tool_choice_none_keeps_native_calls(fake_llm, repo):
    def server(body: dict) -> Reply:  # tools fine, tool_choice "none" not
        if body.get("tool_choice") == "none":
            return error(400, "tool_choice 'none' is not supported by this server")
        return script.pop(0)

    script = [PLAN, call("edit_file", FIX_ARGS), call("finish", FINISH_ARGS)]
    fake_llm.default = server
    proc, out = run_cli(fake_llm, repo)
    recs = ended(proc, out, "success", "verified")
    assert out["tool_mode"] == "native" and all(r.get("tools") for r in fake_llm.requests)
    assert [r.get("tool_choice") for r in fake_llm.requests] == ["none", None, None, None]
    (refused,) = [r for r in recs if r["type"] == "model_error"]
    assert refused["recovered"] == "sent again without tool_choice"


def test_native_mode_against_a_server_without_tools_ends_with_the_reason(fake_llm, repo):
    fake_llm.default = error(500, "tools param requires --jinja flag")
    proc, out = run_cli(fake_llm, repo, "--retries", "1", mode="native")
    ended(proc, out, "error", "tools param requires --jinja flag")
    assert len(fake_llm.requests) == 2  # retried as any 5xx, no switch


def test_auto_falls_back_to_text_mode_when_the_model_keeps_answering_in_prose(fake_llm, repo):
    fake_llm.add(PLAN, text("The fix is to make add() return a + b."), text("I would change the minus to a plus."),
                 act("edit_file", FIX_ARGS), act("finish", FINISH_ARGS))
    proc, out = run_cli(fake_llm, repo)
    recs = ended(proc, out, "success", "verified")
    reqs = fake_llm.requests
    assert reqs[1].get("tools") and reqs[2].get("tools")  # native for the first two steps
    assert not reqs[3].get("tools") and not reqs[4].get("tools")
    told = last_user(reqs[3])
    assert "Native tool calls are not working here" in told and "- finish {" in told
    assert [r["mode"] for r in recs if r["type"] == "tool_mode"] == ["text"]
    assert "2 replies in a row without a tool call" in [r for r in recs if r["type"] == "tool_mode"][0]["reason"]
    assert outcomes(recs) == ["prose", "prose", "action", "action"]
    # After the switch the history is text mode's: no tool role, no tool_calls left in it.
    assert all(m["role"] != "tool" and "tool_calls" not in m for m in reqs[3]["messages"])


def test_auto_takes_an_action_block_written_in_a_native_reply_at_once(fake_llm, repo):
    fake_llm.add(PLAN, act("edit_file", FIX_ARGS, prose="I'll edit it."), act("finish", FINISH_ARGS))
    proc, out = run_cli(fake_llm, repo)
    recs = ended(proc, out, "success", "verified")
    assert out["tool_mode"] == "text" and out["steps"] == 2
    assert fake_llm.requests[1].get("tools") and not fake_llm.requests[2].get("tools")
    assert "edited calc/__init__.py" in fake_llm.request_text(2)
    assert outcomes(recs) == ["action", "action"]


def test_auto_stays_native_while_native_calls_work(fake_llm, repo):
    fake_llm.add(PLAN, call("edit_file", FIX_ARGS), call("finish", FINISH_ARGS))
    proc, out = run_cli(fake_llm, repo)
    recs = ended(proc, out, "success", "verified")
    assert out["tool_mode"] == "native"
    assert all(r.get("tools") for r in fake_llm.requests)
    assert not [r for r in recs if r["type"] == "tool_mode"]


def test_tool_mode_is_checked(repo):
    proc = run_repoloop(["run", "x", "--repo", str(repo), "--model", "m", "--base-url", "http://127.0.0.1:9/v1",
                         "--tool-mode", "xml"])
    assert proc.returncode == 2 and "invalid choice: 'xml'" in proc.stderr
