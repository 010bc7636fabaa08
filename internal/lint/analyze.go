package lint

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/packages"

	"github.com/theus-go/theus/internal/lint/passes/processes"
)

// Package is a package that Analyze linted.
type Package struct {
	Path string // import path
	Dir  string
	// Generated is the file theusgen generated in the package, "" if none;
	// Source is what its marker line says it was generated from: a
	// contract file's name, or for struct tags the package's import path.
	Generated string
	Source    string
}

// Report is what Analyze found.
type Report struct {
	Findings []Finding // file names as the go command gives them (absolute)
	Packages []Package // the packages the patterns matched, in order
	// Undefined are the compile errors of packages that do not compile
	// only because they use names that their generated code does not
	// declare (see Undefined); the analyzers do not run on those
	// packages.
	Undefined []Undefined
}

// Undefined is a compile error `x.Name undefined` where x has a type that
// theusgen generated (SellIn, *SellOut, SellArgs): the process code uses
// an input, output, topic or argument that its contract does not declare,
// or that the generated file does not declare yet. Explain says which.
type Undefined struct {
	File      string // absolute, as for Finding
	Line, Col int
	Expr      string  // the selector as written, e.g. "out.EmitTicketSold"
	Type      string  // the generated type, e.g. "SellOut"
	Name      string  // the undefined name, e.g. "EmitTicketSold"
	Package   Package // the package of the generated file that declares Type
	Msg       string  // the compiler's error, with its position
}

// ErrLoad is wrapped by the errors of packages that cannot be analyzed:
// not found, or not compiling.
var ErrLoad = errors.New("cannot load packages")

// Analyze loads the packages that patterns match, relative to dir, and
// runs analyzers on them and on every package of their module they
// import (for facts). Findings are reported for the matched packages only.
func Analyze(ctx context.Context, dir string, patterns []string, analyzers []*analysis.Analyzer) (*Report, error) {
	// The import graph first (go list, no type checking): which packages
	// of the module do the patterns reach?
	graph, err := packages.Load(&packages.Config{
		Context: ctx, Dir: dir,
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedImports | packages.NeedDeps | packages.NeedModule,
	}, patterns...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLoad, err)
	}
	if len(graph) == 0 {
		return nil, fmt.Errorf("%w: %s matched no packages", ErrLoad, strings.Join(patterns, " "))
	}
	roots := map[string]bool{}
	modules := map[string]bool{}
	for _, p := range graph {
		roots[p.PkgPath] = true
		if p.Module != nil {
			modules[p.Module.Path] = true
		}
	}
	var order []*packages.Package // module packages, dependencies first
	inOrder := map[string]bool{}
	var problems []string
	packages.Visit(graph, nil, func(p *packages.Package) {
		for _, e := range p.Errors {
			problems = append(problems, e.Error())
		}
		if roots[p.PkgPath] || p.Module != nil && modules[p.Module.Path] && !processes.Trusted(p.PkgPath) {
			order = append(order, p)
			inOrder[p.PkgPath] = true
		}
	})
	if err := loadProblems(problems); err != nil {
		return nil, err
	}

	// Then the types of every other package they import, from export data
	// (compiled once, in the build cache, as for go vet); the module's own
	// packages are type-checked from source below.
	var external []string
	seen := map[string]bool{}
	for _, p := range order {
		for path := range p.Imports {
			if !inOrder[path] && !seen[path] && path != "unsafe" {
				seen[path] = true
				external = append(external, path)
			}
		}
	}
	imported := map[string]*types.Package{"unsafe": types.Unsafe}
	if len(external) > 0 {
		exp, err := packages.Load(&packages.Config{Context: ctx, Dir: dir, Mode: packages.NeedName | packages.NeedTypes}, external...)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrLoad, err)
		}
		for _, p := range exp {
			for _, e := range p.Errors {
				problems = append(problems, e.Error())
			}
			imported[p.PkgPath] = p.Types
		}
		if err := loadProblems(problems); err != nil {
			return nil, err
		}
	}
	fset := token.NewFileSet()
	rep := &Report{}
	generated := map[string]Package{} // packages with a generated file, by path
	mismatched := map[string]bool{}   // packages that fail with Undefined only
	for _, p := range order {
		typeErrs, err := typeCheck(fset, p, imported)
		if err != nil {
			return nil, err
		}
		imported[p.PkgPath] = p.Types
		if d := describe(p); d.Generated != "" {
			generated[p.PkgPath] = d
		}
		if len(typeErrs) == 0 {
			continue
		}
		undef, ok := undefinedNames(p, typeErrs, generated)
		if !ok {
			msgs := make([]string, len(typeErrs))
			for i, e := range typeErrs {
				msgs[i] = e.Error()
			}
			return nil, loadProblems(msgs)
		}
		rep.Undefined = append(rep.Undefined, undef...)
		mismatched[p.PkgPath] = true
	}

	d := &driver{objFacts: map[objFactKey]analysis.Fact{}, pkgFacts: map[pkgFactKey]analysis.Fact{}}
	for _, p := range order {
		path := p.PkgPath
		if roots[path] {
			rep.Packages = append(rep.Packages, describe(p))
		}
		if mismatched[path] {
			continue // its types are incomplete; the mismatch is reported
		}
		diags, err := d.runPackage(p, analyzers)
		if err != nil {
			return nil, err
		}
		if !roots[path] {
			continue
		}
		for _, dg := range diags {
			pos := p.Fset.Position(dg.Pos)
			code, msg := messageCode(dg.Message)
			if code == "" {
				code = dg.Category
			}
			rep.Findings = append(rep.Findings, Finding{
				File: pos.Filename, Line: pos.Line, Col: pos.Column,
				Code: code, Severity: Error, Message: msg,
			})
		}
	}
	return rep, nil
}

func loadProblems(problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	if len(problems) > 10 {
		problems = append(problems[:10], "...")
	}
	return fmt.Errorf("%w:\n%s", ErrLoad, strings.Join(problems, "\n"))
}

// typeCheck parses and type-checks a package of the module, filling in
// the fields of p that the analyzers use, and returns its type errors. A
// file that does not parse is an error.
func typeCheck(fset *token.FileSet, p *packages.Package, imported map[string]*types.Package) ([]types.Error, error) {
	p.Fset = fset
	for _, name := range p.GoFiles {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrLoad, err)
		}
		p.Syntax = append(p.Syntax, f)
	}
	p.TypesSizes = types.SizesFor("gc", runtime.GOARCH)
	p.TypesInfo = &types.Info{
		Types:        map[ast.Expr]types.TypeAndValue{},
		Defs:         map[*ast.Ident]types.Object{},
		Uses:         map[*ast.Ident]types.Object{},
		Implicits:    map[ast.Node]types.Object{},
		Selections:   map[*ast.SelectorExpr]*types.Selection{},
		Scopes:       map[ast.Node]*types.Scope{},
		Instances:    map[*ast.Ident]types.Instance{},
		FileVersions: map[*ast.File]string{},
	}
	var errs []types.Error
	cfg := &types.Config{
		Importer: importerFunc(func(path string) (*types.Package, error) {
			if t := imported[path]; t != nil {
				return t, nil
			}
			return nil, fmt.Errorf("package %s was not loaded", path)
		}),
		Sizes: p.TypesSizes,
		Error: func(err error) {
			if te, ok := err.(types.Error); ok {
				errs = append(errs, te)
			}
		},
	}
	if p.Module != nil && p.Module.GoVersion != "" {
		cfg.GoVersion = "go" + p.Module.GoVersion
	}
	p.Types, _ = cfg.Check(p.PkgPath, fset, p.Syntax, p.TypesInfo)
	return errs, nil
}

// undefinedNames returns the type errors of p as Undefined, or false when
// one of them is something else. generated holds the packages type-checked
// so far that have a generated file.
func undefinedNames(p *packages.Package, errs []types.Error, generated map[string]Package) ([]Undefined, bool) {
	// go/types reports x.f undefined at f.
	sels := map[token.Pos]*ast.SelectorExpr{}
	for _, f := range p.Syntax {
		ast.Inspect(f, func(n ast.Node) bool {
			if s, ok := n.(*ast.SelectorExpr); ok {
				sels[s.Sel.Pos()] = s
			}
			return true
		})
	}
	var out []Undefined
	for _, e := range errs {
		s := sels[e.Pos]
		if s == nil || !strings.Contains(e.Msg, " undefined (type ") {
			return nil, false
		}
		t := p.TypesInfo.TypeOf(s.X)
		if ptr, ok := t.(*types.Pointer); ok {
			t = ptr.Elem()
		}
		named, ok := types.Unalias(t).(*types.Named)
		if !ok || named.Obj().Pkg() == nil {
			return nil, false
		}
		obj := named.Obj()
		g, ok := generated[obj.Pkg().Path()]
		if !ok || p.Fset.Position(obj.Pos()).Filename != g.Generated {
			return nil, false
		}
		pos := p.Fset.Position(e.Pos)
		out = append(out, Undefined{
			File: pos.Filename, Line: pos.Line, Col: pos.Column,
			Expr: types.ExprString(s), Type: obj.Name(), Name: s.Sel.Name,
			Package: g, Msg: e.Error(),
		})
	}
	return out, true
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }

// describe returns what lint needs to know of a matched package.
func describe(p *packages.Package) Package {
	out := Package{Path: p.PkgPath}
	if len(p.GoFiles) > 0 {
		out.Dir = filepath.Dir(p.GoFiles[0])
	}
	for _, f := range p.Syntax {
		if src, ok := generatedFrom(f); ok {
			out.Generated = p.Fset.File(f.FileStart).Name()
			out.Source = src
		}
	}
	return out
}

// generatedFrom returns what a theusgen-generated file's marker line names.
func generatedFrom(f *ast.File) (string, bool) {
	if !processes.IsGenerated(f) {
		return "", false
	}
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			if src, ok := strings.CutPrefix(c.Text, "// Code generated by theusgen from "); ok {
				return strings.TrimSuffix(src, ". DO NOT EDIT."), true
			}
		}
	}
	return "", false
}

type objFactKey struct {
	obj types.Object
	typ reflect.Type
}

type pkgFactKey struct {
	pkg *types.Package
	typ reflect.Type
}

// driver runs analyzers over packages in dependency order and keeps the
// facts they export, in memory (every package of the module is
// type-checked in one go, so objects are shared).
type driver struct {
	objFacts map[objFactKey]analysis.Fact
	pkgFacts map[pkgFactKey]analysis.Fact
}

// runPackage runs analyzers, and the analyzers they require, on one
// package and returns their diagnostics.
func (d *driver) runPackage(p *packages.Package, analyzers []*analysis.Analyzer) ([]analysis.Diagnostic, error) {
	results := map[*analysis.Analyzer]any{}
	var diags []analysis.Diagnostic
	var module *analysis.Module
	if m := p.Module; m != nil {
		module = &analysis.Module{Path: m.Path, Version: m.Version, Main: m.Main, Dir: m.Dir, GoVersion: m.GoVersion}
	}
	var run func(a *analysis.Analyzer) error
	run = func(a *analysis.Analyzer) error {
		if _, done := results[a]; done {
			return nil
		}
		inputs := map[*analysis.Analyzer]any{}
		for _, req := range a.Requires {
			if err := run(req); err != nil {
				return err
			}
			inputs[req] = results[req]
		}
		pass := &analysis.Pass{
			Analyzer: a, Fset: p.Fset, Files: p.Syntax, OtherFiles: p.OtherFiles, IgnoredFiles: p.IgnoredFiles,
			Pkg: p.Types, TypesInfo: p.TypesInfo, TypesSizes: p.TypesSizes, TypeErrors: p.TypeErrors,
			Module: module, ResultOf: inputs, ReadFile: os.ReadFile,
			Report: func(dg analysis.Diagnostic) { diags = append(diags, dg) },
			ImportObjectFact: func(obj types.Object, ptr analysis.Fact) bool {
				return copyFact(d.objFacts[objFactKey{obj, reflect.TypeOf(ptr)}], ptr)
			},
			ExportObjectFact: func(obj types.Object, f analysis.Fact) {
				d.objFacts[objFactKey{obj, reflect.TypeOf(f)}] = f
			},
			ImportPackageFact: func(pkg *types.Package, ptr analysis.Fact) bool {
				return copyFact(d.pkgFacts[pkgFactKey{pkg, reflect.TypeOf(ptr)}], ptr)
			},
			ExportPackageFact: func(f analysis.Fact) {
				d.pkgFacts[pkgFactKey{p.Types, reflect.TypeOf(f)}] = f
			},
			AllObjectFacts:  func() []analysis.ObjectFact { return d.allObjectFacts(a) },
			AllPackageFacts: func() []analysis.PackageFact { return d.allPackageFacts(a) },
		}
		res, err := a.Run(pass)
		if err != nil {
			return fmt.Errorf("%s on %s: %w", a.Name, p.PkgPath, err)
		}
		results[a] = res
		return nil
	}
	for _, a := range analyzers {
		if err := run(a); err != nil {
			return nil, err
		}
	}
	return diags, nil
}

func copyFact(from, to analysis.Fact) bool {
	if from == nil {
		return false
	}
	reflect.ValueOf(to).Elem().Set(reflect.ValueOf(from).Elem())
	return true
}

func ownsFact(a *analysis.Analyzer, t reflect.Type) bool {
	for _, f := range a.FactTypes {
		if reflect.TypeOf(f) == t {
			return true
		}
	}
	return false
}

func (d *driver) allObjectFacts(a *analysis.Analyzer) []analysis.ObjectFact {
	var out []analysis.ObjectFact
	for k, f := range d.objFacts {
		if ownsFact(a, k.typ) {
			out = append(out, analysis.ObjectFact{Object: k.obj, Fact: f})
		}
	}
	return out
}

func (d *driver) allPackageFacts(a *analysis.Analyzer) []analysis.PackageFact {
	var out []analysis.PackageFact
	for k, f := range d.pkgFacts {
		if ownsFact(a, k.typ) {
			out = append(out, analysis.PackageFact{Package: k.pkg, Fact: f})
		}
	}
	return out
}
