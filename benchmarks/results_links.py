"""Keep RESULTS.md's headline table pointing at its sections: rewrites the last column ("section",
written as a heading's leading words, `A → B` for a subsection B under section A, `A; B` for two)
as links to the GitHub anchors of those headings. Idempotent; run it after editing the table.

    .venv/bin/python benchmarks/results_links.py [benchmarks/RESULTS.md]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def _headings(lines: list[str]) -> list[tuple[int, int, str, str]]:
    """(line number, level, text, GitHub anchor) of every ##–#### heading."""
    out, seen = [], {}
    for i, line in enumerate(lines):
        m = re.match(r"^(#{2,4}) (.*)$", line)
        if m:
            text = m.group(2).strip()
            slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out.append((i, len(m.group(1)), text, slug if n == 0 else f"{slug}-{n}"))
    return out


def _anchor(heads: list[tuple[int, int, str, str]], spec: str) -> str:
    pos, hit = 0, None
    for j, part in enumerate(x.strip() for x in spec.split("→")):
        want = re.sub(r"\s*\(.*\)$", "", part)
        ok = [h for h in heads if h[0] >= pos and (j > 0 or h[1] == 2)]
        cands = [h for h in ok if h[2] == want or h[2].startswith(want + " (")] or [
            h for h in ok if h[2].startswith(want)]
        if not cands:
            raise SystemExit(f"no heading for {spec!r} (looking for {part!r})")
        hit = cands[0]
        pos = hit[0]
    assert hit is not None
    return hit[3]


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("RESULTS.md"))
    lines = path.read_text().split("\n")
    heads = _headings(lines)
    start = next(i for i, line in enumerate(lines) if line.startswith("| what |"))
    for i in range(start + 2, len(lines)):
        if not lines[i].startswith("|"):
            break
        cells = lines[i].rstrip().rstrip("|").rstrip().split(" | ")
        spec = _LINK.sub(r"\1", cells[-1])
        cells[-1] = "; ".join(f"[{s.strip()}](#{_anchor(heads, s.strip())})" for s in spec.split(";"))
        lines[i] = " | ".join(cells) + " |"
    path.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
