"""The `repoloop` command line: thin. Parses arguments, calls the package, prints.

Each command group lives in its own module with `register(subparsers)`; heavy imports (torch,
chromadb, the agent) happen inside handlers, so `repoloop search --lexical` starts fast.
Exit codes: 0 success, 1 the job failed or found nothing, 2 usage, input or environment error.
Every error is one line on stderr that says what failed, where and what to do; a traceback only
with `--debug` (or REPOLOOP_DEBUG=1), never by default.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Sequence

from repoloop.errors import RepoloopError

# Modules registering subcommands, in help order.
_COMMAND_MODULES = (
    "repoloop.cli.index_cmds",  # index, status, outline, symbol
    "repoloop.cli.graph_cmds",  # deps, map
    "repoloop.cli.search_cmds",  # search, context
    "repoloop.cli.agent_cmds",  # run, runs
    "repoloop.cli.sandbox_cmds",  # exec
    "repoloop.cli.serve_cmds",  # serve, watch
    "repoloop.cli.tags_cmds",  # tags
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors: one line, exit 2
        self.exit(2, f"repoloop: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(prog="repoloop", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error (also REPOLOOP_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:  # a command group not written yet
            if e.name != name:
                raise
            continue
        mod.register(sub)
    for p in set(sub.choices.values()):  # `repoloop search --debug ...` as well as `repoloop --debug search`
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _version() -> str:
    from repoloop import __version__

    return f"repoloop {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or os.environ.get("REPOLOOP_DEBUG", "") not in ("", "0")
    if not debug:
        threading.excepthook = _thread_error
    try:
        rc = args.func(args)
    except RepoloopError as e:
        if debug:
            import traceback

            traceback.print_exc()
        _error(str(e))
        return 2
    except KeyboardInterrupt:
        print("repoloop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 - whatever breaks reaches the user as one line, not a traceback
        if debug:
            import traceback

            traceback.print_exc()
        code, line = describe_failure(args, e)
        _error(line + ("" if debug else " (`repoloop --debug ...` or REPOLOOP_DEBUG=1 shows the traceback)"))
        return code
    return int(rc or 0)


def _error(message: str) -> None:
    from repoloop.agent.trajectory import Redactor  # a message may quote a key (a server's 401)

    text = " ".join(Redactor.from_env()(message).split())  # one line, whatever the message held
    print(f"repoloop: error: {text}", file=sys.stderr)


def describe_failure(args: argparse.Namespace, e: BaseException) -> tuple[int, str]:
    """(exit code, one line) for an exception no command turned into a RepoloopError: what failed
    (the command and the error), where (the file the error names, else the repository or index) and
    what to do. A file, disk or database the environment denies is exit 2; anything else is a
    failed job (1), which is a bug of repoloop's to report."""
    import sqlite3

    cmd = f"`repoloop {args.command}`"
    what = f"{type(e).__name__}: {e}".strip().rstrip(":")
    repo = os.path.abspath(getattr(args, "repo", None) or getattr(args, "path", None) or os.getcwd())
    where = getattr(e, "filename", None) or repo
    if isinstance(e, sqlite3.Error):
        idx = os.path.abspath(getattr(args, "index_dir", None) or os.path.join(repo, ".repoloop"))
        return 2, (f"{cmd} failed on the index {idx}: {what}; if it is damaged, remove it and run "
                   "`repoloop index` again")
    if isinstance(e, OSError):
        return 2, f"{cmd} failed: {what} (at {where}); check that the path exists and is readable/writable"
    if isinstance(e, MemoryError):
        return 2, f"{cmd} ran out of memory (in {where})"
    return 1, f"{cmd} failed (in {where}): {what}; this is a bug in repoloop, please report it"


def _thread_error(a: threading.ExceptHookArgs) -> None:
    """A background thread's exception (a watcher, a server's worker) as one line, not a traceback."""
    if a.exc_type is SystemExit:
        return
    name = a.thread.name if a.thread is not None else "a thread"
    _error(f"{name}: {a.exc_type.__name__}: {a.exc_value} (REPOLOOP_DEBUG=1 shows the traceback)")


if __name__ == "__main__":
    sys.exit(main())
