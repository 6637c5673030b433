"""Sandboxes for agent commands: one protocol (`Sandbox`), backends bwrap, docker and local.

Use `open_sandbox(kind, workspace)`; kind None picks docker if an engine answers, else bwrap.
"""

from repoloop.sandbox.base import TIMEOUT_EXIT_CODE, Command, Limits, RunResult, Sandbox, SandboxBase
from repoloop.sandbox.select import KINDS, choose_kind, open_sandbox

__all__ = [
    "KINDS",
    "TIMEOUT_EXIT_CODE",
    "Command",
    "Limits",
    "RunResult",
    "Sandbox",
    "SandboxBase",
    "choose_kind",
    "open_sandbox",
]
