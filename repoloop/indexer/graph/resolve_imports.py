"""Where an import statement points inside the repository, per language.

Input: the stored import references of one file (`refs` rows of kind "import"); output: the files
it imports (graph edges), the local names it binds (for call resolution) and the modules that stay
unresolved (outside the repo: stdlib, third-party). Only the `files` table is needed, so this is
cheap to recompute for one file at query time (`repoloop deps`).
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from repoloop.indexer.graph.rust_crates import Position, RustCrates
from repoloop.indexer.parse.languages import QUALNAME_SEP

# Languages that share one namespace of modules/symbols.
FAMILY = {
    "python": "python", "javascript": "js", "typescript": "js", "tsx": "js", "go": "go", "rust": "rust",
    "java": "java", "c": "c", "cpp": "c", "c_sharp": "cs", "ruby": "ruby", "php": "php",
}
_JS_EXTS = (".ts", ".tsx", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts", ".d.ts")


@dataclass(slots=True, frozen=True)
class FileInfo:
    id: int
    path: str
    language: str
    module: str
    family: str = ""  # filled from language (hot in resolution, so stored, not computed)
    sep: str = "."

    @classmethod
    def make(cls, id: int, path: str, language: str, module: str) -> FileInfo:
        return cls(id, path, language, module, FAMILY.get(language, language), QUALNAME_SEP.get(language, "."))


@dataclass(slots=True, frozen=True)
class JsPackage:
    """A package of a JS/TS monorepo (workspace), from its package.json."""

    dir: str  # repo-relative directory of its package.json ("" at the root)
    entries: tuple[str, ...] = ()  # what "source", "module", "main", "types" name, in that order


@dataclass(slots=True, frozen=True)
class TsPath:
    """One `compilerOptions.paths` pattern of a tsconfig/jsconfig: `@app/*` -> [`src/app/*`]."""

    pattern: str  # at most one `*`
    targets: tuple[str, ...]
    base: str  # repo-relative directory the targets are relative to (baseUrl, else the config's own)

    def match(self, spec: str) -> str | None:
        """What `*` stands for in `spec` ("" for a pattern without one), or None."""
        if "*" not in self.pattern:
            return "" if spec == self.pattern else None
        pre, post = self.pattern.split("*", 1)
        if len(spec) >= len(pre) + len(post) and spec.startswith(pre) and spec.endswith(post):
            return spec[len(pre) : len(spec) - len(post)]
        return None


@dataclass(slots=True)
class ImportRef:
    name: str
    line: int
    full: str
    module: str | None
    alias: str | None
    scope: str | None = None  # where the import statement is (Rust: `use super::*` in `mod tests`)


@dataclass(slots=True, frozen=True)
class Binding:
    """A local name bound by an import: a module (qualname prefix) or a symbol qualname."""

    target: str
    is_module: bool


@dataclass(slots=True)
class ResolvedImports:
    edges: list[tuple[int, int]] = field(default_factory=list)  # (imported file id, line)
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    stars: list[str] = field(default_factory=list)  # module prefixes imported with `*`
    unresolved: list[str] = field(default_factory=list)  # module names not found in the repo

    def bind(self, name: str, target: str, is_module: bool) -> None:
        if name:
            self.bindings.setdefault(name, []).append(Binding(target, is_module))


class RepoFiles:
    """The repository's files indexed the ways import resolution needs (by path, module, dir)."""

    def __init__(self, files: Iterable[FileInfo], go_module: str | None = None,
                 js_packages: Mapping[str, JsPackage] | None = None, ts_paths: Iterable[TsPath] = (),
                 rust: RustCrates | None = None) -> None:
        self.by_id: dict[int, FileInfo] = {}
        self.by_path: dict[str, FileInfo] = {}
        self.modules: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.by_dir: dict[tuple[str, str], list[int]] = defaultdict(list)  # (family, dir) -> files
        self.by_basename: dict[str, list[int]] = defaultdict(list)
        self._py_suffix: dict[str, list[str]] = defaultdict(list)  # last module part -> modules
        for f in files:
            self.by_id[f.id] = f
            self.by_path[f.path] = f
            fam = f.family
            self.modules[(fam, f.module)].append(f.id)
            self.by_dir[(fam, posixpath.dirname(f.path))].append(f.id)
            self.by_basename[posixpath.basename(f.path)].append(f.id)
            if fam == "python" and f.module:
                self._py_suffix[f.module.rsplit(".", 1)[-1]].append(f.module)
        self.go_module = go_module
        self.js_packages = dict(js_packages or {})  # workspace package name -> where it lives
        # TypeScript takes the matching pattern with the longest prefix before the `*`.
        self.ts_paths = sorted(ts_paths, key=lambda p: -len(p.pattern.split("*", 1)[0]))
        self.rust = rust  # the crates' module trees (None: no Rust, or built without them)

    def module_files(self, family: str, module: str) -> list[int]:
        return self.modules.get((family, module), [])

    def python_module(self, module: str) -> str | None:
        """The repo module an absolute Python module name refers to: exact, else a unique suffix
        match (a package imported from a root other than the repo root, e.g. `project/pkg`)."""
        if ("python", module) in self.modules:
            return module
        last = module.rsplit(".", 1)[-1]
        cands = [m for m in self._py_suffix.get(last, ()) if m.endswith("." + module)]
        return cands[0] if len(cands) == 1 else None


def resolve_imports(repo: RepoFiles, f: FileInfo, refs: list[ImportRef]) -> ResolvedImports:
    fn = _RESOLVERS.get(f.family)
    out = ResolvedImports()
    if fn is not None:
        fn(repo, f, refs, out)
    # One edge per imported file (the first line that imports it), never to itself.
    seen: dict[int, int] = {}
    for tid, line in out.edges:
        if tid != f.id and tid not in seen:
            seen[tid] = line
    out.edges = sorted(seen.items(), key=lambda t: (t[1], t[0]))
    out.unresolved = list(dict.fromkeys(out.unresolved))
    return out


# -- Python ----------------------------------------------------------------------------------------
def _python(repo: RepoFiles, f: FileInfo, refs: list[ImportRef], out: ResolvedImports) -> None:
    is_pkg = f.path.endswith("/__init__.py") or f.path == "__init__.py"
    package = f.module if is_pkg else f.module.rpartition(".")[0]
    for r in refs:
        mod = r.module or ""
        if mod == "__future__" or not mod and not r.full:
            continue
        if not mod:
            mod = r.full
        absmod = _py_absolute(mod, package)
        plain = r.full == r.module  # `import a.b.c` (vs `from a.b import c`)
        if plain:
            target = repo.python_module(absmod) if absmod else None
            if target is None:
                out.unresolved.append(mod)
                head = (r.alias or absmod.split(".", 1)[0]) if absmod else ""
                out.bind(head, (absmod if r.alias else head), True)
                continue
            out.edges.extend((i, r.line) for i in repo.module_files("python", target))
            if r.alias:
                out.bind(r.alias, target, True)
            else:  # `import a.b.c` binds `a`; `a.b.c.f` is then a qualname under a's prefix
                head = absmod.split(".", 1)[0]
                offset = target[: len(target) - len(absmod)] if target.endswith(absmod) else ""
                out.bind(head, offset + head, True)
            continue
        base = repo.python_module(absmod) if absmod else None
        if r.name == "*":
            if base is None:
                out.unresolved.append(mod)
                continue
            out.edges.extend((i, r.line) for i in repo.module_files("python", base))
            out.stars.append(base)
            continue
        local = r.alias or r.name
        sub = repo.python_module(f"{absmod}.{r.name}" if absmod else r.name)
        if sub is not None:  # `from pkg import submodule`
            out.edges.extend((i, r.line) for i in repo.module_files("python", sub))
            out.bind(local, sub, True)
        elif base is not None:
            out.edges.extend((i, r.line) for i in repo.module_files("python", base))
            out.bind(local, f"{base}.{r.name}", False)
        else:
            out.unresolved.append(mod)
            out.bind(local, f"{absmod}.{r.name}", False)


def _py_absolute(module: str, package: str) -> str:
    if not module.startswith("."):
        return module
    level = len(module) - len(module.lstrip("."))
    rest = module[level:]
    parts = package.split(".") if package else []
    if level > 1:
        parts = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    if rest:
        parts.append(rest)
    return ".".join(parts)


# -- JavaScript / TypeScript -----------------------------------------------------------------------
def _js(repo: RepoFiles, f: FileInfo, refs: list[ImportRef], out: ResolvedImports) -> None:
    here = posixpath.dirname(f.path)
    for r in refs:
        spec = (r.module or "").strip("'\"`")
        if not spec:
            continue
        target = _js_file(repo, here, spec) if spec.startswith(".") or spec.startswith("/") else None
        if target is None:
            target = _js_paths_file(repo, spec)
        if target is None:
            target = _js_alias_file(repo, spec)
        if target is None:
            target = _js_workspace_file(repo, spec)
        if target is None:
            out.unresolved.append(spec)
            continue
        t = repo.by_id[target]
        out.edges.append((target, r.line))
        if r.name in ("*", ""):
            if r.alias:  # `import * as ns`, `const ns = require(...)`
                out.bind(r.alias, t.module, True)
            else:  # `export * from`, destructured require: every name of that module
                out.stars.append(t.module)
        elif r.name == "default":
            if r.alias:  # `import Foo from './Foo'`: the default export, by convention named alike
                out.bind(r.alias, f"{t.module}.{r.alias}", False)
        else:
            out.bind(r.alias or r.name, f"{t.module}.{r.name}", False)


def _js_file(repo: RepoFiles, here: str, spec: str) -> int | None:
    base = posixpath.normpath(posixpath.join(here, spec)) if not spec.startswith("/") else spec.lstrip("/")
    if base.startswith("../"):
        return None
    cands = [base]
    stem, ext = posixpath.splitext(base)
    if ext in (".js", ".jsx", ".mjs", ".cjs"):  # TS sources imported by their compiled name
        cands += [stem + e for e in (".ts", ".tsx", ".mts", ".cts")]
    cands += [base + e for e in _JS_EXTS]
    cands += [f"{base}/index{e}" for e in _JS_EXTS]
    for c in cands:
        fi = repo.by_path.get(c)
        if fi is not None and fi.family == "js":
            return fi.id
    return None


def _js_alias_file(repo: RepoFiles, spec: str) -> int | None:
    """`@/ui/Button`, `~/ui/Button`, `src/ui/Button`: common path aliases for the source root."""
    for prefix in ("@/", "~/", "src/", "/"):
        if spec.startswith(prefix):
            rest = spec[len(prefix):]
            for root in ("src", ""):
                hit = _js_file(repo, root, rest)
                if hit is not None:
                    return hit
    return None


def _js_paths_file(repo: RepoFiles, spec: str) -> int | None:
    """A tsconfig/jsconfig `paths` alias (`@app/*` -> `src/app/*`), as the TypeScript compiler maps it."""
    for p in repo.ts_paths:
        star = p.match(spec)
        if star is None:
            continue
        for target in p.targets:
            hit = _js_file(repo, p.base, target.replace("*", star, 1))
            if hit is not None:
                return hit
        return None  # the best pattern decides, as in tsc
    return None


def _js_workspace_file(repo: RepoFiles, spec: str) -> int | None:
    """`@scope/pkg` or `pkg/sub/path` naming a package of this repository (a monorepo's workspace
    package, by the name in its package.json): its sources, not its build output. The package root
    is src/index.* first, then its source/module/main/types entries (a compiled `.js` name maps to
    its `.ts` source), then index.*; a subpath is looked up in the package, then in its src/."""
    if not repo.js_packages:
        return None
    parts = spec.split("/")
    n = 2 if spec.startswith("@") else 1
    pkg = repo.js_packages.get("/".join(parts[:n]))
    if pkg is None:
        return None
    sub = "/".join(parts[n:])
    if sub:
        return next((hit for root in (pkg.dir, posixpath.join(pkg.dir, "src"))
                     if (hit := _js_file(repo, root, sub)) is not None), None)
    for entry in ("src/index", *pkg.entries, "index"):
        hit = _js_file(repo, pkg.dir, entry)
        if hit is not None:
            return hit
    return None


# -- Go --------------------------------------------------------------------------------------------
def _go(repo: RepoFiles, f: FileInfo, refs: list[ImportRef], out: ResolvedImports) -> None:
    """In-repo packages bind their name to the package's module; packages outside the module bind
    theirs to the import path, so `zap.Int(...)` is known to be outside and never guessed at."""
    for r in refs:
        spec = (r.module or r.full or "").strip("\"`")
        if not spec:
            continue
        d = _go_dir(repo, spec)
        if d is None:
            out.unresolved.append(spec)
            if r.alias not in ("_", "."):
                for local in ([r.alias] if r.alias else go_package_names(spec)):
                    out.bind(local, spec, True)
            continue
        files = [i for i in repo.by_dir[("go", d)] if not repo.by_id[i].path.endswith("_test.go")]
        files = files or repo.by_dir[("go", d)]
        out.edges.extend((i, r.line) for i in files)
        pkg_module = repo.by_id[files[0]].module
        if r.alias == ".":
            out.stars.append(pkg_module)
        elif r.alias != "_":
            names = [r.alias] if r.alias else go_package_names(spec)
            if not d and pkg_module not in names:  # the root package: its files' module is its name
                names.insert(0, pkg_module)
            for local in names:
                out.bind(local, pkg_module, True)


def go_package_names(spec: str) -> list[str]:
    """The names an import path's package is likely declared with (its `package` clause is not
    read for packages outside the repository): `net/http` http, `github.com/a/b/v2` b,
    `gopkg.in/yaml.v3` yaml, `github.com/mattn/go-isatty` isatty, `github.com/quic-go/quic-go` quic."""
    parts = [p for p in spec.split("/") if p]
    if not parts:
        return []
    last = parts[-1]
    if re.fullmatch(r"v\d+", last) and len(parts) > 1:
        last = parts[-2]
    last = re.sub(r"\.v\d+$", "", last)
    cands = [last, last.removeprefix("go-"), last.removesuffix("-go"), last.removesuffix(".go"),
             last.removeprefix("go-").removesuffix("-go"), last.replace("-", ""), last.replace("-", "_"),
             last.split(".", 1)[0], last.split("-", 1)[0]]
    return [c for c in dict.fromkeys(cands) if c.isidentifier()]


def _go_dir(repo: RepoFiles, spec: str) -> str | None:
    mod = repo.go_module
    if mod and (spec == mod or spec.startswith(mod + "/")):
        d = spec[len(mod):].lstrip("/")
        return d if ("go", d) in repo.by_dir else None
    parts = spec.split("/")
    # Without go.mod: the longest suffix of the import path that is a directory of Go files.
    # A single component ("fmt", "os") is the standard library, never a repo directory.
    for i in range(len(parts) - 1):
        d = "/".join(parts[i:])
        if ("go", d) in repo.by_dir and (i > 0 or len(parts) > 1):
            if i < len(parts) - 1 or "." in parts[0]:
                return d
    return None


# -- Rust ------------------------------------------------------------------------------------------
def _rust(repo: RepoFiles, f: FileInfo, refs: list[ImportRef], out: ResolvedImports) -> None:
    """`mod x;` (edges to the declared files, bound as modules) and `use` paths, resolved in the
    crate's real module tree (`rust_crates`); the workspace's own crates by their Cargo.toml names.
    Files the tree does not place fall back to the stored module names."""
    tree = repo.rust
    if tree is not None:
        for where, kids in tree.children.items():
            if where[0] != f.id:
                continue
            for name, child in kids.items():
                out.edges.append((child, tree.decl_line.get(child, (0, 0))[1]))
                if not where[1]:
                    out.bind(name, tree.modules.get(child, ""), True)
    crate = _rust_crate_dir(f.path)
    for r in refs:
        path = (r.full or "").replace(" ", "")
        parts = [p for p in re.split(r"::", path) if p]
        if not parts:
            continue
        is_glob = parts[-1] == "*" or r.name == "*"
        if is_glob:
            parts = [p for p in parts if p != "*"]
        if tree is not None:
            got = _rust_use(tree, f, r.scope, parts)
            if got is not None:
                pos, rest = got
                if pos is None:  # outside the repository (std, a registry crate)
                    out.unresolved.append(path)
                    if not is_glob:
                        out.bind(r.alias or parts[-1], path, True)
                    continue
                out.edges.append((pos[0], r.line))
                full = "::".join([tree.prefix(pos), *rest])
                if is_glob:
                    out.stars.append(full)
                else:
                    out.bind(r.alias or (parts[-1] if parts[-1] != "self" else parts[-2] if len(parts) > 1 else ""),
                             full, not rest)
                continue
        abs_parts = _rust_absolute(parts, f.module, repo)
        if abs_parts is None:
            out.unresolved.append(path)
            continue
        parts = abs_parts
        # The longest prefix that is a module file; what follows is an item in it.
        hit = None
        for k in range(len(parts), 0, -1):
            mod = "::".join(parts[:k])
            ids = [i for i in repo.module_files("rust", mod) if _same_crate(repo.by_id[i].path, crate)]
            if ids:
                hit = (k, mod, ids)
                break
        if hit is None:
            out.unresolved.append(path)
            continue
        k, mod, ids = hit
        out.edges.extend((i, r.line) for i in ids)
        full = "::".join(parts)
        if is_glob:
            out.stars.append(full)
        else:
            local = r.alias or parts[-1]
            out.bind(local, full, k == len(parts))


def _rust_use(tree: RustCrates, f: FileInfo, scope: str | None, parts: list[str]
              ) -> tuple[Position | None, list[str]] | None:
    """Where a `use` path leads: (module position, item names after it); (None, []) for a path
    outside the repository; None when the tree cannot tell (the file is not in it)."""
    if f.id not in tree.modules:
        return None
    here = tree.position_of_scope(f.id, scope)
    head, rest = parts[0], parts[1:]
    pos: Position | None
    if head in ("crate", "$crate"):
        pos = (tree.root(f.id), ())
    elif head == "self":
        pos = here
    elif head == "super":
        pos = tree.up(here)
        while pos is not None and rest and rest[0] == "super":
            pos, rest = tree.up(pos), rest[1:]
        if pos is None:
            return None
    elif (child := tree.child(here, head)) is not None:
        pos = child
    elif head in tree.crates:
        pos = (tree.crates[head], ())
    elif f"{tree.prefix(here)}::{head}" and head[:1].isupper():
        pos, rest = here, parts  # `use Enum::Variant`: an item of this module
    else:
        return None, []
    while rest:
        nxt = tree.child(pos, rest[0])
        if nxt is None:
            break
        pos, rest = nxt, rest[1:]
    if rest and rest[-1] == "self":
        rest = rest[:-1]
    return pos, rest


def _rust_absolute(parts: list[str], module: str, repo: RepoFiles) -> list[str] | None:
    here = module.split("::") if module else ["crate"]
    if parts[0] == "crate":
        return parts
    if parts[0] == "self":
        return here + parts[1:]
    if parts[0] == "super":
        base = list(here)
        while parts and parts[0] == "super":
            if len(base) <= 1:
                return None
            base.pop()
            parts = parts[1:]
        return base + parts
    # 2018 edition (uniform paths): `use foo::bar` names a child module of this one if there is
    # one, else an item/module at the crate root, else an external crate.
    if ("rust", "::".join([*here, parts[0]])) in repo.modules:
        return here + parts
    return ["crate", *parts]


def _rust_crate_dir(path: str) -> str:
    i = path.find("src/")
    return path[:i] if i >= 0 else ""


def _same_crate(path: str, crate_dir: str) -> bool:
    return _rust_crate_dir(path) == crate_dir


# -- Java ------------------------------------------------------------------------------------------
def _java(repo: RepoFiles, f: FileInfo, refs: list[ImportRef], out: ResolvedImports) -> None:
    for r in refs:
        full = (r.full or "").replace(" ", "")
        if full.startswith("static."):
            full = full[7:]
        parts = full.split(".")
        if not parts:
            continue
        if parts[-1] == "*" or r.name == "*":
            pkg = ".".join(p for p in parts if p != "*")
            ids = repo.module_files("java", pkg)
            if ids:
                out.edges.extend((i, r.line) for i in ids)
                out.stars.append(pkg)
            else:
                out.unresolved.append(pkg)
            continue
        # `a.b.C` or `a.b.C.Inner` or static `a.b.C.member`: find the class file C in package a.b.
        found = False
        for k in range(len(parts) - 1, 0, -1):
            pkg, cls = ".".join(parts[:k]), parts[k]
            for i in repo.module_files("java", pkg):
                if posixpath.splitext(posixpath.basename(repo.by_id[i].path))[0] == cls:
                    out.edges.append((i, r.line))
                    found = True
            if found:
                break
        if not found:
            out.unresolved.append(full)
        out.bind(r.alias or parts[-1], full, False)


# -- C / C++ ---------------------------------------------------------------------------------------
def _c(repo: RepoFiles, f: FileInfo, refs: list[ImportRef], out: ResolvedImports) -> None:
    here = posixpath.dirname(f.path)
    for r in refs:
        spec = (r.module or r.full or r.name or "").strip()
        system = spec.startswith("<")
        spec = spec.strip("<>\"")
        if not spec:
            continue
        hit = None
        if not system:
            rel = posixpath.normpath(posixpath.join(here, spec))
            fi = repo.by_path.get(rel)
            hit = fi.id if fi is not None else None
        if hit is None:
            cands = [i for i in repo.by_basename.get(posixpath.basename(spec), ())
                     if repo.by_id[i].path.endswith(spec) and repo.by_id[i].family == "c"]
            if len(cands) == 1 or (cands and not system):
                hit = sorted(cands, key=lambda i: len(repo.by_id[i].path))[0]
        if hit is None:
            out.unresolved.append(spec)
        else:
            out.edges.append((hit, r.line))


def _generic(repo: RepoFiles, f: FileInfo, refs: list[ImportRef], out: ResolvedImports) -> None:
    """C#, Ruby, PHP: namespaces/requires; resolve relative requires and namespace-like paths."""
    here = posixpath.dirname(f.path)
    ext = posixpath.splitext(f.path)[1]
    for r in refs:
        spec = (r.module or r.full or "").strip("'\"")
        if not spec:
            continue
        hit = None
        for cand in (spec, spec + ext):
            fi = repo.by_path.get(posixpath.normpath(posixpath.join(here, cand)))
            if fi is not None:
                hit = fi.id
                break
        if hit is None:
            tail = re.split(r"[\\./:]+", spec)
            name = tail[-1] if tail else ""
            cands = repo.by_basename.get(name + ext, [])
            if len(cands) == 1:
                hit = cands[0]
        if hit is None:
            out.unresolved.append(spec)
        else:
            out.edges.append((hit, r.line))
        if r.alias:
            out.bind(r.alias, spec, False)


_RESOLVERS = {
    "python": _python, "js": _js, "go": _go, "rust": _rust, "java": _java, "c": _c,
    "cs": _generic, "ruby": _generic, "php": _generic,
}
