"""`repoloop tags`: the fast definitions path against the index's symbols, Python's `ast`, and the
ctags file format; bad input skipped, never fatal. Real tree-sitter, real SQLite, real subprocesses."""

from __future__ import annotations

import ast
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from repoloop.indexer.pipeline import index_repo
from repoloop.indexer.store import DB_NAME
from repoloop.indexer.tags import extract as tags_mod
from repoloop.indexer.tags.extract import extract_file, extract_tags

FILES = {
    "pkg/__init__.py": "from .core import Engine\n",
    "pkg/core.py": (
        "import os\n\nLIMIT = 10\nhandler = lambda x: x\n\n\nclass Engine(Base):\n    class Cfg:\n        pass\n\n"
        "    def start(self, n):\n        def inner():\n            return helper(n)\n        return inner()\n\n"
        "    @property\n    def name(self):\n        return 'e'\n\n\ndef helper(n):\n    return n * 2\n\n"
        "if os.name == 'nt':\n    def plat():\n        pass\nelse:\n    def plat():\n        pass\n\ntype Vec = list[float]\n"
    ),
    "web/app.js": (
        "const MAX = 3;\nfunction render(x) {\n  return x;\n}\nclass View extends Base {\n  show() { render(1); }\n}\n"
        "const add = (a, b) => a + b;\nView.prototype.hide = function () {};\n"
    ),
    "web/types.ts": (
        "export interface Shape { area(): number; }\nexport class Circle implements Shape {\n"
        "  area(): number { return 1; }\n}\nexport enum Color { Red }\nexport type Id = string;\n"
        "namespace NS { export function f() {} }\n"
    ),
    "svc/main.go": (
        'package main\n\nimport "fmt"\n\ntype Server struct{ n int }\n\ntype Runner interface{ Run() }\n\n'
        "func (s *Server) Start() {\n\tfmt.Println(s.n)\n}\n\nfunc main() {\n\t(&Server{}).Start()\n}\n"
        "const Port = 80\n"
    ),
    "crate/src/lib.rs": (
        "pub struct Point { x: i32 }\nimpl Point {\n    pub fn new() -> Self { Point { x: 0 } }\n}\n"
        "pub trait Shape { fn area(&self) -> f64; }\npub enum E { A }\nmod inner { pub fn f() {} }\n"
        "macro_rules! m { () => {} }\n"
    ),
    "java/com/acme/App.java": (
        "package com.acme;\npublic class App {\n  static class Inner { void run() {} }\n"
        "  public static void main(String[] a) { new App().go(); }\n  void go() {}\n}\n"
        "interface Greeter { void greet(); }\n"
    ),
    "cpp/geo.cpp": (
        "namespace geo {\nclass Shape {\n public:\n  virtual double area() const;\n  int n;\n};\n"
        "double Shape::area() const { return 0; }\nstruct P { int x; };\n}\nint main() { return 0; }\n"
    ),
    "c/util.c": "#define MAX 3\nstruct pt { int x; };\nstatic int add(int a, int b) { return a + b; }\n",
    "rb/billing.rb": (
        "module Billing\n  class Invoice < Base\n    MAX = 3\n    def total\n      items.sum\n    end\n"
        "    def self.build(x)\n      new(x)\n    end\n  end\nend\ndef top; end\n"
    ),
    "php/User.php": (
        "<?php\nnamespace App\\Models;\nclass User extends Model {\n  public function save() { return 1; }\n}\n"
        "function helper() {}\ninterface HasName { public function name(); }\n"
    ),
    "cs/Home.cs": (
        "namespace Acme.Web {\n  public class Home {\n    public string Get(int id) { return \"\"; }\n"
        "    class Inner { void Run() {} }\n  }\n  public interface IRepo { void Save(); }\n}\n"
    ),
    "README.md": "# Demo\n",
}
# Files the tags path must survive (the index keeps or skips them too).
BAD = {
    "bad/broken.py": b"def ok():\n    pass\n\ndef broken(:\n    return\n\nclass After:\n    def m(self): pass\n",
    "bad/binary.py": b"\x00\x01\x02def nope(): pass\n" * 50,
    "bad/latin1.py": b"# caf\xe9\ndef cafe():\n    return '\xe9'\n",
    "bad/empty.py": b"",
    "bad/minified.js": b"var a=1;" * 2000,
}


def make_tree(root: Path, files: dict[str, str] = FILES, bad: dict[str, bytes] = BAD) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for rel, data in bad.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "repoloop.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def index_symbols(root: Path) -> set[tuple]:
    index_repo(root, root / ".repoloop", embed=False)
    with sqlite3.connect(root / ".repoloop" / DB_NAME) as conn:
        rows = conn.execute(
            "SELECT f.path, s.name, s.qualname, s.kind, s.start_line, s.end_line, s.parent"
            " FROM symbols s JOIN files f ON f.id = s.file_id").fetchall()
    return set(rows)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("tags"))


@pytest.fixture(scope="module")
def indexed(tree: Path) -> set[tuple]:
    return index_symbols(tree)


def as_rows(result: tags_mod.TagsResult) -> set[tuple]:
    return {(t.path, t.name, t.qualname, t.kind, t.line, t.end_line, t.scope) for t in result.tags}


@pytest.mark.parametrize("jobs", [1, 2])
def test_tags_equal_index_symbols(tree: Path, indexed: set[tuple], jobs: int) -> None:
    """Same names, qualnames, kinds, lines and parents as the index, in every language."""
    res = extract_tags(tree, jobs=jobs, reuse=False)
    got = as_rows(res)
    assert got == indexed
    langs = {Path(p).suffix for p, *_ in got}
    assert langs >= {".py", ".js", ".ts", ".go", ".rs", ".java", ".cpp", ".c", ".rb", ".php", ".cs"}
    assert len(res.tags) == len(got)  # no duplicates
    assert ("pkg/core.py", "start", "pkg.core.Engine.start", "method", 11, 14, "pkg.core.Engine") in got
    assert ("svc/main.go", "Start", "svc.Server.Start", "method", 9, 11, "svc.Server") in got
    assert {r[1] for r in got if r[0] == "bad/broken.py"} >= {"ok", "After", "m"}  # partial parse kept
    assert ("bad/latin1.py", "cafe", "bad.latin1.cafe", "function", 2, 3, None) in got


def test_fresh_index_reused_for_unchanged_files(tmp_path: Path) -> None:
    """Definitions from the index equal a cold parse (local scopes and scope kinds included); a file
    changed after indexing, and everything under another parser fingerprint, is parsed again."""
    root = make_tree(tmp_path / "t")
    backdate(root)
    index_repo(root, root / ".repoloop", embed=False)
    cold = extract_tags(root, jobs=1, reuse=False)
    warm = extract_tags(root, jobs=1)
    assert warm.reused == warm.files == cold.files and cold.reused == 0
    assert sorted(warm.tags, key=repr) == sorted(cold.tags, key=repr)
    assert any(t.local_scope for t in warm.tags) and any(t.scope_kind == "struct" for t in warm.tags)
    (root / "pkg" / "util.py").write_text("def slug():\n    pass\n")  # new and changed files
    (root / "pkg" / "core.py").write_text((root / "pkg" / "core.py").read_text() + "\ndef added():\n    pass\n")
    again = extract_tags(root, jobs=1)
    assert again.reused == warm.reused - 1 and again.files == warm.files + 1
    assert {"slug", "added"} <= {t.name for t in again.tags}
    with sqlite3.connect(root / ".repoloop" / DB_NAME) as conn:
        conn.execute("UPDATE meta SET value='other' WHERE key='parser_fingerprint'")
    assert extract_tags(root, jobs=1).reused == 0


def backdate(root: Path, seconds: float = 3600) -> None:
    t = time.time() - seconds
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            os.utime(os.path.join(dirpath, n), (t, t))


def test_pool_from_a_threaded_process(tree: Path, indexed: set[tuple]) -> None:
    """A caller with threads (a server) gets a forkserver pool, and the same tags."""
    import threading

    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert len(list(tags_mod._file_rows([("a", "/nonexistent", False)] * 20, 2, "/", 1 << 20))) == 20
        assert as_rows(extract_tags(tree, jobs=2, reuse=False)) == indexed
    finally:
        stop.set()
        t.join()


def test_bad_files_skipped_not_fatal(tree: Path) -> None:
    res = extract_tags(tree, jobs=2, reuse=False)
    assert res.skipped.get("binary") == 1
    assert res.skipped.get("minified_or_generated") == 1
    paths = {t.path for t in res.tags}
    assert "bad/binary.py" not in paths and "bad/minified.js" not in paths
    assert res.files == len(FILES) - 1 + len(BAD) - 2  # README has no grammar; binary and minified skipped


def test_python_walk_equals_def_query(tree: Path) -> None:
    """The statement walk used for Python finds exactly what the handler's def query captures."""
    samples = [tree / p for p in ("pkg/core.py", "bad/broken.py", "bad/latin1.py")]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    samples += sorted((stdlib / "asyncio").glob("*.py"))[:15] + [stdlib / "typing.py", stdlib / "argparse.py"]
    total = 0
    for f in samples:
        data = f.read_bytes().decode("utf-8", "replace").encode()
        fast, _ = extract_file(f.name, data, "python")
        via_query, _ = extract_file(f.name, data, "python", refs=True)  # refs force the query path
        assert fast == via_query, f
        total += len(fast)
    assert total > 500


def test_ctags_file_format(tree: Path) -> None:
    out = tree / "tags"
    r = run_cli("tags", str(tree))
    assert r.returncode == 0, r.stderr
    assert "tags from" in r.stderr
    lines = out.read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("!_TAG_")]
    body = lines[len(header):]
    assert lines[: len(header)] == header and len(header) >= 2
    assert "!_TAG_FILE_SORTED\t1\t" in "\n".join(header) + "\t"
    assert body == sorted(body) and body
    res = extract_tags(tree, jobs=1)
    assert len(body) == len(res.tags)
    for ln in body:
        fields = ln.split("\t")
        assert len(fields) >= 4, ln
        name, path, addr, kind = fields[:4]
        assert addr.endswith(';"') and addr[:-2].isdigit()
        assert f"line:{addr[:-2]}" in fields
        assert (tree / path).is_file()
        assert kind and ":" not in kind
    by_name = {ln.split("\t")[0]: ln for ln in body}
    assert by_name["start"].split("\t")[1:5] == ["pkg/core.py", '11;"', "method", "line:11"]
    assert "class:Engine" in by_name["start"].split("\t")
    assert "method:Engine.start" in by_name["inner"].split("\t")
    assert "class:Engine" not in by_name["helper"]


def test_ctags_paths_relative_to_the_tags_file(tree: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "tags"
    target.parent.mkdir()
    r = run_cli("tags", str(tree), "-o", str(target))
    assert r.returncode == 0, r.stderr
    body = [ln for ln in target.read_text().splitlines() if not ln.startswith("!_TAG_")]
    for ln in body[:50]:
        path = ln.split("\t")[1]
        assert (target.parent / path).resolve().is_file(), path


def test_json_schema(tree: Path) -> None:
    r = run_cli("tags", str(tree), "--json", "--jobs", "2")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert set(obj["tags"][0]) == {"name", "qualname", "kind", "path", "line", "end_line", "scope"}
    types = {"name": str, "qualname": str, "kind": str, "path": str, "line": int, "end_line": int}
    for t in obj["tags"]:
        for k, ty in types.items():
            assert isinstance(t[k], ty), (k, t)
        assert t["scope"] is None or isinstance(t["scope"], str)
        assert 1 <= t["line"] <= t["end_line"]
    assert "refs" not in obj
    assert not (tree / "tags.json").exists()
    engine = next(t for t in obj["tags"] if t["qualname"] == "pkg.core.Engine.Cfg")
    assert engine["scope"] == "pkg.core.Engine" and engine["kind"] == "class"


def test_refs(tree: Path) -> None:
    res = extract_tags(tree, jobs=1, refs=True)
    core = {r.name: r for r in res.refs if r.path == "pkg/core.py"}
    assert core["helper"].line == 13 and core["helper"].count == 1  # a call, not its definition (line 21)
    assert core["os"].line == 1 and core["os"].count == 2  # first occurrence, though captures come unordered
    assert "self" not in core and "n" not in core  # skipped name, one-letter name
    assert "Engine" not in core  # only defined here, never used
    assert {t.name for t in res.tags} == {t.name for t in extract_tags(tree, jobs=1).tags}
    r = run_cli("tags", str(tree), "--json", "--refs")
    obj = json.loads(r.stdout)
    assert set(obj["refs"][0]) == {"name", "path", "line", "count"}
    assert len(obj["refs"]) == len(res.refs)


def test_cli_errors_are_one_line(tree: Path, tmp_path: Path) -> None:
    existing = tmp_path / "tags"
    existing.write_text("keep me\n")
    for args in (["tags", str(tmp_path / "missing")], ["tags", str(tree / "pkg" / "core.py")],
                 ["tags", str(tree), "--jobs", "0"], ["tags", str(tree), "-o", str(tmp_path)],
                 ["tags", str(tree), "-o", str(tmp_path / "no" / "dir" / "tags")]):
        r = run_cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert existing.read_text() == "keep me\n"


def test_symlink_loop_and_unreadable_dir(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "t", {"a.py": "def f():\n    pass\n"}, {})
    os.symlink(root, root / "loop")
    os.symlink(root / "nowhere", root / "dangling.py")
    res = extract_tags(root, jobs=1)
    assert [(t.path, t.name) for t in res.tags] == [("a.py", "f")]
    assert res.skipped.get("symlink_loop") == 1 and res.skipped.get("broken_symlink") == 1


def _ast_defs(tree: ast.Module, module: str) -> set[tuple[str, str, int]]:
    out: set[tuple[str, str, int]] = set()

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                q = f"{prefix}.{child.name}"
                out.add((q, child.name, child.lineno))
                visit(child, q)
            else:
                visit(child, prefix)

    visit(tree, module)
    return out


def test_stdlib_python_defs_equal_ast(tmp_path: Path) -> None:
    """On real stdlib packages, every function, method and class (qualname, name, line) equals
    Python's own parser, and nothing else of those kinds is reported."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for pkg in ("json", "email", "asyncio", "http", "logging", "concurrent", "urllib", "importlib"):
        shutil.copytree(stdlib / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "test*"))
    res = extract_tags(tmp_path, jobs=2)
    got: dict[str, set[tuple[str, str, int]]] = {}
    for t in res.tags:
        if t.kind in ("function", "method", "class"):
            got.setdefault(t.path, set()).add((t.qualname, t.name, t.line))
    n = 0
    for f in sorted(tmp_path.rglob("*.py")):
        rel = f.relative_to(tmp_path).as_posix()
        module = rel[:-3].replace("/", ".").removesuffix(".__init__")
        tree = ast.parse(f.read_bytes())
        want = _ast_defs(tree, module)
        # Module-level `name = lambda` is a function for the tagger, not a def for ast.
        lambdas = {(f"{module}.{a.targets[0].id}", a.targets[0].id, a.lineno) for a in tree.body
                   if isinstance(a, ast.Assign) and isinstance(a.value, ast.Lambda) and isinstance(a.targets[0], ast.Name)}
        assert got.get(rel, set()) - lambdas == want, rel
        n += len(want)
    assert n > 3000


@pytest.mark.skipif(shutil.which("readtags") is None, reason="universal-ctags' readtags not installed")
def test_readtags_binary_search_finds_every_name(tree: Path) -> None:
    """readtags (universal-ctags' reader) relies on the sort order and the header to binary-search."""
    assert run_cli("tags", str(tree)).returncode == 0
    res = extract_tags(tree, jobs=1)
    for name in sorted({t.name for t in res.tags})[::3]:
        out = subprocess.run(["readtags", "-t", str(tree / "tags"), "-e", "-n", name], capture_output=True,
                             text=True, timeout=30).stdout
        want = sorted((t.path, t.line) for t in res.tags if t.name == name)
        found = sorted((ln.split("\t")[1], int(ln.split("\t")[2][:-2])) for ln in out.splitlines())
        assert found == want, name


@pytest.mark.skipif(shutil.which("vim") is None, reason="vim not installed")
def test_vim_jumps_to_a_tag(tree: Path, tmp_path: Path) -> None:
    assert run_cli("tags", str(tree)).returncode == 0
    out = tmp_path / "where"
    subprocess.run(["vim", "-es", "-N", "-u", "NONE", "-i", "NONE", "-c", "set tags=./tags", "-c", "tag Cfg",
                    "-c", f"redir! > {out}", "-c", 'silent echo expand("%") . ":" . line(".")', "-c", "redir END",
                    "-c", "qa!"], cwd=tree, capture_output=True, timeout=60)
    assert out.read_text().strip() == "pkg/core.py:8"
