"""Repeat detection, in one place: a weak model can loop (the same prose, empty replies, the same
read, the same failing call, finishing on failing tests) until its steps run out; these rules end
such a run early, with a reason that says which loop it was in.

Each method counts one kind of repetition and returns the reason to stop ("" to go on); the loop
decides when the stop takes effect (at the end of the step, after the turn's calls have run).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from repoloop.agent.llm import ToolCall


@dataclass
class RepeatGuard:
    repeat_limit: int  # the same failing call, the same unusable reply, empty replies: this many times
    stall_limit: int  # the same action, or no usable action, this many replies in a row
    failing: dict[str, int] = field(default_factory=dict)  # failing call or finish signature -> count
    replies: dict[str, int] = field(default_factory=dict)  # unusable reply (outcome and text) -> count
    no_action: int = 0  # replies in a row with nothing to run
    empty: int = 0  # empty replies in a row
    same_action: int = 0  # replies in a row asking for the same action as the one before
    last_action: str = ""

    def unusable(self, outcome: str, content: str | None) -> str:
        """A reply with nothing to run (`outcome` as the tool protocol read it)."""
        self.no_action += 1
        self.empty = self.empty + 1 if outcome == "empty" else 0
        if self.empty >= self.repeat_limit:
            return f"the model sent {self.empty} empty replies in a row"
        key = f"{outcome}:{(content or '').strip()}"
        self.replies[key] = self.replies.get(key, 0) + 1 if outcome != "empty" else 0
        if self.replies[key] >= self.repeat_limit:
            what = "the same reply" if outcome in ("prose", "native") else f"the same unusable reply ({outcome})"
            return f"the model repeated {what} {self.repeat_limit} times without acting"
        if self.no_action >= self.stall_limit:
            return f"the model sent {self.no_action} replies in a row without a usable tool call (last: {outcome})"
        return ""

    def acted(self, calls: list[ToolCall]) -> tuple[str, str]:
        """A reply with calls to run: (a note for the model, a reason to stop) when it asks for exactly
        what the previous reply did."""
        self.no_action = self.empty = 0
        sig = json.dumps([[c.name, normalize_args(c.arguments)] for c in calls])
        self.same_action = self.same_action + 1 if sig == self.last_action else 1
        self.last_action = sig
        if self.same_action >= self.stall_limit:
            return "", f"the model repeated the same action {self.same_action} times in a row ({calls[0].name})"
        if self.same_action >= 2:
            return (f"Note: this is the same action as your previous reply ({self.same_action} times in a row); it "
                    "will most likely give the same result. Do something else, or finish if the task is done."), ""
        return "", ""

    def failed_call(self, call: ToolCall) -> str:
        """A tool call that failed; the same one failing again and again ends the run."""
        if self._count(f"{call.name}:{normalize_args(call.arguments)}"):
            return f"the model repeated the same failing call {self.repeat_limit} times ({call.name})"
        return ""

    def refused_finish(self, tree: str) -> str:
        """`finish` refused because the tests fail on worktree `tree`; finishing again on the same
        failing state ends the run."""
        if self._count(f"finish@{tree}"):
            return f"the model called finish {self.repeat_limit} times with the tests failing"
        return ""

    def _count(self, sig: str) -> bool:
        self.failing[sig] = self.failing.get(sig, 0) + 1
        return self.failing[sig] >= self.repeat_limit


def normalize_args(raw: str) -> str:
    """Arguments in one canonical form, so that the same call with its keys reordered is the same."""
    try:
        return json.dumps(json.loads(raw), sort_keys=True)
    except (ValueError, TypeError, RecursionError):
        return (raw or "").strip() if isinstance(raw, str) else repr(raw)
