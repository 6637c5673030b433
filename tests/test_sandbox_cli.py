"""`repoloop exec` as a real subprocess: exit codes, timeout 124, local warning, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


def _exec(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock")  # auto: never this host's engine
    return subprocess.run(
        [sys.executable, "-m", "repoloop.cli", "exec", "--repo", str(tmp_path), *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


@needs_bwrap
def test_exit_code_and_streams_are_the_commands(tmp_path):
    p = _exec(tmp_path, "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert p.returncode == 7
    assert p.stdout == "out\n"
    assert p.stderr.startswith("err\n")
    p = _exec(tmp_path, "--sandbox", "bwrap", "--", "echo one && touch made")
    assert p.returncode == 0 and p.stdout == "one\n"
    assert (tmp_path / "made").exists()


@needs_bwrap
def test_timeout_is_124_with_a_message(tmp_path):
    p = _exec(tmp_path, "--timeout", "1", "--", "sleep 30")
    assert p.returncode == 124
    assert "timed out after 1s" in p.stderr


@needs_bwrap
def test_json_result(tmp_path):
    p = _exec(tmp_path, "--json", "--", "echo hi; exit 3")
    assert p.returncode == 3
    data = json.loads(p.stdout)
    assert data["sandbox"] == "bwrap" and data["exit_code"] == 3 and data["stdout"] == "hi\n"


def test_local_prints_a_warning(tmp_path):
    p = _exec(tmp_path, "--sandbox", "local", "--", "echo hi")
    assert p.returncode == 0 and p.stdout == "hi\n"
    assert "warning" in p.stderr and "no isolation" in p.stderr


def test_unknown_sandbox_is_a_one_line_error(tmp_path):
    p = _exec(tmp_path, "--sandbox", "chroot", "--", "true")
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == ["repoloop: error: unknown sandbox 'chroot': choose one of bwrap, docker, local"]
    assert "Traceback" not in p.stderr


def test_missing_command_and_unreachable_docker_are_one_line_errors(tmp_path):
    p = _exec(tmp_path, "--sandbox", "local")
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "no command" in p.stderr
    p = _exec(tmp_path, "--sandbox", "docker", "--", "true")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines() == [p.stderr.strip()]
    assert "no Docker engine reachable at unix:///nonexistent/docker.sock" in p.stderr
