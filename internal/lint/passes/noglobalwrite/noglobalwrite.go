package noglobalwrite

import (
	"go/ast"
	"go/token"
	"go/types"

	"golang.org/x/tools/go/analysis"

	"github.com/theus-go/theus/internal/lint/passes/processes"
)

// Code is the stable code of this analyzer's findings.
const Code = "TP004"

// Analyzer reports writes to package-level variables in process code.
var Analyzer = &analysis.Analyzer{
	Name:      "noglobalwrite",
	Doc:       "report writes to package-level variables in Theus process code",
	URL:       "https://pkg.go.dev/github.com/theus-go/theus/internal/lint/passes/noglobalwrite",
	Requires:  []*analysis.Analyzer{processes.Analyzer},
	Run:       run,
	FactTypes: []analysis.Fact{(*fact)(nil)},
}

// fact records that a function writes a package variable, for its callers
// in other packages of the module.
type fact struct{ processes.Summary }

func (*fact) AFact() {}

const advice = "the write would outlive a failed or repeated run and race with other processes; " +
	"declare the data as an output and set it through out, or keep it in the caller"

func run(pass *analysis.Pass) (any, error) {
	return processes.Check(pass, processes.Concern{
		Code:    Code,
		Advice:  advice,
		Find:    find,
		NewFact: func() processes.SummaryFact { return new(fact) },
	})
}

// finder holds the state of one function's search.
type finder struct {
	pass    *analysis.Pass
	aliases map[*types.Var]string // local variables holding a package variable's map, slice or pointer
	found   []processes.Finding
}

func find(pass *analysis.Pass, f *processes.Func) []processes.Finding {
	fd := &finder{pass: pass, aliases: map[*types.Var]string{}}
	fd.collectAliases(f.Decl.Body)
	ast.Inspect(f.Decl.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if n.Tok != token.DEFINE {
				for _, lhs := range n.Lhs {
					fd.write(lhs, "")
				}
			}
		case *ast.IncDecStmt:
			fd.write(n.X, "")
		case *ast.RangeStmt:
			if n.Tok == token.ASSIGN {
				for _, e := range []ast.Expr{n.Key, n.Value} {
					if e != nil {
						fd.write(e, "")
					}
				}
			}
		case *ast.UnaryExpr:
			if n.Op == token.AND {
				if name := fd.root(n.X); name != "" {
					fd.report(n.Pos(), "&"+types.ExprString(n.X)+" takes the address of package variable "+name)
				}
			}
		case *ast.SendStmt:
			if name := fd.root(n.Chan); name != "" {
				fd.report(n.Arrow, "sends on package-level channel "+name)
			}
		case *ast.CallExpr:
			fd.call(n)
		}
		return true
	})
	return fd.found
}

func (fd *finder) report(pos token.Pos, what string) {
	fd.found = append(fd.found, processes.Finding{Pos: pos, What: what})
}

// write reports lhs when it is, or is inside, a package variable.
func (fd *finder) write(lhs ast.Expr, verb string) {
	lhs = ast.Unparen(lhs)
	id, whole := lhs.(*ast.Ident)
	if sel, ok := lhs.(*ast.SelectorExpr); ok && fd.pass.TypesInfo.Selections[sel] == nil {
		id, whole = sel.Sel, true // pkg.V
	}
	if whole {
		// A local alias rebound is not a write to what it aliased.
		if obj := fd.pass.TypesInfo.Uses[id]; processes.IsPackageVar(obj) {
			if verb == "" {
				fd.report(lhs.Pos(), "assigns package variable "+fd.varName(obj))
			} else {
				fd.report(lhs.Pos(), verb+" package variable "+fd.varName(obj))
			}
		}
		return
	}
	name := fd.root(lhs)
	if name == "" {
		return
	}
	if verb == "" {
		verb = "writes " + part(fd.pass, lhs) + " of"
	}
	fd.report(lhs.Pos(), types.ExprString(lhs)+" "+verb+" package variable "+name)
}

// part says which part of its root an lvalue is.
func part(pass *analysis.Pass, e ast.Expr) string {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		return "a field"
	case *ast.StarExpr:
		return "through a pointer"
	case *ast.IndexExpr:
		if _, ok := pass.TypesInfo.TypeOf(e.X).Underlying().(*types.Map); ok {
			return "an entry"
		}
	}
	return "an element"
}

func (fd *finder) call(call *ast.CallExpr) {
	info := fd.pass.TypesInfo
	fun := ast.Unparen(call.Fun)
	if id, ok := fun.(*ast.Ident); ok {
		if b, ok := info.Uses[id].(*types.Builtin); ok && len(call.Args) > 0 {
			switch b.Name() {
			case "delete":
				fd.write(call.Args[0], "delete removes an entry of")
			case "clear":
				fd.write(call.Args[0], "clear empties")
			case "copy":
				fd.write(call.Args[0], "copy writes into")
			}
		}
		return
	}
	sel, ok := fun.(*ast.SelectorExpr)
	if !ok {
		return
	}
	s := info.Selections[sel]
	if s == nil || s.Kind() != types.MethodVal {
		return
	}
	fn := s.Obj().(*types.Func)
	recv := fn.Signature().Recv()
	if recv == nil {
		return
	}
	if _, ptrRecv := recv.Type().(*types.Pointer); !ptrRecv {
		return
	}
	if _, ptrX := info.TypeOf(sel.X).Underlying().(*types.Pointer); ptrX {
		// A method of a pointer held in a package variable (a compiled
		// regexp, a template) may only read; it is not reported.
		return
	}
	if name := fd.root(sel.X); name != "" {
		fd.report(sel.Sel.Pos(), types.ExprString(sel)+" calls pointer method "+processes.FuncName(fn, nil)+" on package variable "+name+", which may change it")
	}
}

// root returns the name of the package variable that e is, or is a part
// of (a field, an element, an entry, what it points to), directly or
// through a local alias; "" when it is none.
func (fd *finder) root(e ast.Expr) string {
	info := fd.pass.TypesInfo
	switch e := ast.Unparen(e).(type) {
	case *ast.Ident:
		obj := info.Uses[e]
		if processes.IsPackageVar(obj) {
			return fd.varName(obj)
		}
		if v, ok := obj.(*types.Var); ok {
			return fd.aliases[v]
		}
	case *ast.SelectorExpr:
		if s := info.Selections[e]; s != nil {
			if s.Kind() == types.FieldVal {
				return fd.root(e.X)
			}
			return ""
		}
		return fd.root(e.Sel) // qualified identifier pkg.V
	case *ast.IndexExpr:
		return fd.root(e.X)
	case *ast.StarExpr:
		return fd.root(e.X)
	case *ast.SliceExpr:
		return fd.root(e.X)
	}
	return ""
}

func (fd *finder) varName(obj types.Object) string {
	if obj.Pkg() != fd.pass.Pkg {
		return obj.Pkg().Name() + "." + obj.Name()
	}
	return obj.Name()
}

// collectAliases finds the local variables that hold a package variable's
// map, slice, channel or pointer (m := cache, p := &config), to a fixed
// point so that aliases of aliases count.
func (fd *finder) collectAliases(body *ast.BlockStmt) {
	info := fd.pass.TypesInfo
	processes.Bindings(body, func(lhs, rhs ast.Expr, ranged bool) bool {
		id, ok := ast.Unparen(lhs).(*ast.Ident)
		if ranged || !ok {
			return false
		}
		v, ok := info.ObjectOf(id).(*types.Var)
		if !ok || processes.IsPackageVar(v) || fd.aliases[v] != "" {
			return false
		}
		name := ""
		if u, ok := ast.Unparen(rhs).(*ast.UnaryExpr); ok && u.Op == token.AND {
			name = fd.root(u.X)
		} else if shared(info.TypeOf(rhs)) {
			name = fd.root(rhs)
		}
		if name == "" {
			return false
		}
		fd.aliases[v] = name
		return true
	})
}

// shared reports whether a value of type t shares its contents with the
// value it was copied from.
func shared(t types.Type) bool {
	if t == nil {
		return false
	}
	switch t.Underlying().(type) {
	case *types.Map, *types.Slice, *types.Pointer, *types.Chan:
		return true
	}
	return false
}
