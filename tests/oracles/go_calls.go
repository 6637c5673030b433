// go_calls: the Go type checker's answer for every call in a module, as JSON lines.
//
// Usage: go run go_calls.go MODULE_ROOT
//
// Each package of the module is type-checked from source (go/types), the module's own packages
// through this program's importer and the standard library from GOROOT's source; packages outside
// the module that are not on this machine become go/types' fake packages, so a call through them
// is still known to leave the module. For each call expression it prints
// {"file", "line", "name" (the called identifier), "caller" (enclosing function as repoloop names
// it, "" at package level), "kind": "repo" | "ext" | "dyn" | "unknown", "target" (repo only),
// "pkgqual" (the callee is `pkg.F` with pkg an import name), "extpkg" (that package lies outside
// the module)}. "dyn": a function value (variable, field, parameter): no static target.
package main

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/build"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

type call struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Name    string `json:"name"`
	Caller  string `json:"caller"`
	Kind    string `json:"kind"`
	Target  string `json:"target,omitempty"`
	PkgQual bool   `json:"pkgqual"`
	ExtPkg  bool   `json:"extpkg"`
}

var (
	root, modPath string
	fset          = token.NewFileSet()
	dirs          = map[string][]*ast.File{} // package dir (rel) -> non-test + in-package test files
	xtests        = map[string][]*ast.File{} // package dir -> external test package files
	checked       = map[string]*types.Package{}
	infos         = map[string]*types.Info{}
	xinfos        = map[string]*types.Info{}
	std           types.Importer
	pkgNames      = map[string]string{} // dir -> package name
)

type imp struct{}

func (imp) Import(path string) (*types.Package, error) { return imp{}.ImportFrom(path, "", 0) }
func (imp) ImportFrom(path, dir string, mode types.ImportMode) (*types.Package, error) {
	if path == modPath || strings.HasPrefix(path, modPath+"/") {
		rel := strings.TrimPrefix(strings.TrimPrefix(path, modPath), "/")
		if p := check(rel); p != nil {
			return p, nil
		}
		return nil, fmt.Errorf("no package %s", path)
	}
	if !strings.Contains(strings.SplitN(path, "/", 2)[0], ".") {
		return std.Import(path)
	}
	return nil, fmt.Errorf("outside the module: %s", path)
}

func newInfo() *types.Info {
	return &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Uses: map[*ast.Ident]types.Object{},
		Defs: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
}

func check(rel string) *types.Package {
	if p, ok := checked[rel]; ok {
		return p
	}
	files := dirs[rel]
	if len(files) == 0 {
		return nil
	}
	checked[rel] = nil // cycles
	info := newInfo()
	conf := types.Config{Importer: imp{}, Error: func(error) {}, FakeImportC: true}
	path := modPath
	if rel != "" {
		path += "/" + rel
	}
	p, _ := conf.Check(path, fset, files, info)
	checked[rel] = p
	infos[rel] = info
	return p
}

var vendorish = regexp.MustCompile(`(^|/)(testdata|vendor|_[^/]*|\.[^/]*)(/|$)`)

func main() {
	root = os.Args[1]
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		panic(err)
	}
	modPath = regexp.MustCompile(`(?m)^module\s+(\S+)`).FindStringSubmatch(string(data))[1]
	std = importer.ForCompiler(fset, "source", nil)
	ctx := build.Default
	ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = "linux", "amd64", false
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if vendorish.MatchString(rel) {
			return nil
		}
		dir := filepath.Dir(p)
		if ok, _ := ctx.MatchFile(dir, fi.Name()); !ok {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil
		}
		d := filepath.ToSlash(filepath.Dir(rel))
		if d == "." {
			d = ""
		}
		name := f.Name.Name
		if strings.HasSuffix(name, "_test") && strings.HasSuffix(p, "_test.go") {
			xtests[d] = append(xtests[d], f)
			return nil
		}
		if prev, ok := pkgNames[d]; ok && prev != name {
			return nil // a stray file of another package (a generator, `package main` among others)
		}
		pkgNames[d] = name
		dirs[d] = append(dirs[d], f)
		return nil
	})
	keys := make([]string, 0, len(dirs))
	for d := range dirs {
		keys = append(keys, d)
	}
	sort.Strings(keys)
	for _, d := range keys {
		check(d)
	}
	for d, files := range xtests {
		info := newInfo()
		conf := types.Config{Importer: imp{}, Error: func(error) {}, FakeImportC: true}
		conf.Check(modPath+"/"+d+"_test", fset, files, info)
		xinfos[d] = info
	}
	out := json.NewEncoder(os.Stdout)
	for _, d := range keys {
		for _, f := range dirs[d] {
			emit(out, d, f, infos[d])
		}
	}
	for d, files := range xtests {
		for _, f := range files {
			emit(out, d, f, xinfos[d])
		}
	}
}

// module is repoloop's module for a package dir: the dir, or the package name at the root.
func module(d string) string {
	if d == "" {
		return pkgNames[""]
	}
	return d
}

func inModule(p *types.Package) (string, bool) {
	if p == nil {
		return "", false
	}
	path := strings.TrimSuffix(p.Path(), "_test") // an external test package lives in its dir
	if path == modPath || strings.HasPrefix(path, modPath+"/") {
		return strings.TrimPrefix(strings.TrimPrefix(path, modPath), "/"), true
	}
	return "", false
}

func recvName(t types.Type) string {
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	switch n := t.(type) {
	case *types.Named:
		return n.Origin().Obj().Name()
	case *types.Alias:
		return n.Obj().Name()
	}
	return ""
}

func funcQual(fn *types.Func) (string, bool) {
	fn = fn.Origin()
	d, ok := inModule(fn.Pkg())
	if !ok {
		return "", false
	}
	sig, _ := fn.Type().(*types.Signature)
	if sig != nil && sig.Recv() != nil {
		r := recvName(sig.Recv().Type())
		if r == "" {
			return "", false
		}
		return module(d) + "." + r + "." + fn.Name(), true
	}
	return module(d) + "." + fn.Name(), true
}

func emit(out *json.Encoder, d string, f *ast.File, info *types.Info) {
	rel, _ := filepath.Rel(root, fset.Position(f.Pos()).Filename)
	rel = filepath.ToSlash(rel)
	for _, decl := range f.Decls {
		caller := ""
		if fd, ok := decl.(*ast.FuncDecl); ok {
			caller = module(d) + "."
			if fd.Recv != nil && len(fd.Recv.List) > 0 {
				caller += typeName(fd.Recv.List[0].Type) + "."
			}
			caller += fd.Name.Name
		}
		ast.Inspect(decl, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			rec := judge(c, info)
			rec.File, rec.Line, rec.Caller = rel, fset.Position(c.Fun.Pos()).Line, caller
			if rec.Name != "" {
				out.Encode(rec)
			}
			return true
		})
	}
}

func typeName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return typeName(t.X)
	case *ast.IndexExpr:
		return typeName(t.X)
	case *ast.IndexListExpr:
		return typeName(t.X)
	case *ast.Ident:
		return t.Name
	}
	return ""
}

func judge(c *ast.CallExpr, info *types.Info) call {
	fun := ast.Unparen(c.Fun)
	switch g := fun.(type) {
	case *ast.IndexExpr:
		fun = g.X
	case *ast.IndexListExpr:
		fun = g.X
	}
	var rec call
	var nameIdent *ast.Ident
	switch x := fun.(type) {
	case *ast.Ident:
		nameIdent = x
	case *ast.SelectorExpr:
		nameIdent = x.Sel
		if id, ok := x.X.(*ast.Ident); ok {
			if pn, ok := info.Uses[id].(*types.PkgName); ok {
				rec.PkgQual = true
				_, in := inModule(pn.Imported())
				rec.ExtPkg = !in
				if !in {
					rec.Name, rec.Kind = x.Sel.Name, "ext"
					return rec
				}
			}
		}
	default:
		rec.Kind = "dyn"
		return rec
	}
	rec.Name = nameIdent.Name
	if tv, ok := info.Types[fun]; ok && tv.IsType() {
		rec.Kind = "ext"
		if n, ok := tv.Type.(*types.Named); ok {
			if d, in := inModule(n.Obj().Pkg()); in {
				rec.Kind, rec.Target = "repo", module(d)+"."+n.Obj().Name()
			}
		}
		return rec
	}
	if sel, ok := fun.(*ast.SelectorExpr); ok {
		if s := info.Selections[sel]; s != nil {
			switch s.Kind() {
			case types.FieldVal:
				rec.Kind = "dyn"
			default:
				if fn, ok := s.Obj().(*types.Func); ok {
					if q, in := funcQual(fn); in {
						rec.Kind, rec.Target = "repo", q
					} else if _, in := inModule(fn.Pkg()); in {
						rec.Kind = "unknown" // a method of an unnamed type
					} else {
						rec.Kind = "ext"
					}
				}
			}
			return rec
		}
	}
	switch obj := info.Uses[nameIdent].(type) {
	case *types.Builtin:
		rec.Kind = "ext"
	case *types.Func:
		if q, in := funcQual(obj); in {
			rec.Kind, rec.Target = "repo", q
		} else {
			rec.Kind = "ext"
		}
	case *types.Var:
		rec.Kind = "dyn"
	default:
		rec.Kind = "unknown"
	}
	return rec
}
