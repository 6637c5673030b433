"""JavaScript, TypeScript and TSX: arrow functions, classes, TS declarations, JSX, imports."""

from __future__ import annotations

from repoloop.indexer.parse.languages import detect_language, module_name
from repoloop.indexer.parse.parser import parse_source

TS = b'''import { readFile as rf, join } from "fs";
import * as path from "node:path";
import React from "react";
export const add = (a: number, b: number): number => a + b;
const sub = function (a, b) { return a - b; };
/** A shape. */
export interface Shape<T> extends Base { area(): number; }
export enum Color { Red, Green }
export type Id<T> = string | T;
export abstract class Circle<T> extends Base implements Shape<T> {
  radius = 1;
  constructor(r: number) { super(); this.radius = r; }
  area(): number { return Math.PI * this.radius ** 2; }
  static make = () => new Circle(1);
}
export default function main() { console.log(add(1, 2)); }
namespace NS { export function f() {} }
export const MAX_ITEMS = 10;
'''

TSX = b'''import React, { useState } from "react";
import { Button } from "./Button";

type Props = { label: string };

// A counter.
export const Counter: React.FC<Props> = ({ label }) => {
  const [n, setN] = useState(0);
  return <div><Button onClick={() => setN(n + 1)}>{label}</Button></div>;
};

export default function App<T>(props: T) {
  return <Counter label="x" />;
}
'''

JS = b'''const express = require("express");
export { a as b } from "./mod";
class Router extends express.Router {
  handler = async (req) => { await this.save(req); };
  static create() { return new Router(); }
}
function* walk(tree) { yield* tree.children.map(walk); }
'''


def _syms(p):
    return {s.qualname: (s.kind, s.start_line, s.end_line) for s in p.symbols}


def test_detect_and_module() -> None:
    assert detect_language("a/b.ts") == "typescript"
    assert detect_language("a/b.tsx") == "tsx"
    assert detect_language("a/b.mjs") == "javascript"
    assert detect_language("a/b.jsx") == "javascript"
    assert module_name("src/ui/Button.tsx", "tsx") == "src/ui/Button"


def test_typescript() -> None:
    p = parse_source("src/shapes.ts", TS, "typescript")
    assert p.syntax_errors == 0 and p.module == "src/shapes"
    s = _syms(p)
    assert s["src/shapes.add"] == ("function", 4, 4)
    assert s["src/shapes.sub"] == ("function", 5, 5)
    assert s["src/shapes.Shape"] == ("interface", 7, 7)
    assert s["src/shapes.Shape.area"][0] == "method"
    assert s["src/shapes.Color"] == ("enum", 8, 8)
    assert s["src/shapes.Id"] == ("type", 9, 9)
    assert s["src/shapes.Circle"] == ("class", 10, 15)
    assert s["src/shapes.Circle.constructor"] == ("method", 12, 12)
    assert s["src/shapes.Circle.area"] == ("method", 13, 13)
    assert s["src/shapes.Circle.make"] == ("method", 14, 14)
    assert s["src/shapes.main"] == ("function", 16, 16)
    assert s["src/shapes.NS"][0] == "namespace" and s["src/shapes.NS.f"][0] == "function"
    assert s["src/shapes.MAX_ITEMS"][0] == "constant"
    by = {x.qualname: x for x in p.symbols}
    assert by["src/shapes.add"].signature == "const add = (a: number, b: number): number"
    assert by["src/shapes.Circle"].signature == "abstract class Circle<T> extends Base implements Shape<T>"
    assert by["src/shapes.Shape"].doc == "A shape."
    imports = {(r.module, r.name, r.alias) for r in p.refs if r.kind == "import"}
    assert imports == {("fs", "readFile", "rf"), ("fs", "join", None), ("node:path", "*", "path"), ("react", "default", "React")}
    inherits = {(r.name, r.scope) for r in p.refs if r.kind == "inherit"}
    assert inherits == {("Base", "src/shapes.Shape"), ("Base", "src/shapes.Circle"), ("Shape", "src/shapes.Circle")}
    calls = {(r.full, r.scope) for r in p.refs if r.kind == "call"}
    assert ("console.log", "src/shapes.main") in calls and ("add", "src/shapes.main") in calls
    assert ("Circle", "src/shapes.Circle.make") in calls  # `new Circle(1)`


def test_tsx_component() -> None:
    p = parse_source("src/Counter.tsx", TSX, "tsx")
    assert p.syntax_errors == 0
    s = _syms(p)
    assert s["src/Counter.Counter"] == ("function", 7, 10)
    assert s["src/Counter.App"] == ("function", 12, 14)
    assert s["src/Counter.Props"][0] == "type"
    assert next(x for x in p.symbols if x.name == "Counter").doc == "A counter."
    calls = {(r.name, r.scope) for r in p.refs if r.kind == "call"}
    assert ("Button", "src/Counter.Counter") in calls  # JSX elements are calls of the component
    assert ("Counter", "src/Counter.App") in calls
    assert ("useState", "src/Counter.Counter") in calls
    assert not any(r.name == "div" for r in p.refs if r.kind == "call")  # HTML elements are not
    imports = {(r.module, r.name, r.alias) for r in p.refs if r.kind == "import"}
    assert ("react", "default", "React") in imports and ("./Button", "Button", None) in imports


def test_javascript() -> None:
    p = parse_source("lib/router.js", JS, "javascript")
    assert p.syntax_errors == 0
    s = _syms(p)
    assert s["lib/router.Router"] == ("class", 3, 6)
    assert s["lib/router.Router.handler"] == ("method", 4, 4)
    assert s["lib/router.Router.create"] == ("method", 5, 5)
    assert s["lib/router.walk"] == ("function", 7, 7)
    imports = {(r.module, r.name, r.alias, r.scope) for r in p.refs if r.kind == "import"}
    assert ("express", "*", "express", None) in imports  # require() at module level
    assert ("./mod", "a", "b", None) in imports  # re-export
    assert {(r.full, r.scope) for r in p.refs if r.kind == "inherit"} == {("express.Router", "lib/router.Router")}
    assert ("this.save", "lib/router.Router.handler") in {(r.full, r.scope) for r in p.refs if r.kind == "call"}


def test_commonjs_assignments() -> None:
    src = (b"function Foo(x) { this.x = x; }\nFoo.prototype.bar = function (y) { return this.x + y; };\n"
           b"exports.helper = (a) => a * 2;\nmodule.exports.other = function () {};\n")
    p = parse_source("lib/foo.js", src, "javascript")
    s = {x.qualname: (x.kind, x.start_line, x.parent) for x in p.symbols}
    assert s == {
        "lib/foo.Foo": ("function", 1, None),
        "lib/foo.Foo.bar": ("method", 2, "lib/foo.Foo"),
        "lib/foo.helper": ("function", 3, None),
        "lib/foo.other": ("function", 4, None),
    }


def test_object_literal_functions_are_methods_of_the_object() -> None:
    src = (b"export const api = {\n  get: async (id) => fetch(`/x/${id}`),\n"
           b"  \"post\": function (body) { return send(body); },\n  put(body) { return send(body); },\n};\n")
    p = parse_source("src/api.js", src, "javascript")
    s = {x.qualname: (x.kind, x.start_line, x.parent) for x in p.symbols}
    assert s == {
        "src/api.api": ("variable", 1, None),
        "src/api.api.get": ("method", 2, "src/api.api"),
        "src/api.api.post": ("method", 3, "src/api.api"),
        "src/api.api.put": ("method", 4, "src/api.api"),
    }
    assert ("fetch", "src/api.api.get") in {(r.name, r.scope) for r in p.refs if r.kind == "call"}
