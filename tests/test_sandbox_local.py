"""The local backend: explicit only, warns, still has the timeout (whole tree) and the output cap."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from repoloop.sandbox import Limits, open_sandbox
from repoloop.sandbox.local import LocalSandbox


def test_local_warns_and_runs(tmp_path, capsys):
    with open_sandbox("local", tmp_path) as sb:
        assert isinstance(sb, LocalSandbox)
        r = sb.run("echo hi > f; echo out; echo err >&2; exit 5")
    assert "no isolation" in capsys.readouterr().err
    assert (r.exit_code, r.stdout, r.stderr) == (5, "out\n", "err\n")
    assert (tmp_path / "f").read_text() == "hi\n"


def test_backends_satisfy_the_protocol(tmp_path):
    from repoloop.sandbox import Sandbox
    from repoloop.sandbox.bwrap import BwrapSandbox
    from repoloop.sandbox.docker_backend import DockerSandbox

    for cls in (LocalSandbox, BwrapSandbox, DockerSandbox):
        assert isinstance(cls(tmp_path), Sandbox)


def test_local_warning_text(tmp_path, capsys):
    LocalSandbox(tmp_path).start()
    err = capsys.readouterr().err
    assert "warning" in err and "no isolation" in err


def test_local_timeout_kills_the_tree_and_caps_output(tmp_path):
    hb = tmp_path / "hb"
    token = uuid.uuid4().hex
    with LocalSandbox(tmp_path, limits=Limits(output_bytes=1000)) as sb:
        r = sb.run(f"sh -c 'while :; do echo b >> {hb}; sleep 0.1; done' {token} & "
                   f"while [ ! -s {hb} ]; do sleep 0.05; done; yes", timeout=5)
    assert r.timed_out and r.exit_code == 124
    assert r.stdout_cut > 0 and len(r.stdout) < 1200
    size = hb.stat().st_size
    time.sleep(0.5)
    assert hb.stat().st_size == size
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                assert token.encode() not in (d / "cmdline").read_bytes()
            except OSError:
                pass


def test_local_argv_and_missing_command(tmp_path):
    with LocalSandbox(tmp_path) as sb:
        assert sb.run(["printf", "%s", "a b"]).stdout == "a b"
        assert sb.run(["definitely-not-a-command-xyz"]).exit_code == 127


@pytest.mark.parametrize("kind", ["LOCAL", " local "])
def test_kind_names_are_forgiving(tmp_path, kind):
    assert open_sandbox(kind, tmp_path).kind == "local"


def test_background_children_do_not_outlive_the_command(tmp_path):
    token = uuid.uuid4().hex
    start = time.monotonic()
    with LocalSandbox(tmp_path) as sb:
        r = sb.run(f"sh -c 'sleep 30' {token} & echo started", timeout=20)
    assert r.exit_code == 0 and r.stdout == "started\n"
    assert time.monotonic() - start < 25  # not waiting for the 30 s child (slack for busy machines)
    time.sleep(0.2)
    alive = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if token.encode() in (d / "cmdline").read_bytes():
                    alive.append(d.name)
            except OSError:
                pass
    assert alive == []
