package processes

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"path"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// A Finding is one thing a concern forbids, found in one function body.
type Finding struct {
	Pos token.Pos
	// What says what the code does, e.g. "os.Getenv reads the
	// environment".
	What string
	// Advice overrides the concern's Advice for this finding.
	Advice string
}

// Summary is what a function does, directly or through the functions it
// calls, that a concern forbids: the first such finding. It is the payload
// of the concerns' object facts, so that a call from another package of
// the module can be judged without its source.
type Summary struct {
	What string
	At   string   // where: import path of the package / file:line:col
	Via  []string // the functions between the summarized one and the finding
}

func (s *Summary) summary() *Summary { return s }

// String is how analysistest and fact logs show the summary.
func (s *Summary) String() string {
	if len(s.Via) == 0 {
		return s.What + " at " + s.At
	}
	return s.What + " at " + s.At + " via " + strings.Join(s.Via, ", ")
}

// SummaryFact is the object fact of a concern: a struct type of the
// concern's own that embeds Summary (fact types may not be shared).
type SummaryFact interface {
	analysis.Fact
	summary() *Summary
}

// Concern is a rule whose findings are local to a function body.
type Concern struct {
	Code string // stable code, e.g. "TP001"
	// Advice says what to do instead; it ends every message.
	Advice string
	// Find returns what f's body (function literals included) does
	// against the rule, in source order.
	Find func(pass *analysis.Pass, f *Func) []Finding
	// NewFact returns a new, empty fact of the concern.
	NewFact func() SummaryFact
}

// Check runs c on the package: it reports the findings of every function
// a process reaches, and every call from such a function into another
// package of the module whose callee breaks the rule; and it exports a
// fact for every exported function and method that breaks it, for the
// packages that call them.
func Check(pass *analysis.Pass, c Concern) (any, error) {
	res := pass.ResultOf[Analyzer].(*Result)
	if !res.Checked {
		return nil, nil
	}
	local := make(map[*Func][]Finding, len(res.Funcs))
	sums := map[*Func]*Summary{}
	for _, f := range res.Funcs {
		found := c.Find(pass, f)
		local[f] = found
		if len(found) > 0 {
			sums[f] = &Summary{What: found[0].What, At: where(pass, found[0].Pos)}
		}
	}
	// external returns the summary of a call into another package.
	external := func(call Call) *Summary {
		if !call.External {
			return nil
		}
		fact := c.NewFact()
		if !pass.ImportObjectFact(call.Callee, fact) {
			return nil
		}
		return fact.summary()
	}
	// A function that calls one with a summary has one too; iterate to a
	// fixed point so that the order of declarations does not matter.
	for changed := true; changed; {
		changed = false
		for _, f := range res.Funcs {
			if sums[f] != nil {
				continue
			}
			for _, call := range f.Calls {
				callee := external(call)
				if call.Local != nil {
					callee = sums[call.Local]
				}
				if callee != nil {
					via := append([]string{FuncName(call.Callee, nil)}, callee.Via...)
					sums[f] = &Summary{What: callee.What, At: callee.At, Via: via}
					changed = true
					break
				}
			}
		}
	}
	roots := map[*Func]bool{}
	for _, r := range res.Roots {
		roots[r] = true
	}
	for _, f := range res.Funcs {
		if s := sums[f]; s != nil && f.Obj.Exported() && !roots[f] {
			fact := c.NewFact()
			*fact.summary() = *s
			pass.ExportObjectFact(f.Obj, fact)
		}
	}
	for _, f := range res.Funcs {
		if !f.Reached() {
			continue
		}
		for _, fd := range local[f] {
			advice := fd.Advice
			if advice == "" {
				advice = c.Advice
			}
			pass.Report(analysis.Diagnostic{
				Pos:      fd.Pos,
				Category: c.Code,
				Message:  fmt.Sprintf("[%s] %s%s: %s", c.Code, fd.What, f.ReachedFrom(), advice),
			})
		}
		for _, call := range f.Calls {
			s := external(call)
			if s == nil {
				continue
			}
			chain := ""
			if len(s.Via) > 0 {
				chain = " through " + strings.Join(s.Via, ", ")
			}
			pass.Report(analysis.Diagnostic{
				Pos:      call.Pos,
				Category: c.Code,
				Message: fmt.Sprintf("[%s] call to %s%s: %s (%s%s): %s", c.Code,
					FuncName(call.Callee, pass.Pkg), f.ReachedFrom(), s.What, s.At, chain, c.Advice),
			})
		}
	}
	return nil, nil
}

// where names a position for a message read in another package: the
// import path of the package's directory, the file name, line and column.
func where(pass *analysis.Pass, pos token.Pos) string {
	p := pass.Fset.Position(pos)
	return fmt.Sprintf("%s:%d:%d", path.Join(pass.Pkg.Path(), baseName(p.Filename)), p.Line, p.Column)
}

func baseName(file string) string {
	if i := strings.LastIndexAny(file, `/\`); i >= 0 {
		return file[i+1:]
	}
	return file
}

// Uses calls use for every identifier in f's body that refers to a
// function or variable of a package (a method included), with the object
// it refers to and where the reference starts: at pkg in pkg.F, at x in
// x.M. The concerns that forbid calling functions match on these.
func Uses(pass *analysis.Pass, f *Func, use func(pos token.Pos, obj types.Object)) {
	visitRefs(f.Decl.Body, func(pos token.Pos, id *ast.Ident) {
		if obj := pass.TypesInfo.Uses[id]; obj != nil && obj.Pkg() != nil {
			switch obj.(type) {
			case *types.Func, *types.Var:
				use(pos, obj)
			}
		}
	})
}

// visitRefs calls visit for every identifier below n, with the start of
// the selector expression it ends, if any.
func visitRefs(n ast.Node, visit func(pos token.Pos, id *ast.Ident)) {
	sels := map[*ast.Ident]token.Pos{}
	ast.Inspect(n, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			sels[n.Sel] = n.Pos()
		case *ast.Ident:
			pos, ok := sels[n]
			if !ok {
				pos = n.Pos()
			}
			visit(pos, n)
		}
		return true
	})
}

// Describe names obj for a message: pkg.F, (pkg.T).M or pkg.V.
func Describe(obj types.Object) string {
	if fn, ok := obj.(*types.Func); ok {
		return FuncName(fn, nil)
	}
	return obj.Pkg().Name() + "." + obj.Name()
}

// RecvName is the name of the named type a method is declared on, "" for
// a function.
func RecvName(fn *types.Func) string {
	recv := fn.Signature().Recv()
	if recv == nil {
		return ""
	}
	t := recv.Type()
	if p, ok := t.(*types.Pointer); ok {
		t = p.Elem()
	}
	if n, ok := t.(*types.Named); ok {
		return n.Obj().Name()
	}
	return ""
}

// Bindings calls bind for every binding of a variable to a value in body,
// again and again until no call reports a change: a fixed point for what
// flows from a value to the variable it is bound to, such as which locals
// alias a package variable. A binding is lhs = rhs (or :=) in an
// assignment or a var declaration with as many values as names, the
// first variable of a comma-ok form (v, ok := m[k], x.(T), <-c), and,
// with ranged set, the key or value of a range statement over rhs.
func Bindings(body ast.Node, bind func(lhs, rhs ast.Expr, ranged bool) (changed bool)) {
	for changed := true; changed; {
		changed = false
		ast.Inspect(body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				if len(n.Lhs) == len(n.Rhs) {
					for i := range n.Lhs {
						changed = bind(n.Lhs[i], n.Rhs[i], false) || changed
					}
				} else if len(n.Lhs) == 2 && commaOk(n.Rhs[0]) {
					changed = bind(n.Lhs[0], n.Rhs[0], false) || changed
				}
			case *ast.ValueSpec:
				if len(n.Names) == len(n.Values) {
					for i := range n.Names {
						changed = bind(n.Names[i], n.Values[i], false) || changed
					}
				}
			case *ast.RangeStmt:
				for _, e := range []ast.Expr{n.Key, n.Value} {
					if e != nil {
						changed = bind(e, n.X, true) || changed
					}
				}
			}
			return true
		})
	}
}

// commaOk reports whether e has a comma-ok form whose first value is e's.
func commaOk(e ast.Expr) bool {
	switch e := ast.Unparen(e).(type) {
	case *ast.IndexExpr, *ast.TypeAssertExpr:
		return true
	case *ast.UnaryExpr:
		return e.Op == token.ARROW
	}
	return false
}

// IsPackageVar reports whether obj is a package-level variable.
func IsPackageVar(obj types.Object) bool {
	v, ok := obj.(*types.Var)
	return ok && !v.IsField() && v.Pkg() != nil && v.Parent() == v.Pkg().Scope()
}
