"""Replay the security review's attack list and print one table: attack / contained.

Every attack is a test marked `@pytest.mark.hostile("<finding>: <attack>")` (tests/test_hostile_*.py):
each drives the real product (bubblewrap, Docker where an engine can run, `repoloop run` against a
scripted model server on 127.0.0.1, the indexer, the MCP server) and passes only when the attack
was contained. This script runs exactly those tests and tabulates them; a skipped attack (no
Docker engine, say) is reported as not tested, never as contained.

    .venv/bin/python benchmarks/hostile_bench.py [--out benchmarks/hostile_results.md] [-- PYTEST ARGS]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import OrderedDict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


class Tally:
    """A pytest plugin: each hostile test's attack name and outcome."""

    def __init__(self) -> None:
        self.attacks: dict[str, str] = {}  # nodeid -> attack
        self.outcomes: dict[str, str] = {}  # nodeid -> passed / failed / skipped
        self.reasons: dict[str, str] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            m = item.get_closest_marker("hostile")
            if m is not None and m.args:
                self.attacks[item.nodeid] = str(m.args[0])

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid not in self.attacks:
            return
        if report.when == "call" or report.outcome != "passed":
            prev = self.outcomes.get(report.nodeid)
            if prev in ("failed",):
                return
            self.outcomes[report.nodeid] = report.outcome
            if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
                self.reasons[report.nodeid] = str(report.longrepr[2])
            elif report.outcome == "failed":
                self.reasons[report.nodeid] = (report.longreprtext or "").strip().splitlines()[-1:][0][:160] \
                    if report.longreprtext else "failed"


def table(t: Tally) -> tuple[str, int, int, int]:
    rows: OrderedDict[str, list[tuple[str, str]]] = OrderedDict()
    for nodeid, attack in sorted(t.attacks.items(), key=lambda kv: (kv[1], kv[0])):
        rows.setdefault(attack, []).append((nodeid, t.outcomes.get(nodeid, "not run")))
    lines = ["| attack | tests | contained |", "|---|---|---|"]
    contained = failed = untested = 0
    for attack, tests in rows.items():
        outs = [o for _, o in tests]
        if any(o == "failed" for o in outs):
            verdict = "**NO**"
            failed += 1
        elif all(o == "passed" for o in outs):
            verdict = "yes"
            contained += 1
        else:
            verdict = "not tested (" + "; ".join(t.reasons.get(n, o) for n, o in tests if o != "passed")[:80] + ")"
            untested += 1
        names = ", ".join(sorted({n.split("::")[-1].split("[")[0] for n, _ in tests}))
        lines.append(f"| {attack} | {len(tests)} ({names}) | {verdict} |")
    return "\n".join(lines), contained, failed, untested


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="also write the table (markdown) here")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = ap.parse_args(argv)
    tally = Tally()
    t0 = time.monotonic()
    rc = pytest.main(["-q", "-p", "no:cacheprovider", "-m", "hostile", "tests", *args.pytest_args],
                     plugins=[tally])
    text, ok, bad, untested = table(tally)
    summary = (f"{ok} of {ok + bad + untested} attacks contained, {bad} not, {untested} not tested "
               f"({len(tally.attacks)} tests, {time.monotonic() - t0:.0f} s)")
    print("\n" + text + "\n\n" + summary)
    if args.out:
        args.out.write_text(text + "\n\n" + summary + "\n")
    return 0 if bad == 0 and rc in (0, 5) else 1


if __name__ == "__main__":
    sys.exit(main())
