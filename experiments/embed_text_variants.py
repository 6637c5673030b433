"""What to embed for long chunks, measured: the first N tokens of the chunk (what
`repoloop.indexer.embed.phase.embed_text` gives, the model truncating) vs a condensed text —
the signature, the docstring's first line, one line per comment block, then the code — so that
more of the body fits in the model's N word pieces.

    BENCH_WORK=/work/benchdata/devsig REPOLOOP_EMBED_MAX_TOKENS=128 BENCH_OUT=... \
        nice python experiments/embed_text_variants.py condensed dev --systems dense,fused --tag sig128

runs `localization.py` (all arguments after the variant name) with the embedding phase's
`embed_text` replaced. Keys are computed only for chunks without an `embed_keys` row, so first
`DELETE FROM embed_keys` in the copy's index.db; then only texts longer than LONG_CHARS get new
keys, and on a copy already embedded at the same length only those are embedded again.
The variant is a benchmark, not the product: the product embeds what `embed_text` says.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the localization harness
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repoloop.indexer.embed import phase as embed_phase  # noqa: E402

LONG_CHARS = 600  # ~128 word pieces of code; shorter texts are read whole either way
_COMMENT = re.compile(r"^\s*(#|//|/\*|\*)")
_DOC_OPEN = re.compile(r'^\s*[rRbBuU]{0,2}("""|\'\'\')')


def condense(body: str) -> str:
    """Signature, the docstring's first line, one line per comment block, code without blank lines."""
    out: list[str] = []
    in_doc: str | None = None
    doc_kept = False
    prev_comment = False
    for line in body.splitlines():
        s = line.strip()
        if in_doc is not None:  # inside a multi-line docstring: keep its first non-empty line only
            if not doc_kept and s and s != in_doc:
                out.append(line.replace(in_doc, ""))
                doc_kept = True
            if in_doc in s:
                in_doc = None
            continue
        m = _DOC_OPEN.match(line)
        if m:
            q = m.group(1)
            rest = s[s.index(q) + 3:]
            if q in rest:  # one-line docstring
                out.append(line)
            else:
                in_doc, doc_kept = q, bool(rest.strip())
                if rest.strip():
                    out.append(line)
            continue
        if _COMMENT.match(line):
            text = s.lstrip("/#*").strip()
            if not prev_comment and text:
                out.append(line)
                prev_comment = True
            continue
        prev_comment = False
        if s:
            out.append(line)
    return "\n".join(out)


def condensed_embed_text(text: str, symbol: str | None, module: str) -> str:
    local = symbol or ""
    if module and local.startswith(module + "."):
        local = local[len(module) + 1:]
    body = f"{local}\n{text}" if local else text
    if len(body) > LONG_CHARS:
        body = condense(body)
    return body[: embed_phase.MAX_EMBED_CHARS]


VARIANTS = {"condensed": condensed_embed_text, "head": embed_phase.embed_text}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in VARIANTS:
        sys.exit(f"usage: embed_text_variants.py {{{','.join(VARIANTS)}}} LOCALIZATION_ARGS...")
    embed_phase.embed_text = VARIANTS[sys.argv[1]]  # type: ignore[assignment]
    sys.argv = ["localization.py", *sys.argv[2:]]
    import localization

    localization.main()


if __name__ == "__main__":
    main()
