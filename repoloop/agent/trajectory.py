"""The run's trajectory: one JSON object per line in `.repoloop/runs/<id>.jsonl`, secrets redacted.

Every request (the messages added since the previous one), reply, tool call and result, verification,
commit and per-step timing is written as it happens and flushed, so a killed run still leaves a
readable record. Records carry `type` and `t` (seconds since the run started).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from repoloop.errors import RepoloopError

# Things that look like credentials, whatever key the user has.
_SECRET_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{12,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{12,}"),
    re.compile(r"(?i)((?:api[_-]?key|token|secret|password)\"?\s*[:=]\s*\"?)[A-Za-z0-9._\-]{12,}"),
]
REDACTED = "[REDACTED]"


class Redactor:
    """Replaces known secret values and credential-looking strings."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self.secrets = sorted({s for s in (secrets or []) if s and len(s) >= 6}, key=len, reverse=True)

    @classmethod
    def from_env(cls, extra: list[str] | None = None) -> Redactor:
        names = [k for k in os.environ if re.search(r"(?i)(api_?key|token|secret|password)", k)]
        return cls([os.environ[k] for k in names] + list(extra or []))

    def __call__(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, REDACTED)
        for pat in _SECRET_PATTERNS:
            text = pat.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
        return text


class Trajectory:
    """Append-only JSONL writer for one run."""

    def __init__(self, path: Path, redactor: Redactor | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.redact = redactor or Redactor()
        self._fh: TextIO = self.path.open("a", encoding="utf-8")
        self._t0 = time.time()

    def write(self, type: str, **fields: Any) -> None:
        rec = {"type": type, "t": round(time.time() - self._t0, 4), **fields}
        line = json.dumps(rec, ensure_ascii=False, default=str)
        self._fh.write(self.redact(line) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def runs_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "runs"


def read(path: Path) -> Iterator[dict]:
    """Records of a trajectory file; a torn last line (a killed run) is skipped."""
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def find(state_dir: Path, run_id: str) -> Path:
    """The trajectory of a run id (or a unique prefix of one)."""
    d = runs_dir(state_dir)
    exact = d / f"{run_id}.jsonl"
    if exact.exists():
        return exact
    matches = sorted(d.glob(f"{run_id}*.jsonl")) if d.is_dir() else []
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RepoloopError(f"no run {run_id!r} in {d}")
    raise RepoloopError(f"run id {run_id!r} is ambiguous: {', '.join(m.stem for m in matches[:5])}")
