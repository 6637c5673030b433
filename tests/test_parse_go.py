"""Go: receivers (pointer and value), structs, interfaces, package qualnames, imports."""

from __future__ import annotations

from repoloop.indexer.parse.languages import detect_language, module_name
from repoloop.indexer.parse.parser import parse_source

GO = b'''package server

import (
	"fmt"
	str "strings"
)

// Server serves.
type Server struct {
	Logger
	Addr string
}

type Handler interface {
	Serve(w Writer) error
}

const MaxConns = 10

// Start starts.
func (s *Server) Start() error {
	fmt.Println(str.ToUpper(s.Addr))
	return nil
}

func (s Server) Name() string { return s.Addr }

func New(addr string) *Server { return &Server{Addr: addr} }
'''


def test_go() -> None:
    assert detect_language("pkg/server/server.go") == "go"
    assert module_name("pkg/server/server.go", "go") == "pkg/server"
    p = parse_source("pkg/server/server.go", GO, "go")
    assert p.syntax_errors == 0 and p.module == "pkg/server"
    s = {x.qualname: x for x in p.symbols}
    assert (s["pkg/server.Server"].kind, s["pkg/server.Server"].start_line, s["pkg/server.Server"].end_line) == ("struct", 9, 12)
    assert s["pkg/server.Server"].doc == "Server serves."
    assert s["pkg/server.Handler"].kind == "interface"
    assert s["pkg/server.Handler.Serve"].kind == "method"
    start = s["pkg/server.Server.Start"]  # pointer receiver
    assert (start.kind, start.start_line, start.end_line, start.parent) == ("method", 21, 24, "pkg/server.Server")
    assert start.signature == "func (s *Server) Start() error" and start.doc == "Start starts."
    name = s["pkg/server.Server.Name"]  # value receiver
    assert (name.kind, name.start_line, name.parent) == ("method", 26, "pkg/server.Server")
    assert s["pkg/server.New"].kind == "function" and s["pkg/server.New"].parent is None
    assert s["pkg/server.MaxConns"].kind == "constant"
    imports = {(r.module, r.name, r.alias) for r in p.refs if r.kind == "import"}
    assert imports == {("fmt", "fmt", None), ("strings", "strings", "str")}
    calls = {(r.full, r.scope, r.line) for r in p.refs if r.kind == "call"}
    assert ("fmt.Println", "pkg/server.Server.Start", 22) in calls
    assert ("str.ToUpper", "pkg/server.Server.Start", 22) in calls
    assert {(r.name, r.scope) for r in p.refs if r.kind == "inherit"} == {("Logger", "pkg/server.Server")}


def test_go_root_file_uses_package_name() -> None:
    p = parse_source("main.go", b"package main\n\nfunc main() {}\n", "go")
    assert p.module == "main" and [x.qualname for x in p.symbols] == ["main.main"]
