"""The `repoloop` command line: thin. Parses arguments, calls the package, prints.

Each command group lives in its own module with `register(subparsers)`; heavy imports (torch,
chromadb, the agent) happen inside handlers, so `repoloop search --lexical` starts fast.
Exit codes: 0 success, 1 the job failed, 2 usage or input error (one line on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
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
    try:
        rc = args.func(args)
    except RepoloopError as e:
        from repoloop.agent.trajectory import Redactor  # a message may quote a key (a server's 401)

        print(f"repoloop: error: {Redactor.from_env()(str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("repoloop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
