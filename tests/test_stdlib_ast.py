"""The tree-sitter parser against Python's own `ast` on real standard-library packages.

The oracle is independent of tree-sitter: every FunctionDef/AsyncFunctionDef/ClassDef with its
nested qualname (`json.decoder.JSONDecoder.decode`, `mod.func.inner`) and `lineno` (the `def`
line, decorators excluded).
"""

from __future__ import annotations

import ast
import sysconfig
import time
from pathlib import Path

from repoloop.indexer.parse.parser import parse_source

PACKAGES = (
    "json", "email", "asyncio", "http", "logging", "unittest", "xml", "importlib", "concurrent",
    "multiprocessing", "urllib", "tkinter", "sqlite3", "ctypes", "idlelib",
)
DEF_KINDS = {"function", "method", "class"}


def _oracle(tree: ast.Module, module: str) -> dict[tuple[str, int], int]:
    """(qualname, lineno) -> end_lineno of every function and class."""
    out: dict[tuple[str, int], int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                q = f"{prefix}.{child.name}" if prefix else child.name
                out[(q, child.lineno)] = child.end_lineno or child.lineno
                visit(child, q)
            else:
                visit(child, prefix)

    visit(tree, module)
    return out


def test_stdlib_definitions_match_ast() -> None:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for pkg in PACKAGES for p in (root / pkg).rglob("*.py") if "test" not in p.parts[-2:-1])
    files += sorted(root.glob("*.py"))  # the top-level modules (typing, argparse, ...)
    assert len(files) > 100
    expected: dict[tuple[str, int], int] = {}
    got: dict[tuple[str, int], int] = {}
    t0 = time.perf_counter()
    parse_seconds = 0.0
    for f in files:
        src = f.read_bytes()
        rel = f.relative_to(root).as_posix()
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue  # e.g. deliberately broken test data: no oracle
        mod = rel[:-3].replace("/", ".").removesuffix(".__init__")
        expected.update(_oracle(tree, mod))
        t1 = time.perf_counter()
        parsed = parse_source(rel, src, "python")
        parse_seconds += time.perf_counter() - t1
        assert parsed.module == mod
        got.update({(s.qualname, s.start_line): s.end_line for s in parsed.symbols if s.kind in DEF_KINDS})
    matched = expected.keys() & got.keys()
    found = len(matched)
    ratio = found / len(expected)
    extra = got.keys() - expected.keys()
    # end lines: tree-sitter may count trailing comments of a body in, ast stops at the last statement
    end_ratio = sum(expected[k] == got[k] for k in matched) / max(found, 1)
    print(
        f"\nstdlib vs ast: {found}/{len(expected)} = {ratio:.4f} definitions matched "
        f"(qualname + line), {len(extra)} extra, end lines equal {end_ratio:.4f}; "
        f"{len(files)} files parsed in {parse_seconds:.1f}s "
        f"(total {time.perf_counter() - t0:.1f}s)"
    )
    assert len(expected) > 5000
    assert ratio >= 0.99, sorted(expected.keys() - got.keys())[:20]
    assert end_ratio >= 0.99
    # tree-sitter should not invent definitions either (lambdas assigned to names are extra by design)
    assert len(extra) <= 0.01 * len(expected), sorted(extra)[:20]
