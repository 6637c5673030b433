"""C and C++: structs/functions, namespaces, templates, in-class and out-of-class methods."""

from __future__ import annotations

from repoloop.indexer.parse.languages import detect_language
from repoloop.indexer.parse.parser import parse_source

C = b'''#include <stdio.h>
#include "util.h"
#define MAX 10
/* A point. */
struct point { int x; int y; };
typedef struct { int a; } pair_t;
enum color { RED, GREEN };
static int add(int a, int b) { return helper(a) + b; }
int *make(void);
int main(int argc, char **argv) {
    printf("%d\\n", add(1, 2));
    return 0;
}
'''

CPP = b'''#include <vector>
namespace geo {
namespace detail { int helper(int x) { return x; } }
/// A shape.
class Shape : public Base, private Other {
public:
    Shape() {}
    virtual double area() const { return detail::helper(1); }
    void draw();
    struct Inner { int f() { return 0; } };
};
template <typename T>
T max_of(T a, T b) { return a > b ? a : b; }
void Shape::draw() { this->area(); std::sort(v.begin(), v.end()); }
}
template <class T> class Box { T get() { return t; } T t; };
double geo::Shape::extra() { return 1.0; }
'''


def test_c() -> None:
    assert detect_language("x.c") == "c" and detect_language("x.h") == "c" and detect_language("x.hpp") == "cpp"
    assert detect_language("x.h", b"#pragma once\nint f(void);\n") == "c"
    assert detect_language("x.h", b"#pragma once\nnamespace geo {\n") == "cpp"  # a C++ header named .h
    p = parse_source("src/a.c", C, "c")
    assert p.syntax_errors == 0
    s = {x.qualname: x for x in p.symbols}
    assert (s["point"].kind, s["point"].start_line, s["point"].doc) == ("struct", 5, "A point.")
    assert s["pair_t"].kind == "struct"
    assert s["color"].kind == "enum"
    assert s["MAX"].kind == "macro"
    assert (s["add"].kind, s["add"].start_line, s["add"].signature) == ("function", 8, "static int add(int a, int b)")
    assert (s["main"].start_line, s["main"].end_line) == (10, 13)
    assert "make" not in s  # a prototype is not a definition
    assert {(r.module, r.name) for r in p.refs if r.kind == "import"} == {("stdio.h", "stdio.h"), ("util.h", "util.h")}
    calls = {(r.name, r.scope, r.line) for r in p.refs if r.kind == "call"}
    assert {("helper", "add", 8), ("printf", "main", 11), ("add", "main", 11)} <= calls


def test_cpp() -> None:
    p = parse_source("src/geo.cpp", CPP, "cpp")
    assert p.syntax_errors == 0
    s = {x.qualname: x for x in p.symbols}
    assert s["geo"].kind == "namespace" and s["geo::detail"].kind == "namespace"
    assert s["geo::detail::helper"].kind == "function"
    shape = s["geo::Shape"]
    assert (shape.kind, shape.start_line, shape.end_line, shape.doc) == ("class", 5, 11, "A shape.")
    assert s["geo::Shape::Shape"].kind == "method"  # constructor
    area = s["geo::Shape::area"]  # in-class definition
    assert (area.kind, area.start_line, area.parent) == ("method", 8, "geo::Shape")
    assert "geo::Shape::draw" in s and s["geo::Shape::draw"].start_line == 14  # out-of-class `Shape::draw`
    assert s["geo::Shape::draw"].parent == "geo::Shape" and s["geo::Shape::draw"].kind == "method"
    assert s["geo::Shape::Inner"].kind == "struct" and s["geo::Shape::Inner::f"].kind == "method"
    assert (s["geo::max_of"].kind, s["geo::max_of"].start_line) == ("function", 13)  # template
    assert s["Box"].kind == "class" and s["Box::get"].kind == "method"
    assert s["geo::Shape::extra"].parent == "geo::Shape"  # `geo::Shape::extra` at file level
    assert {(r.name, r.scope) for r in p.refs if r.kind == "inherit"} == {("Base", "geo::Shape"), ("Other", "geo::Shape")}
    calls = {(r.full, r.scope) for r in p.refs if r.kind == "call"}
    assert ("detail::helper", "geo::Shape::area") in calls
    assert ("std::sort", "geo::Shape::draw") in calls and ("this->area", "geo::Shape::draw") in calls
    # the template line belongs to the chunk of its function (small budget: the namespace is split)
    small = parse_source("src/geo.cpp", CPP, "cpp", max_tokens=60)
    chunk = next(c for c in small.chunks if c.symbol == "geo::max_of")
    assert chunk.start_line == 12


def test_a_cpp_header_named_h_is_found_past_its_licence_and_by_its_class_heads() -> None:
    """The first C++-only line of a `.h` may come after a long licence comment, and a library's
    class heads carry an export macro: both are C++; C headers (struct, typedef, prototypes,
    `<stdio.h>`) stay C."""
    from repoloop.indexer.parse.languages import HEADER_SNIFF_BYTES

    licence = b"/*\n" + b" * Licensed under the MIT License; see LICENSE for the terms of use.\n" * 12 + b" */\n"
    assert len(licence) > 512
    heads = [b"namespace YAML {\n", b"class YAML_CPP_API Node {\n", b"class LEVELDB_EXPORT Slice final : public Base {\n",
             b"template <typename T>\nstruct convert;\n", b"struct node_ref : private noncopyable {\n",
             b"#include <vector>\n", b"  public:\n", b"using Iter = std::vector<int>::iterator;\n",
             b"extern \"C++\" {\n"]
    for head in heads:
        data = b"#pragma once\n" + licence + head
        assert detect_language("inc/x.h", data[:HEADER_SNIFF_BYTES]) == "cpp", head
        assert detect_language("inc/x.h", data[:256]) == "c"  # what the old 256-byte sniff saw
    c_header = (b"#ifndef UV_H\n#define UV_H\n" + licence + b"#include <stdio.h>\n#include <stddef.h>\n"
                b"typedef struct uv_loop_s uv_loop_t;\nstruct uv_buf_t { char* base; size_t len; };\n"
                b"struct flags { unsigned a : 1; unsigned b : 2; };\nUV_EXTERN int uv_run(uv_loop_t*, int mode);\n"
                b"#ifdef __cplusplus\nextern \"C\" {\n#endif\n")
    assert detect_language("include/uv.h", c_header) == "c"


def test_a_class_head_with_an_export_macro_is_a_class() -> None:
    """`class YAML_CPP_API Node {` (a library's export macro) is a class with its methods, and the
    namespace around it ends where it ends; the macro is not a name."""
    src = (b"namespace YAML {\nclass YAML_CPP_API Node {\n public:\n  Node();\n  bool IsNull() const;\n};\n"
           b"class LEVELDB_EXPORT Slice final : public Base {\n public:\n  void clear() { n = 0; }\n};\n"
           b"struct YAML_CPP_API Mark {\n  int pos;\n};\nclass URL {\n  int port;\n};\n}\n")
    p = parse_source("inc/node.h", src, "cpp")
    got = {(s.kind, s.qualname, s.start_line, s.end_line) for s in p.symbols}
    assert p.syntax_errors == 0
    assert {("namespace", "YAML", 1, 17), ("class", "YAML::Node", 2, 6), ("class", "YAML::Slice", 7, 10),
            ("struct", "YAML::Mark", 11, 13), ("class", "YAML::URL", 14, 16)} <= got
    assert ("method", "YAML::Slice::clear", 9, 9) in got
    assert not any("YAML_CPP_API" in q or "LEVELDB_EXPORT" in q for _k, q, _s, _e in got)


def test_branches_opening_one_block_and_loop_macros_do_not_swallow_the_functions_after_them() -> None:
    """Both branches of an `#ifdef` open the same `if` block, and a loop macro opens a block: the
    functions after them are top-level functions, not nested in the first one; lines unchanged."""
    src = (b"static int write_bufs(int n) {\n"
           b"#ifdef _MSC_VER\n  if (n > 0 && fast()) {\n#else\n  if (n > 0) {\n#endif\n    n--;\n  }\n"
           b"  uv__queue_foreach(q, &loop->handles) {\n    n++;\n  }\n  return n;\n}\n"
           b"static void resize(void) {\n  return;\n}\n"
           b"int after(void) { return 1; }\n")
    p = parse_source("src/win/tty.c", src, "c")
    got = {(s.qualname, s.start_line, s.end_line) for s in p.symbols if s.kind == "function"}
    assert got == {("write_bufs", 1, 13), ("resize", 14, 16), ("after", 17, 17)}
    assert "\n".join(c.text for c in p.chunks).count("#ifdef _MSC_VER") == 1  # the file's own text


def test_of_two_branches_the_one_taken_without_configuration_macros_is_read() -> None:
    """`#ifdef WIN32` / `int umain(...) {` / `#else` / `int main(...) {`: a build without WIN32 has
    `main`; `#ifndef` keeps its first branch."""
    src = (b"#ifdef WIN32\nint umain(int argc, char *argv[]) {\n#else\nint main(int argc, char *argv[]) {\n#endif\n"
           b"  return run(argc);\n}\n"
           b"#ifndef NO_COLOR\nstatic void paint(int c) {\n#else\nstatic void plain(int c) {\n#endif\n  (void)c;\n}\n")
    p = parse_source("src/main.c", src, "c")
    assert {(s.qualname, s.start_line, s.end_line) for s in p.symbols if s.kind == "function"} == {
        ("main", 4, 7), ("paint", 9, 14)}


def test_a_struct_whose_fields_are_a_bare_macro_line_ends_where_it_ends() -> None:
    """`struct uv_timer_s {` / `UV_HANDLE_FIELDS` / `};`: the definitions after it are not nested in it."""
    src = (b"struct uv_shutdown_s {\n  UV_REQ_FIELDS\n  uv_stream_t* handle;\n  UV_SHUTDOWN_PRIVATE_FIELDS\n};\n"
           b"struct uv_timer_s {\n  UV_HANDLE_FIELDS\n  UV_TIMER_PRIVATE_FIELDS\n};\n"
           b"enum uv_process_flags {\n  UV_PROCESS_SETUID = 1\n};\n"
           b"int uv_timer_init(uv_loop_t* loop, uv_timer_t* handle) {\n  return 0;\n}\n")
    p = parse_source("include/uv.h", src, "c")
    got = {(s.kind, s.qualname, s.start_line, s.end_line) for s in p.symbols}
    assert {("struct", "uv_shutdown_s", 1, 5), ("struct", "uv_timer_s", 6, 9), ("enum", "uv_process_flags", 10, 12),
            ("function", "uv_timer_init", 13, 15)} <= got
    assert not any("::" in q for _k, q, _s, _e in got)
