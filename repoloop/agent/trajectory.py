"""The run's trajectory: one JSON object per line in `.repoloop/runs/<id>.jsonl`, secrets redacted.

Every request (the messages added since the previous one), reply, tool call and result, verification,
commit and per-step timing is written as it happens and flushed, so a killed run still leaves a
readable record. Records carry `type` and `t` (seconds since the run started).

No single field is stored larger than FIELD_CAP bytes: a longer string keeps its head and tail
around a marker, and the record gets `<field>_bytes` with the original size (a 60 MB model reply
is a ~256 KiB record, not a 60 MB one). Secrets are redacted before the cut, so a cut can never
leave half a key.

`Redactor` is the one redaction function for everything repoloop prints or stores about a run:
the trajectory, `--json` output, messages on stderr and `repoloop runs show`.
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
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-+/=]{12,}"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:basic\s+|token\s+)?)(?!bearer\s)[A-Za-z0-9._\-+/=]{12,}"),
    re.compile(r"(?i)((?:api[_-]?key|token|secret|password)[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._\-]{12,}"),
]
REDACTED = "[REDACTED]"
FIELD_CAP = 256 * 1024  # bytes (UTF-8) of one field of a trajectory record


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

    def deep(self, value: Any) -> Any:
        """`value` (JSON-like: dicts, lists, strings, numbers) with every string redacted."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {self(k) if isinstance(k, str) else k: self.deep(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.deep(v) for v in value]
        return value


def cap_text(text: str, cap: int = FIELD_CAP, redact: Any = None) -> tuple[str, int | None]:
    """`text` redacted (with `redact`) and cut to at most `cap` UTF-8 bytes (head and tail around a
    marker), with its original size in bytes; (text, None) when it fits. A long text is cut before it
    is redacted (a 60 MB reply is not scanned whole), with a margin around each cut that is dropped
    afterwards, so no secret that straddled a cut survives in part."""
    r = redact or (lambda x: x)
    if len(text) <= cap // 4:  # even 4-byte characters fit
        return r(text), None
    size = _utf8_len(text)
    if size <= cap:
        return r(text), None
    budget = cap - 256  # bytes for head and tail (the marker is short)
    hb, tb = budget * 3 // 4, budget // 4
    margin = 4096
    head, tail = r(text[: hb + margin]), r(text[-(tb + margin):])
    if len(head) < hb + margin // 2 or len(tail) < tb + margin // 2:  # redaction ate the margin: do it all
        whole = r(text)
        head, tail = whole[: hb + margin], whole[-(tb + margin):]
    head = head[:hb].encode("utf-8", "surrogatepass")[:hb].decode("utf-8", "ignore")
    tail = tail[-tb:].encode("utf-8", "surrogatepass")[-tb:].decode("utf-8", "ignore")
    return f"{head}\n[... repoloop cut this field: {size:,} bytes in all ...]\n{tail}", size


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def cap_fields(fields: dict[str, Any], cap: int = FIELD_CAP, redact: Any = None) -> dict[str, Any]:
    """Each value redacted and at most about `cap` bytes: long strings (at any depth) cut, with
    `<key>_bytes` recorded beside them; a container still too large after that is stored as its cut
    JSON text (and `<key>_cut: true`)."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, str):
            value, size = cap_text(value, cap, redact)
            out[key] = value
            if size is not None:
                out[f"{key}_bytes"] = size
            continue
        value = _cap_strings(value, cap, redact)
        if isinstance(value, (dict, list)):
            dumped = json.dumps(value, ensure_ascii=False, default=str)
            if len(dumped) > cap // 4:
                text, size = cap_text(dumped, cap)
                if size is not None:
                    out[key] = text
                    out[f"{key}_bytes"] = size
                    out[f"{key}_cut"] = True
                    continue
        out[key] = value
    return out


def _cap_strings(value: Any, cap: int, redact: Any) -> Any:
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if isinstance(v, str):
                v, size = cap_text(v, cap, redact)
                if size is not None:
                    out[f"{k}_bytes"] = size
                out[k] = v
            else:
                out[k] = _cap_strings(v, cap, redact)
        return out
    if isinstance(value, (list, tuple)):
        return [cap_text(v, cap, redact)[0] if isinstance(v, str) else _cap_strings(v, cap, redact) for v in value]
    return value


class Trajectory:
    """Append-only JSONL writer for one run."""

    def __init__(self, path: Path, redactor: Redactor | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.redact = redactor or Redactor()
        self._fh: TextIO = self.path.open("a", encoding="utf-8")
        self._t0 = time.time()

    def write(self, type: str, **fields: Any) -> None:
        fields = cap_fields(fields, FIELD_CAP, self.redact)
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
