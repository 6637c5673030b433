"""What the model is told. The system message (rules, project instructions, repo map) is built once
per run and never changes, so providers' prompt caching covers it on every step."""

from __future__ import annotations

SYSTEM = """You are repoloop, a careful software engineer fixing a task in a git repository.
You work through tools: search_code, get_symbol, read_file, list_dir, edit_file, write_file,
run_command (runs in a sandbox without network, at the repository root) and finish.
Rules:
- Read the relevant code before changing it; make the smallest change that solves the task.
- Edit with edit_file (old_str must match exactly once) or write_file for new files.
- Paths are relative to the repository root.
- After your edits the test command runs automatically; a failure is shown to you, fix it.
- When the task is done, call finish with a one-paragraph summary. finish is accepted only when
  the tests pass.
- Do not ask the user questions; there is nobody to answer.
"""

PLAN_REQUEST = """Before changing anything, write a short plan:
1. the files (and functions) you expect to change and why,
2. the tests you will run or add,
3. edge cases to keep in mind.
Reply with the plan only, as plain text; do not call tools yet."""

EXECUTE = "The plan is approved. Carry it out now with the tools, then call finish."

def text_mode_switch(protocol: str) -> str:
    """Auto mode's switch to text-mode tool calls, said once in the conversation."""
    return ("Native tool calls are not working here, so from now on call tools with action blocks in your "
            f"reply instead.\n{protocol}")


NO_TOOL_NUDGE = ("You replied without calling a tool. Continue with the tools (read, edit, run) "
                 "or call finish with a summary if the task is done.")


def system_message(*, instructions: str = "", repo_map: str = "", test_cmd: str | None = None,
                   tool_protocol: str = "") -> str:
    """Rules, then how to call tools (text mode), the test command, the project's instructions and the
    repo map: all fixed for the run, so the whole system message is a cacheable prefix."""
    parts = [SYSTEM]
    if tool_protocol:
        parts.append(tool_protocol)
    if test_cmd:
        parts.append(f"The test command is: {test_cmd}")
    if instructions:
        parts.append(f"Project instructions (from the repository):\n{instructions}")
    if repo_map:
        parts.append(f"Repository map (the most important files and their signatures):\n{repo_map}")
    return "\n\n".join(parts)


def task_message(task: str, context: str = "") -> str:
    out = f"Task:\n{task.strip()}"
    if context:
        out += f"\n\nCode that looks relevant to the task (from the repository index):\n{context}"
    return out


def failure_message(command: str, exit_code: int, digest: str, output: str, context: str = "") -> str:
    out = f"Verification failed: `{command}` exited with {exit_code}.\n"
    if digest:
        out += f"Summary:\n{digest}\n"
    out += f"Output:\n{output}"
    if context:
        out += f"\n\nCode related to the failure (from the repository index):\n{context}"
    out += "\n\nFix the problem, then finish again."
    return out


def plan_feedback(edited_plan: str) -> str:
    return f"The user edited the plan. Follow this plan instead:\n{edited_plan}"
