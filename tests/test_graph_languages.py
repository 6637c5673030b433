"""Import resolution and call edges on JS/TS, Go, Rust, Java and C fixtures, indexed by the real
pipeline (tree-sitter grammars, SQLite), with the edges a reader of the code would draw."""

from __future__ import annotations

from repoloop.retrieval import graph
from tests.graph_fixtures import edges, index_dir
from tests.test_graph_queries import write_repo

JS = {
    "package.json": '{"name": "web"}\n',
    "src/util/math.ts": """
export function add(a: number, b: number): number { return a + b; }
export class Calc {
  total(xs: number[]): number { return xs.reduce((s, x) => add(s, x), 0); }
  double(x: number): number { return this.scale(x, 2); }
  scale(x: number, k: number): number { return x * k; }
}
""",
    "src/util/strings.ts": """
export function upper(s: string): string { return s.toUpperCase(); }
""",
    "src/util/index.ts": """
export { add, Calc } from './math';
export * from './strings';
""",
    "src/components/Widget.jsx": """
export default function Widget() { return helper(); }
function helper() { return 1; }
""",
    "src/app.tsx": """
import { add, Calc, upper } from './util';
import * as M from './util/math';
import Widget from './components/Widget';
import React from 'react';
export function App() {
  const c = new Calc();
  Widget();
  return upper(String(add(1, M.add(2, 3)))) + c.double(1);
}
""",
    "lib/helpers.js": """
function greet(name) { return 'hi ' + name; }
module.exports = { greet };
""",
    "lib/legacy.js": """
const path = require('path');
const h = require('./helpers');
function go() { return h.greet(path.basename('x')); }
""",
}

GO = {
    "go.mod": "module example.com/shop\n\ngo 1.21\n",
    "main.go": """
package main

import (
	"fmt"

	"example.com/shop/internal/store"
	util "example.com/shop/pkg/util"
)

func main() {
	s := store.New()
	s.Add("x")
	fmt.Println(util.Double(2))
	run()
}

func run() {}
""",
    "internal/store/store.go": """
package store

type Store struct {
	items []string
}

func New() *Store { return &Store{} }

func (s *Store) Add(x string) {
	s.items = append(s.items, x)
	s.log(x)
}

func (s *Store) log(x string) { helper(x) }
""",
    "internal/store/helper.go": """
package store

func helper(x string) string { return x }
""",
    "pkg/util/util.go": """
package util

func Double(x int) int { return x * 2 }
""",
}

RUST = {
    "Cargo.toml": '[package]\nname = "shapes"\nversion = "0.1.0"\n',
    "src/main.rs": """
mod shapes;
mod util;

use crate::shapes::{Area, Circle};
use util::double;

fn main() {
    let c = Circle::new(1.0);
    println!("{}", c.area());
    double(2);
    shapes::describe(&c);
}
""",
    "src/shapes/mod.rs": """
pub mod circle;
pub use circle::Circle;

pub trait Area {
    fn area(&self) -> f64;
}

pub fn describe(a: &dyn Area) -> f64 {
    a.area()
}
""",
    "src/shapes/circle.rs": """
use super::Area;

pub struct Circle {
    r: f64,
}

impl Circle {
    pub fn new(r: f64) -> Self {
        Self::check(r);
        Circle { r }
    }

    fn check(_r: f64) {}
}

impl Area for Circle {
    fn area(&self) -> f64 {
        self.r * self.r * helper()
    }
}

fn helper() -> f64 {
    3.14
}
""",
    "src/util.rs": """
pub fn double(x: i32) -> i32 {
    x * 2
}
""",
}

JAVA = {
    "src/main/java/com/acme/app/Main.java": """
package com.acme.app;

import com.acme.util.Strings;
import com.acme.model.*;
import java.util.List;

public class Main {
    public static void main(String[] args) {
        User u = new User("x");
        System.out.println(Strings.upper(u.name()));
        helper();
    }

    static void helper() {}
}
""",
    "src/main/java/com/acme/util/Strings.java": """
package com.acme.util;

public class Strings {
    public static String upper(String s) { return s.toUpperCase(); }
}
""",
    "src/main/java/com/acme/model/User.java": """
package com.acme.model;

public class User extends Base {
    private final String n;
    public User(String n) { this.n = n; }
    public String name() { return this.describe(n); }
}
""",
    "src/main/java/com/acme/model/Base.java": """
package com.acme.model;

public class Base {
    protected String describe(String s) { return s; }
}
""",
}

C = {
    "include/vec.h": "typedef struct { int x; } vec;\nint vec_len(vec *v);\n",
    "src/vec.c": '#include "../include/vec.h"\n#include <stdio.h>\n\nint vec_len(vec *v) { return v->x; }\n',
    "src/main.c": '#include "vec.h"\n\nstatic int twice(int x) { return 2 * x; }\n\nint main(void) {\n    vec v = {1};\n    return twice(vec_len(&v));\n}\n',
}


def _index(tmp_path, files):
    root = write_repo(tmp_path / "repo", files)
    return index_dir(root)


def _weights(store, src):
    return {d: round(w, 3) for d, w in store.conn.execute(
        "SELECT dst, weight FROM edges WHERE src=? AND kind='calls'", (src,))}


def test_js_ts_imports_and_calls(tmp_path):
    store = _index(tmp_path, JS)
    e = edges(store)
    imports = {(s, d) for s, d, k in e if k == "imports"}
    assert imports == {
        ("f:src/app.tsx", "f:src/util/index.ts"),  # directory import -> index file
        ("f:src/app.tsx", "f:src/util/math.ts"),  # extension-less TS path
        ("f:src/app.tsx", "f:src/components/Widget.jsx"),
        ("f:src/util/index.ts", "f:src/util/math.ts"),  # re-exports
        ("f:src/util/index.ts", "f:src/util/strings.ts"),
        ("f:lib/legacy.js", "f:lib/helpers.js"),  # CommonJS require
    }
    app = _weights(store, "s:src/app.App")
    assert app["s:src/util/math.add"] == 1.0  # through `export { add } from './math'` and `M.add`
    assert app["s:src/util/strings.upper"] == 1.0  # through `export * from './strings'`
    assert app["s:src/util/math.Calc"] == 1.0  # `new Calc()`
    assert app["s:src/components/Widget.Widget"] == 1.0  # default import
    assert app["s:src/util/math.Calc.double"] == 1.0  # `c.double()`: `const c = new Calc()` says its type
    assert _weights(store, "s:src/util/math.Calc.double") == {"s:src/util/math.Calc.scale": 1.0}  # this.
    assert _weights(store, "s:src/util/math.Calc.total") == {"s:src/util/math.add": 1.0}
    assert _weights(store, "s:lib/legacy.go") == {"s:lib/helpers.greet": 1.0}  # h = require(...); h.greet()
    assert graph.deps(store, "src/app.tsx")["unresolved"] == ["react"]
    assert graph.deps(store, "lib/legacy.js")["unresolved"] == ["path"]
    store.close()


def test_go_packages_receivers_and_calls(tmp_path):
    store = _index(tmp_path, GO)  # import paths matched to package directories by their suffix
    imports = {(s, d) for s, d, k in edges(store) if k == "imports"}
    assert imports == {  # a package import depends on every file of the package
        ("f:main.go", "f:internal/store/store.go"),
        ("f:main.go", "f:internal/store/helper.go"),
        ("f:main.go", "f:pkg/util/util.go"),
    }
    main = _weights(store, "s:main.main")
    assert main["s:internal/store.New"] == 1.0  # store.New
    assert main["s:pkg/util.Double"] == 1.0  # aliased import util.Double
    assert main["s:main.run"] == 1.0
    assert main["s:internal/store.Store.Add"] == 1.0  # s.Add: s := store.New(), New returns *Store
    # the receiver `s` is the method's own: certain; helper() lives in another file of the package
    assert _weights(store, "s:internal/store.Store.Add") == {"s:internal/store.Store.log": 1.0}
    assert _weights(store, "s:internal/store.Store.log") == {"s:internal/store.helper": 1.0}
    assert graph.deps(store, "main.go")["unresolved"] == ["fmt"]
    callers = graph.callers(store, "internal/store.helper", depth=3)
    assert [(c["qualname"], c["depth"]) for c in callers] == [
        ("internal/store.Store.log", 1), ("internal/store.Store.Add", 2), ("main.main", 3)]
    store.close()


def test_rust_mod_use_impl_and_self(tmp_path):
    store = _index(tmp_path, RUST)
    imports = {(s, d) for s, d, k in edges(store) if k == "imports"}
    assert imports == {
        ("f:src/main.rs", "f:src/shapes/mod.rs"),  # mod shapes; use crate::shapes::...
        ("f:src/main.rs", "f:src/util.rs"),  # use util::double (2018 uniform path)
        ("f:src/shapes/mod.rs", "f:src/shapes/circle.rs"),  # pub mod circle; pub use circle::Circle
        ("f:src/shapes/circle.rs", "f:src/shapes/mod.rs"),  # use super::Area
    }
    main = _weights(store, "s:crate::main")
    assert main["s:crate::shapes::circle::Circle::new"] == 1.0  # Circle::new via a `pub use` re-export
    assert main["s:crate::util::double"] == 1.0
    assert main["s:crate::shapes::describe"] == 1.0  # shapes::describe via `mod shapes;`
    assert _weights(store, "s:crate::shapes::circle::Circle::new") == {
        "s:crate::shapes::circle::Circle::check": 1.0}  # Self::check
    assert _weights(store, "s:crate::shapes::circle::Circle::area") == {"s:crate::shapes::circle::helper": 1.0}
    inh = {(s, d) for s, d, k in edges(store) if k == "inherits"}
    assert ("s:crate::shapes::circle::Circle", "s:crate::shapes::Area") in inh  # impl Area for Circle
    # a.area() on a trait object (`a: &dyn Area`): the trait's method, by the declared type
    assert _weights(store, "s:crate::shapes::describe") == {"s:crate::shapes::Area::area": 1.0}
    store.close()


def test_java_packages_wildcards_and_inherited_this(tmp_path):
    store = _index(tmp_path, JAVA)
    p = "src/main/java/com/acme/"
    imports = {(s, d) for s, d, k in edges(store) if k == "imports"}
    assert imports == {
        (f"f:{p}app/Main.java", f"f:{p}util/Strings.java"),
        (f"f:{p}app/Main.java", f"f:{p}model/User.java"),  # import com.acme.model.*
        (f"f:{p}app/Main.java", f"f:{p}model/Base.java"),
    }
    main = _weights(store, "s:com.acme.app.Main.main")
    assert main["s:com.acme.model.User"] == 1.0  # new User(...) through the wildcard import
    assert main["s:com.acme.util.Strings.upper"] == 1.0
    assert main["s:com.acme.app.Main.helper"] == 1.0  # same class, unqualified
    assert _weights(store, "s:com.acme.model.User.name") == {"s:com.acme.model.Base.describe": 1.0}
    assert graph.deps(store, f"{p}app/Main.java")["unresolved"] == ["java.util.List"]
    store.close()


def test_c_includes(tmp_path):
    store = _index(tmp_path, C)
    imports = {(s, d) for s, d, k in edges(store) if k == "imports"}
    assert imports == {("f:src/main.c", "f:include/vec.h"), ("f:src/vec.c", "f:include/vec.h")}
    assert _weights(store, "s:main") == {"s:twice": 1.0, "s:vec_len": 1.0}
    assert graph.deps(store, "src/vec.c")["unresolved"] == ["stdio.h"]
    store.close()


def test_go_root_package_via_go_mod(tmp_path):
    files = {
        "go.mod": "module example.com/lib\n\ngo 1.21\n",
        "lib.go": "package lib\n\nfunc Hello() string { return \"hi\" }\n",
        "cmd/tool/main.go": ('package main\n\nimport "example.com/lib"\n\n'
                             "func main() { lib.Hello() }\n"),
    }
    store = _index(tmp_path, files)
    assert ("f:cmd/tool/main.go", "f:lib.go", "imports") in edges(store)  # only go.mod names the root
    assert _weights(store, "s:cmd/tool.main") == {"s:lib.Hello": 1.0}
    store.close()


MONOREPO = {
    "package.json": '{"name": "acme-monorepo", "private": true, "workspaces": ["packages/*"]}\n',
    "packages/core/package.json": '{\n  "name": "@acme/core",\n  "main": "dist/index.js",\n'
                                  '  "author": {"name": "not-a-package"}\n}\n',
    "packages/core/index.js": "module.exports = require('./dist/core.cjs.js')\n",  # the built shim
    "packages/core/src/index.ts": "export { add } from './math';\n",
    "packages/core/src/math.ts": "export function add(a: number, b: number): number { return a + b; }\n",
    "packages/utils/package.json": '{"name": "acme-utils", "module": "lib/main.mjs"}\n',
    "packages/utils/lib/main.mts": "export function trim(s: string): string { return s.trim(); }\n",
    "packages/utils/src/format.ts": "export function pad(s: string): string { return ' ' + s; }\n",
    "packages/app/src/main.ts": """
import { add } from '@acme/core';
import { trim } from 'acme-utils';
import { pad } from 'acme-utils/format';
import lodash from 'lodash';
export function run(): string { return pad(trim(String(add(1, 2)))); }
""",
}


def test_js_workspace_packages_resolve_by_their_package_json_name(tmp_path):
    """A monorepo imports its own packages by name: edges to their sources (src/index.ts, not the
    built shim that main names), through re-exports to the definitions; third-party stays out."""
    store = _index(tmp_path, MONOREPO)
    imports = {(s, d) for s, d, k in edges(store) if k == "imports" and s == "f:packages/app/src/main.ts"}
    assert imports == {("f:packages/app/src/main.ts", "f:packages/core/src/index.ts"),  # src/ over main
                       ("f:packages/app/src/main.ts", "f:packages/utils/lib/main.mts"),  # "module", .mjs -> .mts
                       ("f:packages/app/src/main.ts", "f:packages/utils/src/format.ts")}  # a subpath, in src/
    assert _weights(store, "s:packages/app/src/main.run") == {
        "s:packages/core/src/math.add": 1.0, "s:packages/utils/lib/main.trim": 1.0,
        "s:packages/utils/src/format.pad": 1.0}
    assert graph.deps(store, "packages/app/src/main.ts")["unresolved"] == ["lodash"]
    store.close()


def test_a_renamed_workspace_package_redoes_its_importers_and_equals_a_rebuild(tmp_path):
    from repoloop.indexer.graph.build import rebuild_edges
    from tests.graph_fixtures import reindex

    store = _index(tmp_path, MONOREPO)
    root = tmp_path / "repo"
    (root / "packages/core/package.json").write_text('{"name": "@acme/kernel"}\n')  # only package.json changed
    store = reindex(root, store)
    main = "f:packages/app/src/main.ts"
    assert (main, "f:packages/core/src/index.ts", "imports") not in edges(store)
    assert "@acme/core" in graph.deps(store, "packages/app/src/main.ts")["unresolved"]
    (root / "packages/core/package.json").write_text('{"name": "@acme/core"}\n')
    store = reindex(root, store)
    incremental = edges(store)
    assert (main, "f:packages/core/src/index.ts", "imports") in incremental
    rebuild_edges(store)
    assert edges(store) == incremental
    store.close()


def test_edges_built_by_other_resolution_code_are_rebuilt(tmp_path):
    """Like a parser change re-parses, a change of the resolution code (an upgrade) rebuilds the
    edges on the next `repoloop index`, even when no file changed."""
    from repoloop.indexer.graph.build import generation
    from repoloop.indexer.schema import CODE_KEY
    from tests.graph_fixtures import reindex

    store = _index(tmp_path, MONOREPO)
    main = "f:packages/app/src/main.ts"
    with store.conn:  # what an older repoloop left: no workspace edges, another code digest
        store.conn.execute("DELETE FROM edges WHERE src=? AND dst LIKE 'f:packages/%'", (main,))
    store.set_meta(CODE_KEY, "older-code")
    before = generation(store)
    store = reindex(tmp_path / "repo", store)
    assert (main, "f:packages/core/src/index.ts", "imports") in edges(store)
    assert generation(store) > before  # warm servers re-read the graph
    again = generation(store)
    store = reindex(tmp_path / "repo", store)  # and only once
    assert generation(store) == again
    store.close()


TSPATHS = {
    "tsconfig.base.json": """{
  // shared options; comments and trailing commas, as tsc accepts them
  "compilerOptions": {
    "baseUrl": ".",
    "paths": {
      "@app/*": ["src/app/*"],
      "@app/core/*": ["libs/core/src/*", "libs/core-legacy/*"],  /* the longer prefix wins */
      "config": ["src/config/index.ts"],
    },
  },
}
""",
    "web/tsconfig.json": '{"compilerOptions": {"paths": {"#ui/*": ["./components/*"]}}}\n',
    "src/app/cart.ts": "export function total(xs: number[]): number { return xs.length; }\n",
    "libs/core/src/log.ts": "export function log(m: string): void {}\n",
    "src/config/index.ts": "export const settings = {};\n",
    "web/components/Button.tsx": "export function Button() { return null; }\n",
    "web/main.tsx": """
import { total } from '@app/cart';
import { log } from '@app/core/log';
import { settings } from 'config';
import { Button } from '#ui/Button';
import { missing } from '@app/nowhere';
export function main() { log(String(total([]))); Button(); return settings; }
""",
}


def test_tsconfig_paths_aliases_resolve_like_tsc(tmp_path):
    store = _index(tmp_path, TSPATHS)
    imports = {d for s, d, k in edges(store) if k == "imports" and s == "f:web/main.tsx"}
    assert imports == {"f:src/app/cart.ts", "f:libs/core/src/log.ts", "f:src/config/index.ts",
                       "f:web/components/Button.tsx"}  # baseUrl, longest prefix, exact, config-relative
    assert _weights(store, "s:web/main.main") == {"s:src/app/cart.total": 1.0, "s:libs/core/src/log.log": 1.0,
                                                  "s:web/components/Button.Button": 1.0}
    assert graph.deps(store, "web/main.tsx")["unresolved"] == ["@app/nowhere"]
    store.close()


def test_a_changed_tsconfig_redoes_the_js_files(tmp_path):
    from tests.graph_fixtures import reindex

    store = _index(tmp_path, TSPATHS)
    root = tmp_path / "repo"
    (root / "web/tsconfig.json").write_text('{"compilerOptions": {"paths": {"#widgets/*": ["./components/*"]}}}\n')
    store = reindex(root, store)
    assert ("f:web/main.tsx", "f:web/components/Button.tsx", "imports") not in edges(store)
    assert "#ui/Button" in graph.deps(store, "web/main.tsx")["unresolved"]
    store.close()
