"""The tools the model calls (exact names, listed in README: a public interface) and their schemas.

Every failure comes back as text the model can act on (a bad path, a non-unique `old_str`, invalid
JSON arguments, an unknown tool) instead of ending the run. Commands run only in the sandbox.

Arguments go through one validation step before any tool runs (`parse_arguments`, driven by the
schemas the model is given): a JSON object, required keys present, no unknown keys, strings where
strings belong, integers where integers belong, no string over its size limit. Whatever the model
sends (numbers for paths, null, lists, 100,000-deep nesting, 5,000-digit numbers, megabytes of
text) is a tool error message back to it, never an exception in the loop.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from repoloop.agent.paths import PathError, rel, resolve_in
from repoloop.errors import RepoloopError
from repoloop.gitsafe import GitTarget, git

MAX_OUTPUT_CHARS = 12_000
MAX_READ_LINES = 400


class CommandResult(Protocol):
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    duration: float


class CommandRunner(Protocol):
    """What the agent needs from a sandbox (repoloop.sandbox.Sandbox fits)."""

    def run(self, command: str, timeout: float) -> CommandResult: ...


class SearchBackend(Protocol):
    """What the tools need from retrieval (an adapter over repoloop.retrieval.api.Retriever)."""

    def search(self, query: str, k: int) -> str | None: ...

    def symbol(self, name: str) -> list[dict] | None: ...


def _fn(name: str, description: str, props: dict[str, Any], required: list[str]) -> dict:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": props, "required": required, "additionalProperties": False}}}


TOOL_SCHEMAS: list[dict] = [
    _fn("search_code", "Search the repository's index for code relevant to a query (identifiers, "
        "error messages, natural language). Returns ranked snippets with paths and line numbers.",
        {"query": {"type": "string"}, "k": {"type": "integer", "description": "results (default 8)"}},
        ["query"]),
    _fn("get_symbol", "Definitions of a function/class/method by bare or qualified name, with their code.",
        {"name": {"type": "string"}}, ["name"]),
    _fn("read_file", "Read a file (path relative to the repository root). Lines are prefixed with their "
        "numbers (not part of the file). Use start_line/end_line for long files.",
        {"path": {"type": "string"}, "start_line": {"type": "integer"}, "end_line": {"type": "integer"}},
        ["path"]),
    _fn("list_dir", "List a directory (relative to the repository root; '.' for the root).",
        {"path": {"type": "string"}}, ["path"]),
    _fn("edit_file", "Replace old_str with new_str in a file. old_str must match exactly once "
        "(include surrounding lines to make it unique); copy it without line-number prefixes.",
        {"path": {"type": "string"}, "old_str": {"type": "string"}, "new_str": {"type": "string"}},
        ["path", "old_str", "new_str"]),
    _fn("write_file", "Create or overwrite a file with the given content.",
        {"path": {"type": "string"}, "content": {"type": "string"}}, ["path", "content"]),
    _fn("run_command", "Run a shell command in the sandbox at the repository root (no network). "
        "Returns the exit code and output.",
        {"command": {"type": "string"}, "timeout": {"type": "integer", "description": "seconds (default 120)"}},
        ["command"]),
    _fn("finish", "Declare the task done with a short summary. The tests are run first; if they fail "
        "you get the failure and continue.", {"summary": {"type": "string"}}, ["summary"]),
]
TOOL_NAMES = tuple(t["function"]["name"] for t in TOOL_SCHEMAS)
_PARAMS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOL_SCHEMAS}

# The longest string each argument may be (characters); others: DEFAULT_MAX_ARG_CHARS.
MAX_ARG_CHARS = {"path": 4096, "name": 1_000, "query": 10_000, "command": 100_000, "summary": 100_000}
DEFAULT_MAX_ARG_CHARS = 2_000_000  # content, old_str, new_str
MAX_RAW_ARGS_CHARS = 8_000_000  # the whole JSON text of one call's arguments


class ToolArgError(ValueError):
    """Arguments the tool cannot take; the message is shown to the model."""


def parse_arguments(name: str, raw: Any) -> dict[str, Any]:
    """The arguments of a call to tool `name` as the model sent them (a JSON text), checked against
    the tool's schema; ToolArgError with a message for the model when they do not fit."""
    params = _PARAMS[name]
    props: dict[str, dict] = params["properties"]
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        args: Any = {}
    elif not isinstance(raw, str):
        args = raw  # already decoded (a caller other than the loop)
    elif len(raw) > MAX_RAW_ARGS_CHARS:
        raise ToolArgError(f"the arguments for {name} are {len(raw):,} characters; the limit is "
                           f"{MAX_RAW_ARGS_CHARS:,}")
    else:
        try:
            args = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ToolArgError(f"the arguments for {name} are not valid JSON ({e.msg} at position {e.pos}). "
                               f"Send one JSON object, e.g. {_example(name)}.") from None
        except (ValueError, RecursionError) as e:  # 5,000-digit numbers, nesting too deep to parse
            reason = "nested too deeply" if isinstance(e, RecursionError) else str(e).splitlines()[0][:120]
            raise ToolArgError(f"the arguments for {name} could not be read ({reason}). "
                               f"Send one flat JSON object, e.g. {_example(name)}.") from None
    if not isinstance(args, dict):
        raise ToolArgError(f"the arguments for {name} must be a JSON object, not {_kind(args)}; "
                           f"e.g. {_example(name)}.")
    unknown = sorted(str(k) for k in args if k not in props)
    if unknown:
        shown = ", ".join(k[:40] for k in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise ToolArgError(f"{name} has no argument(s) {shown}; it takes {', '.join(props)}.")
    missing = [r for r in params["required"] if args.get(r) is None]
    if missing:
        raise ToolArgError(f"{name} needs {', '.join(missing)}; e.g. {_example(name)}.")
    out: dict[str, Any] = {}
    for key, value in args.items():
        if value is None:  # an optional argument sent as null: as if left out
            continue
        kind = props[key]["type"]
        if kind == "string":
            if not isinstance(value, str):
                raise ToolArgError(f"{name}: {key!r} must be a string, not {_kind(value)}; e.g. {_example(name)}.")
            limit = MAX_ARG_CHARS.get(key, DEFAULT_MAX_ARG_CHARS)
            if len(value) > limit:
                raise ToolArgError(f"{name}: {key!r} is {len(value):,} characters; the limit is {limit:,}.")
            out[key] = value
        elif kind == "integer":
            number = _integer(value)
            if number is None:
                raise ToolArgError(f"{name}: {key!r} must be an integer, not {_kind(value)}; e.g. {_example(name)}.")
            out[key] = number
        else:  # a schema type this check does not know: refuse rather than guess
            raise ToolArgError(f"{name}: {key!r} cannot be checked (schema type {kind!r})")
    return out


def _integer(value: Any) -> int | None:
    """An integer argument: an int, a whole finite float (5.0) or digits in a string ("5"); within
    +-10**9 (line numbers, counts and seconds are clamped by each tool anyway)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or not value.is_integer():
            return None
        value = int(value)
    elif isinstance(value, str):
        v = value.strip()
        if not (v.lstrip("+-").isdigit() and len(v) <= 12):
            return None
        value = int(v)
    if not isinstance(value, int):
        return None
    return max(-10**9, min(value, 10**9))


def _kind(v: Any) -> str:
    return {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(v), type(v).__name__)


@dataclass(slots=True)
class ToolResult:
    output: str
    ok: bool = True
    edited: bool = False  # the workspace changed
    finish: bool = False  # the model asked to finish
    sandbox_s: float = 0.0  # time spent in the sandbox


def truncate(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """Head and tail of a long output, with a note saying what was cut."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 2 // 3], text[-limit // 3:]
    cut = len(text) - len(head) - len(tail)
    return f"{head}\n[... {cut} characters truncated ...]\n{tail}"


class Toolbox:
    """Tool implementations over one workspace."""

    def __init__(self, root: Path, runner: CommandRunner, search: SearchBackend | None = None,
                 *, max_output: int = MAX_OUTPUT_CHARS, command_timeout: float = 120.0,
                 git_dir: Path | None = None) -> None:
        self.root = root.resolve()
        # grep runs on the host over a tree the sandbox writes: git's own safety (repoloop.gitsafe),
        # with the worktree's gitdir named, never found through the tree's `.git`.
        self.git = GitTarget(self.root, git_dir=git_dir, work_tree=self.root if git_dir else None)
        self.runner = runner
        self.search = search
        self.max_output = max_output
        self.command_timeout = command_timeout

    def call(self, name: str, raw_args: str) -> ToolResult:
        if not isinstance(name, str) or name not in TOOL_NAMES:
            shown = repr(name[:80]) if isinstance(name, str) else _kind(name)
            return ToolResult(f"error: unknown tool {shown}. Available tools: {', '.join(TOOL_NAMES)}.", ok=False)
        try:
            args = parse_arguments(name, raw_args)
        except ToolArgError as e:
            return ToolResult(f"error: {e}", ok=False)
        try:
            result = getattr(self, f"_{name}")(**args)
        except PathError as e:
            return ToolResult(f"error: {e}", ok=False)
        except (TypeError, ValueError, ArithmeticError) as e:
            return ToolResult(f"error: bad arguments for {name}: {e}", ok=False)
        except OSError as e:
            return ToolResult(f"error: {e.strerror or e}", ok=False)
        except subprocess.SubprocessError as e:
            return ToolResult(f"error: {name} failed: {str(e).splitlines()[0][:200] if str(e) else type(e).__name__}",
                              ok=False)
        result.output = truncate(result.output, self.max_output)
        return result

    # -- retrieval ---------------------------------------------------------------------------------
    def _search_code(self, query: str, k: int = 8) -> ToolResult:
        k = max(1, min(int(k), 30))
        text = self.search.search(str(query), k) if self.search else None
        if text is None:  # no index: a plain grep keeps the tool useful
            text = self._grep(str(query), k)
        return ToolResult(text or f"no results for {query!r}")

    def _get_symbol(self, name: str) -> ToolResult:
        defs = self.search.symbol(str(name)) if self.search else None
        text = self._render_defs(defs) if defs is not None else None
        if text is None:
            base = str(name).rsplit(".", 1)[-1]
            text = self._grep(rf"(def|class|func|fn|function|interface|struct|type)\s+{base}\b", 10, regex=True)
        return ToolResult(text or f"no definition of {name!r} found", ok=bool(text))

    def _render_defs(self, defs: list[dict], max_lines: int = 80) -> str:
        """Definitions with their code, read from the workspace (the index may be older)."""
        out = []
        for d in defs[:6]:
            path, start, end = d.get("path"), int(d.get("start_line") or 1), int(d.get("end_line") or 1)
            head = f"{path}:{start}-{end}  {d.get('kind', '')} {d.get('qualname', '')}".rstrip()
            try:
                lines = resolve_in(self.root, str(path), must_exist=True).read_text(errors="replace").splitlines()
            except (PathError, OSError):
                out.append(f"{head}\n{d.get('signature') or ''}")
                continue
            stop = min(end, start + max_lines - 1, len(lines))
            body = "\n".join(f"{i:>5}  {lines[i - 1]}" for i in range(start, stop + 1))
            more = f"\n[... {end - stop} more lines; use read_file]" if end > stop else ""
            from repoloop.retrieval.graph import neighbour_lines  # noqa: PLC0415 - numpy only when used

            graph = "".join(f"\n{x}" for x in neighbour_lines(d, indent=""))
            out.append(f"{head}\n{body}{more}{graph}")
        return "\n\n".join(out)

    def _grep(self, pattern: str, k: int, *, regex: bool = False) -> str:
        args = ["grep", "-n", "-I", "-i", "--no-textconv", "-E" if regex else "-F", "-e", pattern, "--", "."]
        lines = self._git_lines(args)
        if not lines and not regex:
            words = [w for w in pattern.split() if len(w) > 2][:6]
            if words:
                cmd = ["grep", "-n", "-I", "-i", "--no-textconv", "-F"]
                for w in words:
                    cmd += ["-e", w]
                lines = self._git_lines([*cmd, "--", "."])
        return "\n".join(lines[: k * 5])

    def _git_lines(self, args: list[str]) -> list[str]:
        try:
            return git(args, self.git, check=False, timeout=30).stdout.splitlines()
        except RepoloopError:
            return []

    # -- files ---------------------------------------------------------------------------------------
    def _read_file(self, path: str, start_line: int | None = None, end_line: int | None = None) -> ToolResult:
        target = resolve_in(self.root, path, must_exist=True)
        if target.is_dir():
            return ToolResult(f"error: {path!r} is a directory; use list_dir", ok=False)
        data = target.read_bytes()
        if b"\0" in data[:8192]:
            return ToolResult(f"error: {path!r} is a binary file", ok=False)
        lines = data.decode("utf-8", errors="replace").splitlines()
        n = len(lines)
        start = max(1, int(start_line or 1))
        end = min(n, int(end_line) if end_line else n)
        note = ""
        if end - start + 1 > MAX_READ_LINES:
            end = start + MAX_READ_LINES - 1
            note = f"\n[showing lines {start}-{end} of {n}; pass start_line/end_line for more]"
        if n == 0:
            return ToolResult(f"{rel(self.root, target)} is empty")
        if start > n:
            return ToolResult(f"error: {path!r} has only {n} lines", ok=False)
        body = "\n".join(f"{i:>5}  {lines[i - 1]}" for i in range(start, end + 1))
        return ToolResult(f"{rel(self.root, target)} (lines {start}-{end} of {n})\n{body}{note}")

    def _list_dir(self, path: str = ".") -> ToolResult:
        target = self.root if path.strip() in ("", ".", "./") else resolve_in(self.root, path, must_exist=True)
        if not target.is_dir():
            return ToolResult(f"error: {path!r} is not a directory", ok=False)
        entries = []
        for child in sorted(target.iterdir(), key=lambda c: c.name):
            if child.name.lower() in (".git", ".repoloop"):
                continue
            entries.append(child.name + ("/" if child.is_dir() else ""))
        return ToolResult("\n".join(entries) or "(empty directory)")

    def _edit_file(self, path: str, old_str: str, new_str: str) -> ToolResult:
        target = resolve_in(self.root, path, must_exist=True)
        text = target.read_text(encoding="utf-8")
        if not old_str:
            return ToolResult("error: old_str is empty; to create or overwrite a file use write_file", ok=False)
        count = text.count(old_str)
        if count == 0:
            return ToolResult(f"error: old_str not found in {path}. {_near(text, old_str)}"
                              "Re-read the file and copy the text exactly (without line numbers).", ok=False)
        if count > 1:
            lines = _match_lines(text, old_str)
            return ToolResult(f"error: old_str found {count} times in {path} (at lines "
                              f"{', '.join(map(str, lines[:10]))}); include more surrounding lines "
                              "so it matches exactly once.", ok=False)
        if old_str == new_str:
            return ToolResult("error: old_str and new_str are identical; nothing to change", ok=False)
        at = text.index(old_str)
        target.write_text(text.replace(old_str, new_str, 1), encoding="utf-8")
        line = text.count("\n", 0, at) + 1
        return ToolResult(f"edited {path} at line {line} (-{old_str.count(chr(10)) + 1} +"
                          f"{new_str.count(chr(10)) + 1} lines)", edited=True)

    def _write_file(self, path: str, content: str) -> ToolResult:
        target = resolve_in(self.root, path)
        if target.is_dir():
            return ToolResult(f"error: {path!r} is a directory", ok=False)
        existed = target.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        resolve_in(self.root, path)  # the new parents must not have led outside either
        target.write_text(str(content), encoding="utf-8")
        return ToolResult(f"{'overwrote' if existed else 'created'} {path} ({len(str(content))} chars)",
                          edited=True)

    # -- commands ------------------------------------------------------------------------------------
    def _run_command(self, command: str, timeout: int | None = None) -> ToolResult:
        t = float(timeout) if timeout else self.command_timeout
        t = max(1.0, min(t, 1800.0))
        t0 = time.perf_counter()
        res = self.runner.run(str(command), timeout=t)
        spent = time.perf_counter() - t0
        out = format_command(res)
        return ToolResult(out, ok=res.exit_code == 0 and not res.timed_out, sandbox_s=spent)

    def _finish(self, summary: str) -> ToolResult:
        return ToolResult(str(summary), finish=True)


def format_command(res: CommandResult, limit: int = MAX_OUTPUT_CHARS) -> str:
    head = f"exit code {res.exit_code}" + (" (timed out)" if res.timed_out else "")
    parts = [head]
    if res.stdout:
        parts.append("stdout:\n" + truncate(res.stdout, limit))
    if res.stderr:
        parts.append("stderr:\n" + truncate(res.stderr, limit // 2))
    return "\n".join(parts)


def _example(name: str) -> str:
    examples = {
        "search_code": {"query": "parse config file", "k": 5}, "get_symbol": {"name": "Parser.parse"},
        "read_file": {"path": "src/app.py", "start_line": 1, "end_line": 80}, "list_dir": {"path": "."},
        "edit_file": {"path": "src/app.py", "old_str": "return a - b", "new_str": "return a + b"},
        "write_file": {"path": "notes.txt", "content": "..."}, "run_command": {"command": "ls", "timeout": 60},
        "finish": {"summary": "Fixed the off-by-one in parse()"},
    }
    return json.dumps(examples.get(name, {}))


def _match_lines(text: str, needle: str) -> list[int]:
    out, i = [], text.find(needle)
    while i != -1:
        out.append(text.count("\n", 0, i) + 1)
        i = text.find(needle, i + 1)
    return out


def _near(text: str, old: str) -> str:
    """Hint at where the model's old_str nearly matches: lines sharing its first non-blank line."""
    first = next((ln.strip() for ln in old.splitlines() if ln.strip()), "")
    if not first:
        return ""
    lines = text.splitlines()
    hits = [i + 1 for i, ln in enumerate(lines) if first in ln]
    if not hits:
        import difflib

        close = difflib.get_close_matches(first, [ln.strip() for ln in lines], n=1, cutoff=0.6)
        if close:
            hits = [i + 1 for i, ln in enumerate(lines) if ln.strip() == close[0]][:1]
    if not hits:
        return ""
    n = hits[0]
    window = "\n".join(f"{i:>5}  {lines[i - 1]}" for i in range(max(1, n - 2), min(len(lines), n + 3) + 1))
    return f"Nearest match near line {n}:\n{window}\n"
