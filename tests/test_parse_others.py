"""C#, Ruby and PHP: namespaces, classes, methods, imports, inheritance."""

from __future__ import annotations

from repoloop.indexer.parse.languages import detect_language
from repoloop.indexer.parse.parser import parse_source

CS = b'''using System;
using IO = System.IO;
namespace Acme.Web {
    /// <summary>A controller.</summary>
    public class HomeController : Controller, IDisposable {
        public HomeController() { }
        public string Get(int id) { return Helper.Format(id); }
        class Inner { void Run() { Console.WriteLine("x"); } }
    }
    public interface IRepo { void Save(); }
    public struct Pt { public int X; }
    public enum Kind { A, B }
}
'''

RB = b'''require "json"
require_relative "util"
module Billing
  # An invoice.
  class Invoice < Base
    include Comparable
    MAX = 3
    def total
      items.sum(&:price)
    end
    def self.build(x)
      new(x).tap { |i| i.save! }
    end
  end
end
def top; puts "x"; end
'''

PHP = b'''<?php
namespace App\\Models;

use Illuminate\\Support\\Str;
use App\\Contracts\\Repo as R;

/** A user. */
class User extends Model implements R {
    use HasFactory;
    const MAX = 3;
    public function save(array $opts = []): bool {
        $this->touch();
        return Str::slug(strtolower($this->name)) !== '';
    }
}
function helper($x) { return $x; }
'''


def test_csharp() -> None:
    assert detect_language("a/B.cs") == "c_sharp"
    p = parse_source("src/HomeController.cs", CS, "c_sharp")
    assert p.syntax_errors == 0
    s = {x.qualname: x for x in p.symbols}
    assert s["Acme.Web"].kind == "namespace"
    ctrl = s["Acme.Web.HomeController"]
    assert (ctrl.kind, ctrl.start_line, ctrl.end_line, ctrl.doc) == ("class", 5, 9, "A controller.")
    assert (s["Acme.Web.HomeController.Get"].kind, s["Acme.Web.HomeController.Get"].start_line) == ("method", 7)
    assert s["Acme.Web.HomeController.Inner.Run"].parent == "Acme.Web.HomeController.Inner"
    assert s["Acme.Web.IRepo"].kind == "interface" and s["Acme.Web.Pt"].kind == "struct"
    assert s["Acme.Web.Kind"].kind == "enum"
    assert {(r.module, r.alias) for r in p.refs if r.kind == "import"} == {("System", None), ("System.IO", "IO")}
    assert {r.name for r in p.refs if r.kind == "inherit"} == {"Controller", "IDisposable"}
    assert ("Helper.Format", "Acme.Web.HomeController.Get") in {(r.full, r.scope) for r in p.refs if r.kind == "call"}


def test_csharp_file_scoped_namespace() -> None:
    p = parse_source("Svc.cs", b"namespace Acme.Core;\npublic class Svc { public void Go() { } }\n", "c_sharp")
    assert [x.qualname for x in p.symbols] == ["Acme.Core.Svc", "Acme.Core.Svc.Go"]


def test_ruby() -> None:
    assert detect_language("lib/billing.rb") == "ruby" and detect_language("Rakefile") == "ruby"
    p = parse_source("lib/billing.rb", RB, "ruby")
    assert p.syntax_errors == 0
    s = {x.qualname: x for x in p.symbols}
    assert s["Billing"].kind == "module"
    inv = s["Billing::Invoice"]
    assert (inv.kind, inv.start_line, inv.end_line, inv.doc) == ("class", 5, 14, "An invoice.")
    assert (s["Billing::Invoice::total"].kind, s["Billing::Invoice::total"].start_line) == ("method", 8)
    assert s["Billing::Invoice::build"].signature == "def self.build(x)"
    assert s["Billing::Invoice::MAX"].kind == "constant"
    assert s["top"].kind == "function"
    assert {(r.module, r.name) for r in p.refs if r.kind == "import"} == {("json", "json"), ("./util", "util")}
    assert {r.name for r in p.refs if r.kind == "inherit"} == {"Base", "Comparable"}
    calls = {(r.full, r.scope) for r in p.refs if r.kind == "call"}
    assert ("items.sum", "Billing::Invoice::total") in calls and ("i.save!", "Billing::Invoice::build") in calls


def test_php() -> None:
    assert detect_language("app/User.php") == "php"
    p = parse_source("app/Models/User.php", PHP, "php")
    assert p.syntax_errors == 0
    s = {x.qualname: x for x in p.symbols}
    user = s["App\\Models\\User"]
    assert (user.kind, user.start_line, user.end_line, user.doc) == ("class", 8, 15, "A user.")
    save = s["App\\Models\\User::save"]
    assert (save.kind, save.start_line, save.parent) == ("method", 11, "App\\Models\\User")
    assert save.signature == "public function save(array $opts = []): bool"
    assert s["App\\Models\\User::MAX"].kind == "constant"
    assert s["App\\Models\\helper"].kind == "function"
    imports = {(r.module, r.name, r.alias) for r in p.refs if r.kind == "import"}
    assert imports == {("Illuminate\\Support", "Str", None), ("App\\Contracts", "Repo", "R")}
    assert {r.name for r in p.refs if r.kind == "inherit"} == {"Model", "R", "HasFactory"}
    calls = {(r.full, r.scope) for r in p.refs if r.kind == "call"}
    assert ("$this->touch", "App\\Models\\User::save") in calls and ("Str::slug", "App\\Models\\User::save") in calls
