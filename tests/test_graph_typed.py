"""Calls resolved by what the code declares (issue 18), on small repositories of our own that
reproduce each pattern met in caddy (Go), ripgrep (Rust), and typical TS and Java code. Every
fixture also defines a same-named method elsewhere, so a name-only guess would be caught.

The real-repository oracles (go/types on caddy, cargo + a mod/use scanner on ripgrep) are in
tests/test_graph_oracles_real.py; these fixtures are written for this test, not copied.
"""

from __future__ import annotations

import json

from repoloop.cli import main as cli_main
from repoloop.retrieval import graph
from tests.graph_fixtures import index_dir
from tests.test_graph_queries import write_repo

GO = {
    "go.mod": "module example.com/proxy\n\ngo 1.22\n",
    "context.go": """
package proxy

// Context shadows nothing: the standard library's context is another package.
type Context struct{ parent *Context }

func (c Context) WithValue(k, v any) Context { return c }
""",
    "addr.go": """
package proxy

type NetworkAddress struct{ Host string }

func (na NetworkAddress) JoinHostPort(off uint) string { return na.Host }
""",
    "header.go": """
package proxy

type WrappedHeader struct{ m map[string]string }

func (h WrappedHeader) Add(k, v string) {}
func (h WrappedHeader) Set(k, v string) {}

type Flags struct{}

func (f Flags) Int(name string, v int) int { return v }
""",
    "pool.go": """
package proxy

type Upstream struct{ Dial string }

func (u *Upstream) setHealthy(ok bool) bool { return ok }
func (u *Upstream) Available() bool      { return true }

type UpstreamPool []*Upstream

type Selector interface {
	Select(pool UpstreamPool) *Upstream
}

type Handler struct {
	Upstreams UpstreamPool
	selector  Selector
	flags     Flags
}

func NewHandler() (*Handler, error) { return &Handler{}, nil }
func newPool() UpstreamPool           { return nil }
""",
    "health.go": """
package proxy

import (
	"context"
	"net"
	"net/http"

	"go.uber.org/zap"
)

func (h *Handler) doActiveHealthCheck(req *http.Request, hostAddr string) error {
	ctx := context.WithValue(req.Context(), "k", "v")
	addr := net.JoinHostPort(hostAddr, "80")
	req.Header.Add("Host", addr)
	req.Header.Set("Accept", "*/*")
	zap.Int("port", 80)
	_ = ctx
	for _, u := range h.Upstreams {
		u.setHealthy(true)
	}
	h.Upstreams[0].Available()
	h.selector.Select(h.Upstreams).setHealthy(false)
	h.flags.Int("n", 1)
	return nil
}

func check(v any) {
	hh, err := NewHandler()
	_ = err
	hh.doActiveHealthCheck(nil, "")
	var other Handler
	other.flags.Int("m", 2)
	pool := newPool()
	pool[1].setHealthy(true)
	v.(*Upstream).Available()
	local := Upstream{}
	local.Available()
}
""",
}

RUST = {
    "Cargo.toml": """
[package]
name = "rg"
version = "0.1.0"

[[bin]]
name = "rg"
path = "crates/core/main.rs"

[dependencies]
grep-matcher = { path = "crates/matcher" }
""",
    "crates/matcher/Cargo.toml": '[package]\nname = "grep-matcher"\nversion = "0.1.0"\n',
    "crates/matcher/src/lib.rs": """
pub struct Match { s: usize, e: usize }

impl Match {
    pub fn start(&self) -> usize { self.s }
    pub fn new(s: usize, e: usize) -> Match { Match { s, e } }
}

pub trait Matcher {
    fn find(&self, haystack: &[u8]) -> Option<Match>;
    fn is_match(&self, haystack: &[u8]) -> bool { self.find(haystack).is_some() }
}
""",
    "crates/core/main.rs": """
mod flags;
mod search;

use crate::flags::HiArgs;

fn main() {
    let args = HiArgs::parse();
    let w = search::SearchWorker::new(args.binary());
    w.run();
}
""",
    "crates/core/flags/mod.rs": """
mod hiargs;

pub use self::hiargs::HiArgs;
""",
    "crates/core/flags/hiargs.rs": """
use crate::search::BinaryDetection;

pub struct HiArgs { quit: Option<u8> }

impl HiArgs {
    pub fn parse() -> HiArgs { HiArgs { quit: None } }
    pub fn binary(&self) -> BinaryDetection { BinaryDetection { byte: self.quit } }
}
""",
    "crates/core/search.rs": """
use grep_matcher::{Match, Matcher};

type Range = Match;

pub struct BinaryDetection { pub byte: Option<u8> }

impl BinaryDetection {
    pub fn quit_byte(&self) -> Option<u8> { self.byte }
}

pub struct Config { binary: BinaryDetection }

pub struct SearchWorker { config: Config }

pub struct PreludeWriter;

impl PreludeWriter {
    pub fn start(&self) -> usize { 0 }
}

impl SearchWorker {
    pub fn new(binary: BinaryDetection) -> SearchWorker { SearchWorker { config: Config { binary } } }

    pub fn run(&self) -> usize {
        let m = Match::new(0, 1);
        self.detect_binary(&m)
    }

    fn detect_binary(&self, range: &Range) -> usize {
        if self.config.binary.quit_byte().is_some() {
            return range.start();
        }
        0
    }

    fn search<M: Matcher>(&self, matcher: M) -> bool {
        matcher.is_match(b"x")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t() -> usize { SearchWorker::new(BinaryDetection { byte: None }).run() }
}
""",
}

TS = {
    "package.json": '{"name": "shop"}\n',
    "src/repo.ts": """
export class Repo {
  find(id: string): Order { return new Order(); }
}
export class Order {
  total(): number { return 1; }
}
""",
    "src/cache.ts": """
export class Cache {
  find(id: string): string { return id; }
  subscribe(): void {}
}
""",
    "src/service.ts": """
import { Observable } from 'rxjs';
import { Repo, Order } from './repo';

export class Service {
  private cache = new Map<string, string>();
  constructor(private readonly repo: Repo) {}

  load(id: string): number {
    const order = this.repo.find(id);
    return order.total();
  }

  watch(obs: Observable<number>): void {
    obs.subscribe();
    this.cache.get('x');
  }
}

export function total(o: Order): number {
  return o.total();
}

export function makeRepo() {
  return new Repo();
}

export function sum(orders: Order[]): number {
  let n = 0;
  for (const o of orders) n += o.total();
  return n + makeRepo().find('x').total();
}
""",
}

JAVA = {
    "src/main/java/com/acme/Repo.java": """
package com.acme;

public class Repo {
    public Order find(String id) { return new Order(); }
}
""",
    "src/main/java/com/acme/Order.java": """
package com.acme;

public class Order {
    public int total() { return 1; }
    public void add(String s) {}
}
""",
    "src/main/java/com/acme/other/Cache.java": """
package com.acme.other;

public class Cache {
    public String find(String id) { return id; }
}
""",
    "src/main/java/com/acme/Service.java": """
package com.acme;

import java.util.List;

public class Service {
    private Repo repo;
    private List<String> names;

    public int load(String id) {
        Order order = repo.find(id);
        var again = this.repo.find(id);
        names.add(id);
        Object o = order;
        return order.total() + again.total() + ((Order) o).total() + new Repo().find(id).total();
    }
}
""",
}


def _calls(store, src):
    return {d: round(w, 3) for d, w in store.conn.execute(
        "SELECT dst, weight FROM edges WHERE src=? AND kind='calls'", (src,))}


def test_go_external_package_qualifiers_never_reach_repository_symbols(tmp_path):
    store = index_dir(write_repo(tmp_path / "repo", GO))
    got = _calls(store, "s:proxy.Handler.doActiveHealthCheck")
    # context.WithValue, net.JoinHostPort, req.Header.Add/Set (req *http.Request), zap.Int: all
    # outside the module, though the package defines methods of those names
    for name in ("WithValue", "JoinHostPort", "Add", "Set"):
        assert not any(d.endswith("." + name) for d in got), (name, got)
    assert "s:proxy.Flags.Int" in got  # h.flags.Int: a field of a repository type is followed
    assert got.get("s:proxy.Flags.Int") == 1.0
    assert sum(1 for d in got if d.endswith(".Int")) == 1  # ...but zap.Int added nothing
    store.close()


def test_go_receivers_fields_locals_and_results_resolve_to_the_declared_type(tmp_path):
    store = index_dir(write_repo(tmp_path / "repo", GO))
    got = _calls(store, "s:proxy.Handler.doActiveHealthCheck")
    assert got["s:proxy.Upstream.setHealthy"] == 1.0  # range over h.Upstreams ([]*Upstream)
    assert got["s:proxy.Upstream.Available"] == 1.0  # h.Upstreams[0] through `type UpstreamPool []*Upstream`
    assert got["s:proxy.Selector.Select"] == 1.0  # a field of interface type
    check = _calls(store, "s:proxy.check")
    assert check["s:proxy.Handler.doActiveHealthCheck"] == 1.0  # hh, err := NewHandler()
    assert check["s:proxy.Flags.Int"] == 1.0  # var other Handler; other.flags.Int
    assert check["s:proxy.Upstream.setHealthy"] == 1.0  # pool := newPool(); pool[1]
    assert check["s:proxy.Upstream.Available"] == 1.0  # v.(*Upstream) and local := Upstream{}
    assert all(w == 1.0 for w in check.values()), check
    store.close()


def test_rust_mod_tree_workspace_crates_and_deps(tmp_path):
    store = index_dir(write_repo(tmp_path / "repo", RUST))
    main = graph.deps(store, "crates/core/main.rs")
    assert {d["path"] for d in main["imports"]} == {
        "crates/core/flags/mod.rs", "crates/core/search.rs"}  # `mod flags;` `mod search;` beside a [[bin]]
    search = graph.deps(store, "crates/core/search.rs")
    assert {d["path"] for d in search["imports"]} == {"crates/matcher/src/lib.rs"}  # grep_matcher by its Cargo name
    assert {d["path"] for d in search["imported_by"]} == {"crates/core/main.rs", "crates/core/flags/hiargs.rs"}
    assert "crate::flags::HiArgs" not in main["unresolved"]
    flags = graph.deps(store, "crates/core/flags/mod.rs")
    assert {d["path"] for d in flags["imports"]} == {"crates/core/flags/hiargs.rs"}
    store.close()


def test_rust_self_fields_aliases_results_and_bounds(tmp_path):
    store = index_dir(write_repo(tmp_path / "repo", RUST))
    detect = _calls(store, "s:crates::core::search::SearchWorker::detect_binary")
    # self.config.binary.quit_byte(); range.start() with `range: &Range` and `type Range = Match`
    assert detect == {"s:crates::core::search::BinaryDetection::quit_byte": 1.0, "s:crate::Match::start": 1.0}
    run = _calls(store, "s:crates::core::search::SearchWorker::run")
    assert run == {"s:crate::Match::new": 1.0, "s:crates::core::search::SearchWorker::detect_binary": 1.0}
    main = _calls(store, "s:crates::core::main::main")
    assert main["s:crates::core::flags::hiargs::HiArgs::parse"] == 1.0  # through `pub use self::hiargs::HiArgs`
    assert main["s:crates::core::flags::hiargs::HiArgs::binary"] == 1.0  # let args = HiArgs::parse()
    assert main["s:crates::core::search::SearchWorker::run"] == 1.0  # let w = search::SearchWorker::new(..)
    bound = _calls(store, "s:crates::core::search::SearchWorker::search")
    assert bound == {"s:crate::Matcher::is_match": 1.0}  # M: Matcher
    tests = _calls(store, "s:crates::core::search::tests::t")
    assert tests["s:crates::core::search::SearchWorker::run"] == 1.0  # `use super::*` in `mod tests`
    store.close()


def test_ts_members_parameters_and_external_types(tmp_path):
    store = index_dir(write_repo(tmp_path / "repo", TS))
    load = _calls(store, "s:src/service.Service.load")
    assert load == {"s:src/repo.Repo.find": 1.0, "s:src/repo.Order.total": 1.0}  # constructor(private repo: Repo)
    assert _calls(store, "s:src/service.Service.watch") == {}  # obs: Observable (rxjs), this.cache: Map
    assert _calls(store, "s:src/service.total") == {"s:src/repo.Order.total": 1.0}  # o: Order
    # for (const o of orders: Order[]); makeRepo() returns `new Repo()` (no declared result)
    assert _calls(store, "s:src/service.sum") == {
        "s:src/repo.Order.total": 1.0, "s:src/service.makeRepo": 1.0, "s:src/repo.Repo.find": 1.0}
    store.close()


def test_java_fields_locals_var_and_imports(tmp_path):
    store = index_dir(write_repo(tmp_path / "repo", JAVA))
    load = _calls(store, "s:com.acme.Service.load")
    # repo.find / this.repo.find (field), order.total (local), again.total (var = this.repo.find());
    # names.add: java.util.List, not Order.add; ((Order) o).total(); new Repo().find(id).total()
    assert load == {"s:com.acme.Repo.find": 1.0, "s:com.acme.Order.total": 1.0, "s:com.acme.Repo": 1.0}
    store.close()


def test_callees_json_marks_low_confidence_edges(tmp_path, capsys):
    files = dict(GO)
    files["guess.go"] = """
package proxy

func guess(xs []any) {
	for _, x := range xs {
		x.(interface{ Available() bool }).Available()
	}
	unknownThing().Available()
}
"""
    root = write_repo(tmp_path / "repo", files)
    index_dir(root).close()
    assert cli_main(["symbol", "check", "--callees", "--json", "--repo", str(root)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["callees"] and all(c["confidence"] == "high" for c in out["callees"])
    assert cli_main(["symbol", "guess", "--callees", "--json", "--repo", str(root)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {c["confidence"] for c in out["callees"]} == {"low"}  # x.Available() on an unknown value: by name


def _all_edges(store) -> set[tuple]:
    return set(store.conn.execute(
        "SELECT f.path, e.src, e.dst, e.kind, round(e.weight, 6), e.line FROM edges e JOIN files f ON f.id=e.file_id"))


def test_lazy_resolver_and_incremental_updates_agree_with_a_rebuild(tmp_path):
    from repoloop.indexer.graph.build import file_edges, rebuild_edges
    from repoloop.indexer.graph.resolve_refs import Resolver
    from tests.graph_fixtures import reindex

    files = {**GO, **{f"rs/{k}": v for k, v in RUST.items()}}
    root = write_repo(tmp_path / "repo", files)
    store = index_dir(root)
    eager, lazy = Resolver(store.conn), Resolver(store.conn, lazy=True)
    for (fid,) in store.conn.execute("SELECT id FROM files"):
        assert sorted(file_edges(eager, fid)) == sorted(file_edges(lazy, fid))
    # a field's declared type changes in one file: calls through it elsewhere change
    p = root / "pool.go"
    p.write_text(p.read_text().replace("flags     Flags", "flags     WrappedHeader"))
    # a result type changes: `pool := newPool(); pool[1].setHealthy()` no longer reaches Upstream
    p.write_text(p.read_text().replace("func newPool() UpstreamPool", "func newPool() []string"))
    store = reindex(root, store)
    incremental = _all_edges(store)
    got = _calls(store, "s:proxy.check")
    assert "s:proxy.Flags.Int" not in got and "s:proxy.Upstream.setHealthy" not in got
    rebuild_edges(store)
    assert incremental == _all_edges(store)
    store.close()


def test_symbol_tools_show_the_same_callers_and_callees(tmp_path):
    """MCP get_symbol and the agent's get_symbol carry the graph's callers and callees, guesses
    marked: the same edges `symbol --callees` shows."""
    from repoloop.agent.observe import Observer
    from repoloop.agent.tools import Toolbox
    from repoloop.retrieval.api import RetrievalOptions
    from repoloop.retrieval.graph import neighbour_lines
    from repoloop.service.mcp_server import Definition

    files = dict(GO)
    files["guess.go"] = "package proxy\n\nfunc guess() {\n\tunknownThing().Available()\n}\n"
    root = write_repo(tmp_path / "repo", files)
    index_dir(root).close()
    obs = Observer.open(root, None, options=RetrievalOptions(), lexical_only=True, build=False, rerank=False)
    defs = obs.symbol("doActiveHealthCheck")
    assert defs and defs[0]["qualname"] == "proxy.Handler.doActiveHealthCheck"
    callees = {c["qualname"]: c["confidence"] for c in defs[0]["callees"]}
    assert callees["proxy.Upstream.setHealthy"] == "high"
    assert not any(q.endswith((".WithValue", ".JoinHostPort")) for q in callees)
    assert {c["qualname"] for c in defs[0]["callers"]} == {"proxy.check"}
    assert set(Definition.__annotations__) >= {"callers", "callees"}  # MCP's typed result carries them
    text = "\n".join(neighbour_lines(defs[0]))  # what MCP get_symbol prints under the definition
    assert "calls: " in text and "proxy.Upstream.setHealthy" in text and "called by: proxy.check" in text
    tool = Toolbox(root, runner=None, search=obs).call("get_symbol", json.dumps({"name": "guess"}))  # type: ignore[arg-type]
    assert "calls: proxy.Upstream.Available (guess)" in tool.output  # a name-only edge, marked
    obs.close()


def test_go_deps_shows_each_imported_package_once(tmp_path, capsys):
    files = {"go.mod": "module example.com/m\n\ngo 1.22\n",
             "main.go": 'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/m/store"\n)\n\nfunc main() { fmt.Println(store.A()) }\n',
             **{f"store/{n}.go": f"package store\n\nfunc {n.upper()}() int {{ return 1 }}\n" for n in "abc"}}
    root = write_repo(tmp_path / "repo", files)
    store = index_dir(root)
    d = graph.deps(store, "main.go")
    assert d["packages"] == [{"package": "store", "line": 6, "files": ["store/a.go", "store/b.go", "store/c.go"]}]
    assert len(d["imports"]) == 3  # the files stay in `imports` for JSON readers
    store.close()
    assert cli_main(["deps", "main.go", "--repo", str(root)]) == 0
    out = capsys.readouterr().out
    assert "store/ (3 files):6" in out and "store/a.go" not in out
    assert cli_main(["deps", "main.go", "--files", "--repo", str(root)]) == 0
    assert "store/b.go:6" in capsys.readouterr().out
