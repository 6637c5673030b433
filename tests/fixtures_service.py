"""Helpers for the MCP server and watch tests: a small sample repository, indexed for real, and
ways to start `repoloop serve` / `repoloop watch` as real subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SAMPLE = {
    "pkg/__init__.py": '"""Sample package."""\n',
    "pkg/config.py": '''"""Configuration loading."""
import json

DEFAULT_TIMEOUT = 30


class ConfigError(Exception):
    """Raised when a configuration document is malformed."""


def parse_config(text: str) -> dict:
    """Parse a JSON configuration document into a dict of settings."""
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    return data


class Settings:
    """Typed access to parsed settings."""

    def __init__(self, values: dict) -> None:
        self.values = values

    def timeout(self) -> int:
        return self.values.get("timeout", DEFAULT_TIMEOUT)
''',
    "pkg/server.py": '''"""A tiny request server that reads its configuration at start."""
from pkg.config import Settings, parse_config


def start_server(path: str) -> Settings:
    """Read the configuration file at path and start serving requests."""
    with open(path) as f:
        settings = Settings(parse_config(f.read()))
    return settings


def handle_request(settings: Settings, request: str) -> str:
    return request.upper() if settings.timeout() > 0 else ""
''',
    "pkg/util/__init__.py": "",
    "pkg/util/strings.py": '''"""String helpers."""


def slugify(text: str) -> str:
    """Lower-case text and join its words with dashes."""
    return "-".join(text.lower().split())
''',
    "README.md": "# sample\n\nA sample repository for the repoloop service tests.\n",
    ".gitignore": "ignored_dir/\n*.log\n",
}


def write_sample(root: Path) -> Path:
    for rel, text in SAMPLE.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def index(repo: Path) -> Any:
    from repoloop.indexer.pipeline import index_repo

    return index_repo(repo, embed=False, progress=False, jobs=1)


def repoloop_cmd() -> list[str]:
    """The installed `repoloop` entry point of this interpreter's environment."""
    exe = Path(sys.executable).parent / "repoloop"
    return [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys; from repoloop.cli import main; sys.exit(main())"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(ANONYMIZED_TELEMETRY="False", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def poll(check: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.2, what: str = "condition") -> Any:
    """Call `check` until it returns something truthy; fail with the last value after `timeout`. The
    default is generous: a condition met in 0.5 s on an idle machine can take many seconds on a busy
    one (the suite must pass beside CPU hogs), and a passing poll returns as soon as it holds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r})")


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
