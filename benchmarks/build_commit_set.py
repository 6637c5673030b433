"""Build a dev.jsonl-style commit-message localization set from one repository's history.

The recipe of /work/shared/bench/README.md, for repositories in other languages (Go, Rust, Java,
TypeScript, C, C++): newest commits first (every non-merge commit reachable from HEAD, in
topological order — a simplification of "first-parent, merges replaced by the commits they
brought in"), kept when the cleaned message has >= 8 words and the subject >= 4, 1-4 source files
changed, all modified (not added/deleted) and present at HEAD under the same path (renames not
followed: a simplification), <= 300 changed lines, not only comment lines, not a chore, not a
near-duplicate message, not naming a gold file's path or file name; fix_survival >= 0.5. Fix-like
subjects first, behaviour changes fill up to --max (40).

Gold symbols: the innermost definitions (functions, methods, types) whose lines the commit changed in
the parent version, found by repoloop's own tree-sitter parser (`parse_source`, not the regex +
brace matching of the README's non-Python sets), kept only when a definition of the same
module-relative name is in the same file at HEAD; `gold_symbol_locs` are its lines at HEAD.

Only commit metadata is written (sha, subject, message, paths, symbol names and line numbers): no code.

    python benchmarks/build_commit_set.py --git /work/.mirror/google+gson/repo --repo google/gson \\
        --out benchmarks/commit_sets/google__gson.jsonl [--max 40] [--scan 3000]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from repoloop.indexer.parse.languages import HEADER_SNIFF_BYTES, detect_language  # noqa: E402
from repoloop.indexer.parse.parser import parse_source  # noqa: E402
from repoloop.indexer.testpaths import is_test_path  # noqa: E402

CODE_LANGS = {"go", "rust", "java", "typescript", "tsx", "javascript", "c", "cpp", "python"}
NOT_SOURCE = re.compile(
    r"(^|/)(docs?|examples?|samples?|scripts?|benches|benchmarks?|fuzz|vendor|third_party|thirdparty|"
    r"testdata|test-data|fixtures?|generated|dist|build|single_include|tools?|ci|\.github|integration|"
    r"e2e|spec|specs|perf|__tests__|test|tests|testing)/"
    r"|(_test|\.test|\.spec|_tests|Test|Tests)\.\w+$|(^|/)(parser|lexer)\.[ch]$|\.d\.ts$|(^|/)build\.rs$")
CHORE = re.compile(
    r"^(chore|docs?|ci|build|style|refactor|test|tests|release|bump|revert|merge|lint|typo)\b|"
    r"\b(bump|release v?\d|changelog|typo|readme|version \d|update dependencies|prepare \d|cargo fmt|"
    r"go mod tidy|gofmt|rustfmt|clippy|formatting|reformat|copyright|license)\b", re.I)
FIX = re.compile(r"\b(fix(e[sd])?|bug|error|crash|panic|handle|handling|incorrect|wrong|should|broken|"
                 r"regression|fail(s|ing|ure)?|issue|avoid|prevent|correct)\b", re.I)
TRAILER = re.compile(r"^(signed-off-by|co-authored-by|reviewed-by|acked-by|tested-by|reported-by|"
                     r"change-id|cc|fixes|closes|resolves|see|refs?|pr-url|pull request):", re.I)
URL = re.compile(r"https?://\S+")
ISSUE_REF = re.compile(r"\(?#\d+\)?|\bgh-\d+\b|\b[A-Z]{2,}-\d+\b")
COMMENT = re.compile(r"^\s*(//|/\*|\*|#(?!include|define|if|else|endif|pragma)|\*/)")


def git(gd: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", gd, *args], capture_output=True, text=True,
                          errors="replace", check=True).stdout


def blob(gd: str, rev: str, path: str) -> bytes | None:
    p = subprocess.run(["git", "--git-dir", gd, "show", f"{rev}:{path}"], capture_output=True)
    return p.stdout if p.returncode == 0 else None


def clean_message(msg: str) -> tuple[str, str]:
    lines = []
    for ln in msg.splitlines():
        if TRAILER.match(ln.strip()):
            continue
        lines.append(ln)
    text = "\n".join(lines)
    text = URL.sub("", text)
    text = ISSUE_REF.sub("", text)
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    subject = paras[0] if paras else ""
    subject = re.sub(r"\s+([,.:;])", r"\1", subject).strip(" -:")
    body = "\n".join(paras[1:])
    query = (subject + ("\n" + body if body else ""))[:1200]
    return subject, query


def is_source(path: str) -> bool:
    lang = detect_language(path)
    return lang in CODE_LANGS and not is_test_path(path) and not NOT_SOURCE.search(path)


def hunks(gd: str, parent: str, commit: str, path: str) -> tuple[list[int], list[str], int]:
    """(parent lines touched, added lines, changed line count) of one file's diff."""
    out = git(gd, "diff", "-U0", "--no-color", parent, commit, "--", path)
    touched: list[int] = []
    added: list[str] = []
    n = 0
    changed_text: list[str] = []
    for ln in out.splitlines():
        m = re.match(r"@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@", ln)
        if m:
            start, count = int(m[1]), int(m[2]) if m[2] is not None else 1
            touched += list(range(start, start + count)) if count else [start, start + 1]
            continue
        if ln.startswith(("+++", "---")):
            continue
        if ln.startswith("+"):
            added.append(ln[1:])
            changed_text.append(ln[1:])
            n += 1
        elif ln.startswith("-"):
            changed_text.append(ln[1:])
            n += 1
    only_comments = all(not x.strip() or COMMENT.match(x) for x in changed_text)
    return touched, added, (-1 if only_comments else n)


def definitions(path: str, source: bytes) -> list:
    lang = detect_language(path, source[:HEADER_SNIFF_BYTES])
    if lang is None:
        return []
    try:
        pf = parse_source(path, source, lang)
    except Exception:  # noqa: BLE001 - a file the parser cannot read gives no symbols
        return []
    mod = pf.module
    out = []
    for s in pf.symbols:
        if s.kind in ("variable", "field", "constant", "import", "module", "namespace"):
            continue
        rel = s.qualname
        for sep in (".", "::"):
            if mod and rel.startswith(mod + sep):
                rel = rel[len(mod) + len(sep):]
                break
        rel = rel.replace("::", ".")  # Rust / C++ paths: the README's dotted `Type.method` form
        out.append((rel, s))
    return out


def innermost(defs: list, line: int):
    best = None
    for rel, s in defs:
        if s.start_line <= line <= s.end_line and (best is None or s.end_line - s.start_line < best[1].end_line - best[1].start_line):
            best = (rel, s)
    return best


def build(gd: str, repo: str, head: str, max_n: int, scan: int) -> list[dict]:
    head_paths = set(git(gd, "ls-tree", "-r", "--name-only", head).splitlines())
    log = git(gd, "log", "--no-merges", "--topo-order", f"-{scan}", "--format=%H%x00%P%x00%aI%x00%B%x01", head)
    fixes: list[dict] = []
    others: list[dict] = []
    seen_msgs: set[str] = set()
    head_cache: dict[str, list] = {}
    for entry in log.split("\x01"):
        entry = entry.strip("\n")
        if not entry:
            continue
        sha, parents, date, msg = entry.split("\x00", 3)
        if len(parents.split()) != 1:
            continue
        parent = parents.split()[0]
        subject, query = clean_message(msg)
        if len(subject.split()) < 4 or len(query.split()) < 8 or CHORE.search(subject):
            continue
        key = re.sub(r"\W+", " ", subject.lower()).strip()
        if key in seen_msgs:
            continue
        status = git(gd, "diff", "--name-status", "--no-renames", parent, sha).split("\n")
        rows = [x.split("\t") for x in status if x.strip()]
        src = [r for r in rows if is_source(r[-1])]
        if not 1 <= len(src) <= 4 or any(r[0] != "M" for r in src) or any(r[1] not in head_paths for r in src):
            continue
        files = [r[1] for r in src]
        low = query.lower()
        if any(f.lower() in low or f.rsplit("/", 1)[-1].lower() in low for f in files):
            continue
        total, added_all, touched_by = 0, [], {}
        comment_only = True
        for f in files:
            touched, added, n = hunks(gd, parent, sha, f)
            if n >= 0:
                comment_only = False
            total += abs(n)
            added_all += [(f, a) for a in added]
            touched_by[f] = touched
        if comment_only or total > 300 or total == 0:
            continue
        nontrivial = [(f, a.strip()) for f, a in added_all if len(a.strip()) >= 8 and not COMMENT.match(a)]
        heads = {f: (blob(gd, head, f) or b"").decode("utf-8", "replace") for f in files}
        if nontrivial:
            survival = sum(1 for f, a in nontrivial if a in heads[f]) / len(nontrivial)
        else:
            survival = 1.0
        if survival < 0.5:
            continue
        gold_syms, locs, parent_syms = [], [], []
        for f in files:
            old = blob(gd, parent, f)
            if old is None:
                continue
            pdefs = definitions(f, old)
            if f not in head_cache:
                head_cache[f] = definitions(f, heads[f].encode())
            hdefs = {rel: s for rel, s in head_cache[f]}
            # The same definition under another prefix (C++ namespaces written through macros at
            # HEAD, `namespace.x` vs `nlohmann.detail.x`): matched by its last name when unique.
            by_last: dict[str, list[str]] = {}
            for rel in hdefs:
                by_last.setdefault(rel.rsplit(".", 1)[-1], []).append(rel)
            got = []
            for line in touched_by[f]:
                d = innermost(pdefs, line)
                if d and d[0] not in got:
                    got.append(d[0])
            for rel in got:
                parent_syms.append(f"{f}::{rel}")
                if rel not in hdefs and len(by_last.get(rel.rsplit(".", 1)[-1], [])) == 1:
                    rel = by_last[rel.rsplit(".", 1)[-1]][0]
                if rel in hdefs and rel not in gold_syms:
                    gold_syms.append(rel)
                    s = hdefs[rel]
                    locs.append({"path": f, "symbol": rel, "start_line": s.start_line, "end_line": s.end_line})
        seen_msgs.add(key)
        owner, name = repo.split("/")
        rec = {"id": f"{owner}__{name}-{sha[:10]}", "repo": repo, "commit": sha, "parent": parent, "head": head,
               "date": date, "query": query, "query_subject": subject, "gold_files": files,
               "gold_files_at_commit": files, "gold_symbols": gold_syms, "gold_symbol_locs": locs,
               "gold_symbols_parent": parent_syms, "is_bugfix": bool(FIX.search(subject)),
               "changed_lines": total, "fix_survival": round(survival, 3),
               "language": detect_language(files[0])}
        (fixes if rec["is_bugfix"] else others).append(rec)
        if len(fixes) >= max_n:
            break
    out = fixes[:max_n]
    out += others[: max_n - len(out)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--git", required=True, help="a bare git directory with full history")
    ap.add_argument("--repo", required=True, help="owner/name")
    ap.add_argument("--head", default="HEAD")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max", type=int, default=40)
    ap.add_argument("--scan", type=int, default=3000, help="newest commits looked at")
    a = ap.parse_args()
    head = git(a.git, "rev-parse", a.head).strip()
    recs = build(a.git, a.repo, head, a.max, a.scan)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")
    n_sym = sum(1 for r in recs if r["gold_symbols"])
    print(f"{a.repo}: {len(recs)} records ({sum(r['is_bugfix'] for r in recs)} fix-like, {n_sym} with gold symbols)"
          f" at {head[:12]} -> {a.out}")


if __name__ == "__main__":
    main()
