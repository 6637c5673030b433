"""Verification: which command tests this repository, and what a failure says (for the next query).

Detection looks at the files a project keeps at its root; the user's `--test-cmd` always wins.
A failure's output is boiled down to test names, assertion messages and stack frames, which make a
better retrieval query than the raw log.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from repoloop.agent.observe import read_project_text


@dataclass(slots=True)
class Verification:
    command: str
    passed: bool
    exit_code: int
    output: str
    seconds: float
    timed_out: bool = False


def _python(root: Path) -> str:
    for venv in (".venv", "venv"):
        py = root / venv / "bin" / "python"
        if py.exists():
            return str(py)
    try:
        import pytest  # noqa: F401

        return sys.executable  # the interpreter repoloop runs in has pytest
    except ImportError:
        return "python3"


def detect_test_command(root: Path) -> str | None:
    """The project's test command, or None when nothing recognisable is there."""
    root = Path(root)
    has = lambda *names: any((root / n).exists() for n in names)  # noqa: E731
    if has("pytest.ini", "conftest.py", "tox.ini", "setup.cfg", "pyproject.toml", "tests", "test"):
        py_files = has("pytest.ini", "conftest.py") or any(root.glob("test*/**/*.py")) or any(root.glob("test_*.py"))
        if py_files or _pyproject_has_pytest(root):
            return f"{_python(root)} -m pytest -q -x -p no:cacheprovider"
    if has("go.mod"):
        return "go test ./..."
    if has("Cargo.toml"):
        return "cargo test --offline"
    if has("package.json"):
        try:
            scripts = json.loads(read_project_text(root, "package.json") or "{}").get("scripts", {})
        except (ValueError, AttributeError):
            scripts = {}
        if "test" in scripts and "no test specified" not in scripts["test"]:
            return "npm test --silent"
    if has("pom.xml"):
        return "mvn -q -o test"
    if has("build.gradle", "build.gradle.kts"):
        return "./gradlew test --offline" if has("gradlew") else "gradle test --offline"
    if has("Gemfile") and has("spec"):
        return "bundle exec rspec"
    if has("Makefile"):
        if re.search(r"^test:", read_project_text(root, "Makefile") or "", re.M):
            return "make test"
    return None


def _pyproject_has_pytest(root: Path) -> bool:
    return "pytest" in (read_project_text(root, "pyproject.toml") or "")


_FAILED = re.compile(r"^(?:FAILED|ERROR)\s+(\S+)", re.M)
_ASSERT = re.compile(r"^E\s+(.+)$", re.M)
_FRAME_PY = re.compile(r'^(?:\s*File "([^"]+)", line (\d+), in (\w+)|([\w/.\-]+\.py):(\d+): (?:in )?(\w*))', re.M)
_GO_FAIL = re.compile(r"^--- FAIL: (\S+)", re.M)
_GENERIC_ERR = re.compile(r"(\w*(?:Error|Exception|panic)\b[^\n]{0,160})")


def failure_digest(output: str, limit: int = 1500) -> str:
    """Test names, assertion lines and frames from a failing run, most useful first."""
    items: list[str] = []
    items += [f"failed: {m}" for m in _FAILED.findall(output)]
    items += [f"failed: {m}" for m in _GO_FAIL.findall(output)]
    items += [f"E {m.strip()}" for m in _ASSERT.findall(output)][:12]
    for m in _FRAME_PY.finditer(output):
        path, line, fn = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5), m.group(6))
        if "site-packages" in path or "/lib/python" in path:
            continue
        items.append(f"at {path}:{line} {fn}".rstrip())
    if not items:
        items = [m.strip() for m in _GENERIC_ERR.findall(output)][:8]
    seen: set[str] = set()
    out = [i for i in items if not (i in seen or seen.add(i))]
    return "\n".join(out)[:limit]


def failure_query(output: str) -> str:
    """A retrieval query from a failure: identifiers from test names, messages and frames."""
    digest = failure_digest(output) or output[-2000:]
    words: list[str] = []
    for token in re.findall(r"[A-Za-z_][A-Za-z0-9_./:]*", digest):
        for part in re.split(r"[/:.]+", token):
            if len(part) > 2 and part not in ("failed", "py", "at", "test", "tests", "assert", "self", "in"):
                words.append(part)
    seen: set[str] = set()
    uniq = [w for w in words if not (w in seen or seen.add(w))]
    return " ".join(uniq[:40])
