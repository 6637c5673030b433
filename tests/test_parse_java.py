"""Java: package qualnames, inner classes, interfaces, enums, records, imports, inheritance."""

from __future__ import annotations

from repoloop.indexer.parse.parser import parse_source

JAVA = b'''package com.acme.shop;

import java.util.List;
import static java.util.Objects.requireNonNull;
import java.io.*;

/** An order. */
public class Order extends Base implements Serializable, Comparable<Order> {
    private static final int MAX = 3;
    private int count;
    public Order(int id) { super(id); }
    @Override
    public int compareTo(Order o) { return Integer.compare(id, o.id); }
    static class Line { void add() { items.add(new Item()); } }
    enum Status { OPEN, CLOSED; boolean done() { return this == CLOSED; } }
    interface Visitor<T> { T visit(Order o); }
}
record Point(int x, int y) {}
'''


def test_java() -> None:
    p = parse_source("src/main/java/com/acme/shop/Order.java", JAVA, "java")
    assert p.syntax_errors == 0 and p.module == "com.acme.shop"
    s = {x.qualname: x for x in p.symbols}
    order = s["com.acme.shop.Order"]
    assert (order.kind, order.start_line, order.end_line, order.doc) == ("class", 8, 17, "An order.")
    assert s["com.acme.shop.Order.MAX"].kind == "constant"
    assert "com.acme.shop.Order.count" not in s  # plain fields are not constants
    assert s["com.acme.shop.Order.Order"].kind == "method"  # constructor
    cmp = s["com.acme.shop.Order.compareTo"]
    assert (cmp.kind, cmp.start_line, cmp.end_line, cmp.parent) == ("method", 12, 13, "com.acme.shop.Order")
    assert s["com.acme.shop.Order.Line"].kind == "class"  # inner class
    assert s["com.acme.shop.Order.Line.add"].parent == "com.acme.shop.Order.Line"
    assert s["com.acme.shop.Order.Status"].kind == "enum"
    assert s["com.acme.shop.Order.Status.done"].kind == "method"
    assert s["com.acme.shop.Order.Visitor"].kind == "interface"
    assert s["com.acme.shop.Order.Visitor.visit"].kind == "method"
    assert s["com.acme.shop.Point"].kind == "class"
    imports = {(r.module, r.name, r.full) for r in p.refs if r.kind == "import"}
    assert imports == {
        ("java.util", "List", "java.util.List"),
        ("java.util.Objects", "requireNonNull", "java.util.Objects.requireNonNull"),
        ("java.io", "*", "java.io.*"),
    }
    inherits = {(r.name, r.scope) for r in p.refs if r.kind == "inherit"}
    assert inherits == {(n, "com.acme.shop.Order") for n in ("Base", "Serializable", "Comparable")}
    calls = {(r.full, r.name, r.scope) for r in p.refs if r.kind == "call"}
    assert ("Integer.compare", "compare", "com.acme.shop.Order.compareTo") in calls
    assert ("items.add", "add", "com.acme.shop.Order.Line.add") in calls
    assert ("Item", "Item", "com.acme.shop.Order.Line.add") in calls  # `new Item()`


def test_java_without_package_is_path_based() -> None:
    p = parse_source("tools/Main.java", b"class Main { void run() {} }\n", "java")
    assert p.module == "tools" and [x.qualname for x in p.symbols] == ["tools.Main", "tools.Main.run"]
