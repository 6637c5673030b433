"""Text-mode tool calls: for models or servers without function calling.

The tools are described in the system prompt and the model answers with ONE fenced action block per
turn, a JSON object naming the tool and its arguments:

    ```action
    {"tool": "read_file", "path": "calc/__init__.py"}
    ```

(a ```bash block is taken as `run_command`, as mini-swe-agent runs its bash blocks). Parsing is
lenient about what small models get wrong without meaning anything else: the fence's tag (action,
json, tool_call, none), `<tool_call>` tags, a bare JSON object as the whole reply, literal newlines
inside strings, single quotes and Python literals, trailing commas, the arguments nested under
"arguments"/"args"/"parameters" or flat beside "tool", a missing closing fence at the very end. What
it cannot read unambiguously (no block, several blocks, a block that is not one JSON object, no tool
name, a reply cut at the output limit) is rejected with a correction message that says exactly what
was wrong and shows the format again; nothing is run from such a reply.

The parsed call is an ordinary `ToolCall` (arguments as JSON text), so argument checking is the same
as for native calls (repoloop.agent.tools.parse_arguments): a wrong type is a tool error either way.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from repoloop.agent.conversation import OBSERVATION_PREFIX
from repoloop.agent.llm import ToolCall

ACTION_TAGS = {"action", "json", "tool", "tool_call", "tool_code", "function", "function_call", "call", "jsonc",
               "json5", ""}
SHELL_TAGS = {"bash", "sh", "shell", "console", "zsh"}
NAME_KEYS = ("tool", "name", "action", "function", "tool_name")
ARG_KEYS = ("arguments", "args", "parameters", "params", "input", "tool_input")

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([A-Za-z0-9_+.\-]*)[^\n]*\n(.*?)(?:(?P<close>^[ \t]*\1[ \t]*$)|\Z)",
                    re.S | re.M)
_TAGGED = re.compile(r"<(tool_call|function_call|action)>\s*(.*?)\s*(?:</\1>|\Z)", re.S)


@dataclass(slots=True)
class Decoded:
    """What one reply asks for: at most one call, how it was read, and what to tell the model when
    nothing can be run (`correction`)."""

    calls: list[ToolCall] = field(default_factory=list)
    outcome: str = "prose"  # native | action | bash | prose | empty | cut | format_error
    correction: str = ""  # the message that goes back when there is no call
    detail: str = ""  # what exactly was wrong (for the trajectory)


def tool_guide(schemas: list[dict]) -> str:
    """The tools, one line each with their argument names and types (what the system prompt lists)."""
    lines = []
    for s in schemas:
        fn = s["function"]
        props = fn["parameters"]["properties"]
        req = set(fn["parameters"].get("required", []))
        args = ", ".join(f'"{k}": {v["type"]}{"" if k in req else " (optional)"}' for k, v in props.items())
        lines.append(f"- {fn['name']} {{{args}}}: {fn['description']}")
    return "\n".join(lines)


EXAMPLE = '{"tool": "read_file", "path": "src/app.py", "start_line": 1, "end_line": 60}'


def protocol_text(schemas: list[dict]) -> str:
    """How to call tools in text mode (part of the system prompt, so it is stable and cached)."""
    return f"""How to use the tools: every reply must end with exactly ONE action block, a fenced code block
tagged `action` that holds one JSON object: "tool" names the tool and the arguments go beside it.
For example:

```action
{EXAMPLE}
```

```action
{{"tool": "edit_file", "path": "src/app.py", "old_str": "return a - b", "new_str": "return a + b"}}
```

Strings may span several lines. A ```bash block also works and runs as run_command. Write at most a
short sentence before the block and nothing after it. The output of the action comes back in the next
message. When the task is done, send {{"tool": "finish", "summary": "..."}}.

Tools:
{tool_guide(schemas)}"""


def correction(problem: str) -> str:
    """The reply to a reply that could not be run: what was wrong, then the format once more."""
    return (f"Format error: {problem} Nothing was run.\nReply with exactly one action block, for example:\n"
            f"```action\n{EXAMPLE}\n```")


def decode_text(content: str | None, *, step: int = 0, cut: bool = False, tool_names: tuple[str, ...] = ()) -> Decoded:
    """The one action in a text-mode reply, or what was wrong with it. `cut`: the server stopped the
    reply at the output limit (a cut block is never run: its last argument may be half written)."""
    text = content or ""
    if not text.strip():
        return Decoded(outcome="empty", correction=correction("your reply was empty."), detail="empty reply")
    blocks = _blocks(text)
    if not blocks:
        obj = _bare_object(text)  # the whole reply is one JSON object: lenient
        if obj is not None:
            blocks = [("action", obj, False)]
    if not blocks:
        if cut:
            return Decoded(outcome="cut", correction=correction(
                "your reply was cut off at the output limit before any action block; keep it short."),
                detail="cut before an action block")
        return Decoded(outcome="prose", correction=correction("your reply has no action block."),
                       detail="no action block")
    if len(blocks) > 1:
        return Decoded(outcome="format_error", correction=correction(
            f"your reply has {len(blocks)} action blocks; send exactly one per reply (the next one after you "
            "see the output)."), detail=f"{len(blocks)} action blocks")
    tag, body, closed = blocks[0]
    if cut and not closed:
        return Decoded(outcome="cut", correction=correction(
            "your reply was cut off at the output limit inside the action block; send a shorter one (for a "
            "long file, write it in parts with edit_file)."), detail="cut inside the action block")
    call_id = f"text_{step}"
    if tag in SHELL_TAGS:
        command = body.strip()
        if not command:
            return Decoded(outcome="format_error", correction=correction("the bash block is empty."),
                           detail="empty bash block")
        return Decoded([ToolCall(call_id, "run_command", json.dumps({"command": command}))], outcome="bash")
    obj, why = _loads(body)
    if obj is None:
        return Decoded(outcome="format_error", correction=correction(
            f"the action block is not one JSON object ({why})."), detail=f"not JSON: {why}")
    name, args, why = _split(obj, tool_names)
    if name is None:
        return Decoded(outcome="format_error", correction=correction(why), detail=why)
    return Decoded([ToolCall(call_id, name, args if isinstance(args, str) else json.dumps(args))], outcome="action")


def render_call(name: str, arguments: str) -> str:
    """A native tool call written as the action block text mode expects (history after a switch)."""
    try:
        args = json.loads(arguments) if arguments else {}
    except (ValueError, RecursionError):
        args = None
    if isinstance(args, dict) and "tool" not in args:
        obj = {"tool": name, **args}
    else:
        obj = {"tool": name, "arguments": args if args is not None else arguments}
    return f"```action\n{json.dumps(obj, ensure_ascii=False)}\n```"


def observation(name: str, output: str) -> str:
    """A tool's output as the user message that answers an action."""
    return f"{OBSERVATION_PREFIX}{name}:\n{output}"


# -- parsing -----------------------------------------------------------------------------------------------
def _blocks(text: str) -> list[tuple[str, str, bool]]:
    """(tag, body, closed) of each block that is an action: fenced blocks with an action or shell tag
    (an untagged block only when it holds a JSON object), then <tool_call>-style tags."""
    out: list[tuple[str, str, bool]] = []
    for m in _FENCE.finditer(text):
        tag, body = m.group(2).lower(), m.group(3)
        closed = m.group("close") is not None
        if tag in SHELL_TAGS:
            out.append((tag, body, closed))
        elif tag in ACTION_TAGS and body.lstrip().startswith(("{", "[")):
            out.append(("action", body, closed))
        elif tag in ("action", "tool_call", "tool"):
            out.append(("action", body, closed))  # tagged as an action: report what is wrong with it
    if not out:
        for m in _TAGGED.finditer(text):
            out.append(("action", m.group(2), m.group(0).rstrip().endswith(">")))
    return out


def _bare_object(text: str) -> Any | None:
    t = text.strip()
    if not (t.startswith("{") and t.endswith("}")):
        return None
    obj, _ = _loads(t)
    return t if isinstance(obj, dict) else None


def _loads(body: Any) -> tuple[Any, str]:
    """A JSON object from a block's text, leniently; (None, why) when it is not one."""
    if not isinstance(body, str):
        return body, ""
    s = body.strip()
    if not s:
        return None, "the block is empty"
    try:
        obj = json.loads(s, strict=False)  # literal newlines inside strings are fine
    except RecursionError:
        return None, "nested too deeply"
    except ValueError as e:
        first_error = f"{e.msg} at line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) else str(e)
        obj = _repair(s)
        if obj is None:
            return None, first_error
    if isinstance(obj, list) and len(obj) == 1 and isinstance(obj[0], dict):
        obj = obj[0]
    if not isinstance(obj, dict):
        return None, f"it is {_kind(obj)}"
    return obj, ""


def _repair(s: str) -> Any | None:
    """Common slips: trailing commas, Python literals (single quotes, True/None), text after the object."""
    candidates = [re.sub(r",\s*([}\]])", r"\1", s)]
    end = _object_end(s)
    if end is not None and end < len(s):
        candidates.append(s[:end])
    for c in candidates:
        try:
            return json.loads(c, strict=False)
        except (ValueError, RecursionError):
            pass
    if len(s) <= 200_000:
        try:
            return ast.literal_eval(s)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    return None


def _object_end(s: str) -> int | None:
    """Index just past the first balanced {...} (strings respected), or None."""
    depth, in_str, esc, quote = 0, False, False, ""
    for i, ch in enumerate(s):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == quote:
                in_str = False
        elif ch in "\"'":
            in_str, quote = True, ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _split(obj: dict, tool_names: tuple[str, ...]) -> tuple[str | None, Any, str]:
    """(tool name, arguments, why not) of a decoded action object."""
    for wrapper in ("tool_call", "function_call", "call"):
        if isinstance(obj.get(wrapper), dict) and len(obj) == 1:
            obj = obj[wrapper]
    if isinstance(obj.get("function"), dict):  # OpenAI's own shape: {"function": {"name", "arguments"}}
        obj = obj["function"]
    name_key = next((k for k in NAME_KEYS if isinstance(obj.get(k), str) and (
        k != "name" or "tool" not in obj) and (k == "tool" or not tool_names or obj[k] in tool_names)), None)
    if name_key is None:
        shown = ", ".join(tool_names) if tool_names else "the tools listed above"
        return None, None, f'the action has no "tool" key naming the tool (one of: {shown}).'
    name = obj[name_key]
    arg_key = next((k for k in ARG_KEYS if k in obj), None)
    if arg_key is not None and len([k for k in obj if k not in (name_key, arg_key, "id", "type")]) == 0:
        args = obj[arg_key]
        if isinstance(args, str):
            decoded, _ = _loads(args)  # arguments as a JSON string, as in the native format
            args = decoded if isinstance(decoded, dict) else args
        if args is None:
            args = {}
    else:
        args = {k: v for k, v in obj.items() if k != name_key and k not in ("id", "type")}
    return name, args, ""


def _kind(v: Any) -> str:
    return {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(v), type(v).__name__)
