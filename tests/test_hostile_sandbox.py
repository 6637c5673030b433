"""The security review's attacks on the sandbox and on the git repoloop runs over sandboxed trees,
replayed against the real bubblewrap (and a real Docker engine where one can run): host code
execution through a worktree's `.git`, `repoloop exec` rewriting a checkout's `.git`, setuid
files left on the host, reads of host files outside the workspace, and disk floods.

A marker file in the host's /tmp is the witness: the sandbox has a /tmp of its own, so the marker
can only appear if the host itself ran the attacker's command."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from repoloop.sandbox import Limits
from repoloop.sandbox.bwrap import BwrapSandbox
from tests.fake_llm import QUICK_TEST_CMD, call, run_agent_cli, run_repoloop, text

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")


@pytest.fixture
def marker() -> Iterator[Path]:
    m = Path("/tmp") / f"repoloop-pwned-{uuid.uuid4().hex}"
    yield m
    m.unlink(missing_ok=True)


@pytest.fixture
def outside() -> Iterator[Path]:
    """A host directory that is not hidden by name (/tmp, /root, /home are): /mnt/<random>."""
    d = Path("/mnt") / f"repoloop-outside-{uuid.uuid4().hex}"
    try:
        d.mkdir(parents=True)
    except OSError as e:
        pytest.skip(f"cannot make a directory under /mnt: {e}")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)


# -- 1. host code execution through the agent's worktree ----------------------------------------------

def _payloads(m: Path) -> dict[str, str]:
    evil = f"echo PWNED >> {m}"
    fresh = "rm -f .git && git init -q . && "
    return {
        "fsmonitor": fresh + f"git config core.fsmonitor '{evil}; false'",
        "hooks": fresh + "mkdir -p .git/hooks && for h in reference-transaction pre-commit post-checkout "
                 f"post-index-change; do printf '#!/bin/sh\\n{evil}\\n' > .git/hooks/$h; "
                 "chmod +x .git/hooks/$h; done",
        "hooksPath": fresh + f"mkdir -p hk && printf '#!/bin/sh\\n{evil}\\n' > hk/reference-transaction && "
                     "chmod +x hk/reference-transaction && cp hk/reference-transaction hk/post-index-change && "
                     "git config core.hooksPath \"$PWD/hk\"",
        "filter": fresh + f"git config filter.evil.clean '{evil}; cat' && git config filter.evil.required true && "
                  "echo '* filter=evil' > .gitattributes",
        "external diff": fresh + f"git config diff.external '{evil}; true' && "
                         f"git config core.pager '{evil}; cat'",
        "gitdir file": "mkdir -p .evil && cd .evil && git init -q . && "
                       f"git config core.fsmonitor '{evil}; false' && cd .. && "
                       "rm -f .git && echo \"gitdir: $PWD/.evil/.git\" > .git",
        "common gitdir": "cd \"$(git rev-parse --git-common-dir)\" && "
                         f"git config core.fsmonitor '{evil}; false'",
        "nested repo": "mkdir -p sub && cd sub && git init -q . && "
                       f"git config core.fsmonitor '{evil}; false' && echo x > f && cd .. && echo y > top.txt",
    }


ATTACKS = list(_payloads(Path("/x")))


@pytest.mark.parametrize("attack", ATTACKS)
def test_git_attack_through_repoloop_run_never_reaches_the_host(attack, fake_llm, bug_repo, marker):
    payload = _payloads(marker)[attack]
    # The user's own config may define a filter: a tree the sandbox wrote can select it.
    _git(bug_repo, "config", "filter.userfilter.clean", f"sh -c 'echo PWNED >> {marker}; cat'")
    fake_llm.add(
        text("Plan: fix add()."),
        call("run_command", {"command": payload}),
        call("write_file", {"path": ".gitattributes", "content": "* filter=userfilter diff=userdiff\n"}),
        call("edit_file", {"path": "calc/__init__.py", "old_str": "return a - b", "new_str": "return a + b"}),
        call("run_command", {"command": "echo more > extra.txt"}),
        call("finish", {"summary": "done"}),
    )
    proc, out = run_agent_cli(fake_llm, bug_repo, "Fix add()", test_cmd=QUICK_TEST_CMD)
    assert proc.stdout.strip().startswith("{"), proc.stderr
    runs = run_repoloop(["runs", "--repo", str(bug_repo)])  # the sweep over dead runs runs git too
    _git(bug_repo, "status")  # and so does the user, afterwards
    assert not marker.exists(), f"host ran the attacker's command: {marker.read_text()!r}"
    assert runs.returncode == 0, runs.stderr
    # The run still did its job: the fix is on its branch, the user's checkout is untouched.
    branch = out.get("branch")
    assert branch, out
    diff = _git(bug_repo, "diff", out.get("base") or "HEAD", branch).stdout
    assert "+    return a + b" in diff
    assert "Subproject commit" not in diff
    assert (bug_repo / "calc" / "__init__.py").read_text().count("return a - b") == 1


hostile_git = pytest.mark.hostile("1: git config/hooks/filters/.git replaced in the worktree (repoloop run)")
test_git_attack_through_repoloop_run_never_reaches_the_host = hostile_git(
    test_git_attack_through_repoloop_run_never_reaches_the_host)


# -- 2. `repoloop exec` over the user's checkout ------------------------------------------------------

@pytest.mark.hostile("2: repoloop exec rewrites the checkout's .git")
def test_exec_cannot_rewrite_the_checkouts_git(bug_repo, marker):
    config = (bug_repo / ".git" / "config").read_bytes()
    evil = f"echo PWNED >> {marker}"
    r = run_repoloop(["exec", "--repo", str(bug_repo), "--sandbox", "bwrap", "--",
                      f"git config core.fsmonitor '{evil}; false'; "
                      f"printf '#!/bin/sh\\n{evil}\\n' > .git/hooks/pre-commit; chmod +x .git/hooks/pre-commit; "
                      "rm -rf .git; echo done"])
    assert r.returncode == 0 and "done" in r.stdout, r.stderr
    assert (bug_repo / ".git" / "config").read_bytes() == config
    assert not (bug_repo / ".git" / "hooks" / "pre-commit").exists()
    st = _git(bug_repo, "status")
    _git(bug_repo, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "--allow-empty", "-qm", "x")
    assert st.returncode == 0
    assert not marker.exists()


@pytest.mark.hostile("4: remote credentials in .git/config read from the sandbox")
def test_git_credentials_are_masked_inside(bug_repo):
    _git(bug_repo, "remote", "add", "origin", "https://user:ghp_SECRETTOKEN123@example.invalid/r.git")
    r = run_repoloop(["exec", "--repo", str(bug_repo), "--sandbox", "bwrap", "--",
                      "cat .git/config; git log --oneline | head -1; git remote -v"])
    assert "ghp_SECRETTOKEN123" not in r.stdout + r.stderr
    assert "initial" in r.stdout  # git still reads the history inside


# -- 3. setuid files ----------------------------------------------------------------------------------

@pytest.mark.hostile("3: setuid-root shell left in the workspace")
def test_no_setuid_root_file_survives(bug_repo):
    r = run_repoloop(["exec", "--repo", str(bug_repo), "--sandbox", "bwrap", "--",
                      "id -u; cp /bin/sh ./sbash && chmod u+s,g+s ./sbash; ls -ln sbash"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] != "0"  # not root inside
    sb = bug_repo / "sbash"
    assert sb.exists()
    st = sb.stat()
    assert not st.st_mode & (stat.S_ISUID | stat.S_ISGID), oct(st.st_mode)
    # The checkout is given back to its owner.
    assert bug_repo.stat().st_uid == os.getuid() and (bug_repo / "calc" / "__init__.py").stat().st_uid == os.getuid()
    assert st.st_uid == os.getuid()


@pytest.mark.hostile("3: the command runs as root inside")
def test_commands_never_run_as_host_root(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    with BwrapSandbox(ws, limits=Limits(timeout=30)) as sb:
        r = sb.run("id -u; touch made")
        assert r.exit_code == 0, r
        assert r.stdout.strip() != "0"
        assert (ws / "made").stat().st_uid != 0  # while lent: the sandbox's uid, not root
    assert (ws / "made").stat().st_uid == os.getuid()  # given back


# -- 4. reads outside the workspace -------------------------------------------------------------------

@pytest.mark.hostile("4: read host files outside the workspace")
def test_host_files_outside_the_workspace_are_invisible(tmp_path, outside):
    secret = outside / "other-checkout" / "settings.py"
    secret.parent.mkdir()
    secret.write_text("API_TOKEN = 'TOPSECRET-42'\n")
    secret.chmod(0o644)
    ws = tmp_path / "ws"
    ws.mkdir()
    with BwrapSandbox(ws, limits=Limits(timeout=30)) as sb:
        r = sb.run(f"cat {secret}; ls {outside}; ls /mnt; cat /etc/ssl/private/* 2>&1; cat /etc/shadow")
    assert "TOPSECRET-42" not in r.stdout
    assert outside.name not in r.stdout


@pytest.mark.hostile("4: the checkout's untracked .env read through repoloop exec / run")
def test_untracked_secrets_of_the_checkout_are_hidden(fake_llm, tmp_path, outside):
    from tests.fake_llm import make_bug_repo

    repo = make_bug_repo(outside / "repo")  # not under /tmp, /root or /home: visible before the fix
    (repo / ".env").write_text("DB_PASSWORD=HUNTER2-SECRET\n")
    (repo / ".env").chmod(0o644)
    r = run_repoloop(["exec", "--repo", str(repo), "--sandbox", "bwrap", "--", "cat .env; cat calc/__init__.py"])
    assert "HUNTER2-SECRET" not in r.stdout
    assert "def add" in r.stdout  # the rest of the checkout is there
    assert (repo / ".env").read_text() == "DB_PASSWORD=HUNTER2-SECRET\n"  # untouched on the host
    fake_llm.add(text("Plan: look around."), call("run_command", {"command": f"cat {repo}/.env; ls {outside}"}),
                 call("finish", {"summary": "looked"}))
    proc, out = run_agent_cli(fake_llm, repo, "look", test_cmd=None)
    seen = "".join(str(r) for r in fake_llm.requests)
    assert "HUNTER2-SECRET" not in seen, "the model was sent the checkout's .env"


# -- 8. disk floods -----------------------------------------------------------------------------------

@pytest.mark.hostile("8: fill the disk through the workspace")
def test_workspace_disk_quota(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    with BwrapSandbox(ws, limits=Limits(timeout=300, disk_mb=64)) as sb:
        # Writes without end: only the quota can stop it (the timeout is far away).
        r = sb.run("i=0; while :; do i=$((i+1)); head -c 4000000 /dev/zero > f$i || exit 9; done")
        assert r.exit_code == 153 and not r.timed_out, r
        assert "disk quota" in r.note and "killed" in r.note, r
        r2 = sb.run("rm -f f*; echo ok")  # the agent can clean up and go on
        assert r2.exit_code == 0 and r2.stdout == "ok\n"


@pytest.mark.hostile("8: a write burst that ends between two quota checks")
def test_workspace_disk_quota_burst(tmp_path):
    """On a fast disk 240 MB land before the first poll: the command ends, and is still reported
    over quota (the agent must not read "all" as success)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    with BwrapSandbox(ws, limits=Limits(timeout=300, disk_mb=64)) as sb:
        r = sb.run("for i in 1 2 3 4 5 6; do head -c 40000000 /dev/zero > f$i || exit 9; done; echo all")
        assert r.exit_code == 153 and "disk quota" in r.note, r
        r2 = sb.run("rm -f f*; echo ok")
        assert r2.exit_code == 0 and r2.stdout == "ok\n", r2


@pytest.mark.hostile("8: fill the disk through /tmp")
def test_scratch_tmpfs_is_capped(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    with BwrapSandbox(ws, limits=Limits(timeout=60, tmp_mb=16)) as sb:
        r = sb.run("head -c 40000000 /dev/zero > /tmp/big; echo rc=$?; stat -c %s /tmp/big")
    assert "rc=0" not in r.stdout
    assert int(r.stdout.split()[-1]) <= 16 << 20


# -- the same against Docker ----------------------------------------------------------------------

@pytest.mark.docker
@pytest.mark.hostile("2/3/4: docker backend: .git rewrite, setuid, credentials")
def test_docker_backend_holds_the_same_line(docker_engine, bug_repo, marker):
    from repoloop.sandbox.docker_backend import DockerSandbox

    _git(bug_repo, "remote", "add", "origin", "https://user:ghp_SECRETTOKEN123@example.invalid/r.git")
    config = (bug_repo / ".git" / "config").read_bytes()
    with DockerSandbox(bug_repo, image=docker_engine.image, base_url=docker_engine.base_url,
                       limits=Limits(timeout=60, disk_mb=32)) as sb:
        r = sb.run(f"id -u; cat .git/config; echo '[core]' >> .git/config; "
                   f"echo 'fsmonitor = echo PWNED >> {marker}' >> .git/config; rm -rf .git; "
                   "cp /bin/sh ./sbash; chmod u+s ./sbash; echo end")
        assert r.stdout.splitlines()[0] != "0", r
        assert "ghp_SECRETTOKEN123" not in r.stdout
        assert "end" in r.stdout, r
        assert (bug_repo / "sbash").exists(), r
        flood = sb.run("i=0; while :; do i=$((i+1)); head -c 4000000 /dev/zero > f$i || exit 9; done")
        assert flood.exit_code == 153 and "disk quota" in flood.note, flood
    assert (bug_repo / ".git" / "config").read_bytes() == config
    _git(bug_repo, "status")
    assert not marker.exists()
    st = (bug_repo / "sbash").stat()
    assert not st.st_mode & stat.S_ISUID and st.st_uid == os.getuid()


@pytest.mark.hostile("3: repoloop exec killed with -9 while the checkout is lent")
def test_a_killed_exec_leaves_no_lent_checkout_behind(bug_repo, tmp_path):
    import signal
    import sys
    import time

    from tests.fake_llm import ROOT

    mode = bug_repo.stat().st_mode
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(tmp_path / "state")}
    proc = subprocess.Popen([sys.executable, "-m", "repoloop.cli", "exec", "--repo", str(bug_repo), "--sandbox",
                             "bwrap", "--", "touch started; sleep 600"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (bug_repo / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "exec never started its command"
            time.sleep(0.05)
        assert (bug_repo / "calc").stat().st_uid != os.getuid()  # lent right now
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    lent = (bug_repo / "calc" / "__init__.py").stat().st_uid
    assert lent != os.getuid()  # nothing could give it back
    r = run_repoloop(["exec", "--repo", str(bug_repo), "--sandbox", "bwrap", "--", "true"],
                     env={"XDG_STATE_HOME": str(tmp_path / "state")})
    assert r.returncode == 0, r.stderr
    for p in (bug_repo / "calc", bug_repo / "calc" / "__init__.py", bug_repo / "started"):
        assert p.stat().st_uid == os.getuid(), p
    assert bug_repo.stat().st_mode == mode


@pytest.mark.hostile("4: AGENTS.md committed as a symlink to a host secret, or a FIFO")
def test_project_files_the_host_reads_are_never_followed_out(fake_llm, tmp_path, outside):
    from tests.fake_llm import make_bug_repo

    secret = outside / "id_rsa"
    secret.write_text("-----BEGIN KEY----- SSHKEY-SECRET-991\n")
    repo = tmp_path / "repo"
    make_bug_repo(repo)
    (repo / "AGENTS.md").unlink()
    (repo / "AGENTS.md").symlink_to(secret)
    os.mkfifo(repo / "CONTRIBUTING.md")
    (repo / "pyproject.toml").symlink_to(secret)
    for args in (["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "links"]):
        assert _git(repo, *args).returncode == 0
    fake_llm.add(text("Plan: look."), call("finish", {"summary": "looked"}))
    proc, out = run_agent_cli(fake_llm, repo, "look around", test_cmd=None)
    assert proc.stdout.strip().startswith("{"), proc.stderr
    assert fake_llm.requests, proc.stderr
    assert all("SSHKEY-SECRET-991" not in str(r) for r in fake_llm.requests)
