"""Rust: impl and trait blocks, `impl Trait for Type`, enums, mod, use trees, crate paths."""

from __future__ import annotations

from repoloop.indexer.parse.languages import module_name
from repoloop.indexer.parse.parser import parse_source

RS = b'''use std::collections::HashMap;
use crate::util::{self, helper as h};
/// A point.
#[derive(Debug)]
pub struct Point { x: i32 }
pub enum Shape { Circle(f64), Square }
pub trait Area {
    fn area(&self) -> f64;
}
impl Point {
    pub fn new(x: i32) -> Self { Point { x } }
}
impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result { write!(f, "{}", self.x) }
}
mod inner {
    pub fn f() { super::g(); }
}
const LIMIT: usize = 3;
fn main() { let p = Point::new(1); p.area(); }
'''


def test_module_paths() -> None:
    assert module_name("src/lib.rs", "rust") == "crate"
    assert module_name("src/main.rs", "rust") == "crate"
    assert module_name("src/shapes.rs", "rust") == "crate::shapes"
    assert module_name("src/geo/mod.rs", "rust") == "crate::geo"
    assert module_name("crates/core/src/geo/point.rs", "rust") == "crate::geo::point"


def test_rust() -> None:
    p = parse_source("src/shapes.rs", RS, "rust")
    assert p.syntax_errors == 0
    s = {(x.qualname, x.kind): x for x in p.symbols}
    point = s[("crate::shapes::Point", "struct")]
    assert (point.start_line, point.doc) == (5, "A point.")
    assert ("crate::shapes::Shape", "enum") in s
    assert ("crate::shapes::Area", "trait") in s
    assert s[("crate::shapes::Area::area", "method")].parent == "crate::shapes::Area"
    impls = sorted((x.start_line, x.end_line, x.signature) for x in p.symbols if x.kind == "impl")
    assert impls == [(10, 12, "impl Point"), (13, 15, "impl fmt::Display for Point")]
    new = s[("crate::shapes::Point::new", "method")]
    assert (new.start_line, new.parent, new.signature) == (11, "crate::shapes::Point", "pub fn new(x: i32) -> Self")
    assert ("crate::shapes::Point::fmt", "method") in s
    assert ("crate::shapes::inner", "module") in s
    assert s[("crate::shapes::inner::f", "function")].parent == "crate::shapes::inner"
    assert ("crate::shapes::LIMIT", "constant") in s
    assert ("crate::shapes::main", "function") in s
    imports = {(r.module, r.name, r.alias, r.full) for r in p.refs if r.kind == "import"}
    assert imports == {
        ("std::collections", "HashMap", None, "std::collections::HashMap"),
        ("crate", "util", None, "crate::util"),
        ("crate::util", "helper", "h", "crate::util::helper"),
    }
    inherits = {(r.name, r.full, r.scope) for r in p.refs if r.kind == "inherit"}
    assert inherits == {("Display", "fmt::Display", "crate::shapes::Point")}
    calls = {(r.full, r.scope) for r in p.refs if r.kind == "call"}
    assert ("Point::new", "crate::shapes::main") in calls
    assert ("p.area", "crate::shapes::main") in calls
    assert ("super::g", "crate::shapes::inner::f") in calls
    assert ("write!", "crate::shapes::Point::fmt") in calls


def test_an_impl_for_a_reference_or_pointer_is_named_after_the_type() -> None:
    """`impl<'a, A> Trait for &'a mut A` is A's impl (not a type called `mutA`), as `*const T` is T's."""
    src = ("pub trait Visit { fn visit(&self); }\n"
           "impl<'a, A: Visit> Visit for &'a mut A {\n    fn visit(&self) {}\n}\n"
           "impl<T> Visit for *const T {\n    fn visit(&self) {}\n}\n")
    p = parse_source("src/de.rs", src.encode(), "rust")
    assert p.syntax_errors == 0
    impls = {x.qualname for x in p.symbols if x.kind == "impl"}
    methods = {x.qualname for x in p.symbols if x.kind == "method" and x.start_line > 1}
    assert impls == {"crate::de::A", "crate::de::T"}
    assert methods == {"crate::de::A::visit", "crate::de::T::visit"}
