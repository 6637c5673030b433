"""Run one host process (a bwrap, or the command itself for `local`) with a wall-clock timeout
that kills its whole tree, and capped output. Shared by the host-side backends."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from repoloop.sandbox.base import QUOTA_EXIT_CODE, TIMEOUT_EXIT_CODE, Limits, RunResult, exit_note
from repoloop.sandbox.output import CappedBuffer, drain


def _killpg(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_process(
    argv: Sequence[str],
    *,
    timeout: float,
    limits: Limits,
    env: Mapping[str, str] | None,
    cwd: Path,
    kill_extra: Callable[[], None] | None = None,
    watch: Callable[[], str | None] | None = None,
    watch_interval: float = 0.1,
) -> RunResult:
    """Run argv in its own session; on timeout SIGKILL its process group (and `kill_extra`).
    `watch` is polled while it runs: a non-None answer kills it, and becomes the result's note.
    It is asked once more after the command ends, since a poll can be outrun."""
    start = time.monotonic()
    deadline = start + timeout
    out, err = CappedBuffer(limits.output_bytes), CappedBuffer(limits.output_bytes)
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,  # its own process group: killpg reaches the whole tree
        )
    except FileNotFoundError as e:
        return RunResult(127, "", f"{e.filename}: command not found\n", duration=0.0, note="command not found")
    except PermissionError as e:
        return RunResult(126, "", f"{e.filename}: permission denied\n", duration=0.0, note="not executable")
    readers = [drain(proc.stdout, out), drain(proc.stderr, err)]  # type: ignore[arg-type]
    timed_out = False
    stopped: str | None = None
    try:
        while True:
            left = deadline - time.monotonic()
            try:
                proc.wait(timeout=max(min(left, watch_interval) if watch else left, 0))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    timed_out = True
                    break
                stopped = watch() if watch else None
                if stopped:
                    break
    finally:
        # Over, or out of time: nothing of the command outlives it (background children included;
        # in bwrap the PID namespace already saw to that).
        _killpg(proc.pid)
        if kill_extra:
            kill_extra()
        proc.wait()
    for t in readers:
        t.join(timeout=5)  # the pipes close once the last writer is gone
    if not any(t.is_alive() for t in readers):  # else a setsid'd escapee still holds them (local)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    duration = time.monotonic() - start
    rc = proc.returncode
    code = 128 - rc if rc < 0 else rc  # Popen reports a signal death as -N
    if timed_out:
        code = TIMEOUT_EXIT_CODE
        note = f"timed out after {timeout:g}s; the whole process tree was killed"
    elif stopped:
        code, note = QUOTA_EXIT_CODE, f"{stopped}; the command was killed"
    elif watch and (late := watch()):
        code, note = QUOTA_EXIT_CODE, f"{late}; found as the command ended"
    else:
        note = exit_note(code, limits)
    return RunResult(
        exit_code=code,
        stdout=out.text(),
        stderr=err.text(),
        timed_out=timed_out,
        duration=duration,
        stdout_cut=out.cut,
        stderr_cut=err.cut,
        note=note,
    )
