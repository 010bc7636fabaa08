package noescape

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"

	"github.com/theus-go/theus/internal/lint/passes/processes"
)

// Code is the stable code of this analyzer's findings.
const Code = "TP006"

// Analyzer reports inputs of processes kept after the call.
var Analyzer = &analysis.Analyzer{
	Name:      "noescape",
	Doc:       "report input views, slices and maps of Theus processes kept after the call returns",
	URL:       "https://pkg.go.dev/github.com/theus-go/theus/internal/lint/passes/noescape",
	Requires:  []*analysis.Analyzer{processes.Analyzer},
	Run:       run,
	FactTypes: []analysis.Fact{(*fact)(nil)},
}

const advice = "it would outlive the call; keep a copy instead (Clone() for a view, slices.Clone or maps.Clone for a slice or map) " +
	"or pass the data on through out"

// Leak says what a function does with one of its parameters (index 0 is
// the receiver of a method): keeps it where it outlives the call (How),
// or stores it into another parameter (Into).
type Leak struct {
	Param int
	How   string // e.g. "keeps it in package variable cache (at example.com/a/a.go:3:2)"
	Into  int    // the parameter it is stored into; -1 with How
}

// fact is the summary of an exported function of the module: what it
// does with its parameters.
type fact struct{ Leaks []Leak }

func (*fact) AFact() {}

func (f *fact) String() string {
	var parts []string
	for _, l := range f.Leaks {
		if l.How != "" {
			parts = append(parts, fmt.Sprintf("param %d: %s", l.Param, l.How))
		} else {
			parts = append(parts, fmt.Sprintf("param %d: into param %d", l.Param, l.Into))
		}
	}
	return "leaks " + strings.Join(parts, "; ")
}

// state is the state of the analyzer on one package: the summaries of
// its functions, computed on demand.
type state struct {
	pass  *analysis.Pass
	res   *processes.Result
	sums  map[*processes.Func][]Leak
	doing map[*processes.Func]bool
}

func run(pass *analysis.Pass) (any, error) {
	res := pass.ResultOf[processes.Analyzer].(*processes.Result)
	if !res.Checked {
		return nil, nil
	}
	st := &state{pass: pass, res: res, sums: map[*processes.Func][]Leak{}, doing: map[*processes.Func]bool{}}
	roots := map[*processes.Func]bool{}
	for _, r := range res.Roots {
		roots[r] = true
	}
	for _, f := range res.Funcs {
		leaks := st.summary(f)
		if len(leaks) > 0 && f.Obj.Exported() && !roots[f] {
			pass.ExportObjectFact(f.Obj, &fact{Leaks: leaks})
		}
	}
	for _, r := range res.Roots {
		fl := st.newFlow(r, true)
		for _, v := range fl.order {
			if v != fl.recv && !isContext(v.Type()) {
				fl.held[v] = true // in, out
			}
		}
		for _, s := range fl.run() {
			pass.Report(analysis.Diagnostic{
				Pos:      s.pos,
				Category: Code,
				Message:  fmt.Sprintf("[%s] %s: %s", Code, s.msg, advice),
			})
		}
	}
	return nil, nil
}

// summary computes what f does with each of its parameters.
func (st *state) summary(f *processes.Func) []Leak {
	if leaks, ok := st.sums[f]; ok {
		return leaks
	}
	if st.doing[f] {
		return nil // recursion: assume nothing more than what is found
	}
	st.doing[f] = true
	defer delete(st.doing, f)
	var leaks []Leak
	probe := st.newFlow(f, false)
	for _, v := range probe.order {
		i := probe.params[v]
		if !holdsRefs(v.Type()) {
			continue
		}
		fl := st.newFlow(f, false)
		fl.held[v] = true
		for _, s := range fl.run() {
			if s.into >= 0 && s.into == i {
				continue
			}
			leaks = append(leaks, Leak{Param: i, How: s.how, Into: s.into})
			break
		}
	}
	st.sums[f] = leaks
	return leaks
}

// calleeLeaks returns the summary of a called function, from this package
// or from facts.
func (st *state) calleeLeaks(fn *types.Func) []Leak {
	if f := st.res.Lookup(fn); f != nil && fn.Pkg() == st.pass.Pkg {
		return st.summary(f)
	}
	if st.res.SameModule(fn.Pkg()) {
		var ft fact
		if st.pass.ImportObjectFact(fn.Origin(), &ft) {
			return ft.Leaks
		}
	}
	return nil
}

// sink is a place where a tainted value outlives the call.
type sink struct {
	pos  token.Pos
	msg  string // for a process: the message
	how  string // for a summary
	into int    // for a summary: stored into this parameter; else -1
}

// flow follows the values derived from the tainted variables through one
// function body, flow-insensitively.
type flow struct {
	st      *state
	f       *processes.Func
	process bool
	info    *types.Info
	params  map[*types.Var]int // parameter -> index (receiver 0 for a method)
	order   []*types.Var
	recv    *types.Var
	held    map[*types.Var]bool // variables that may refer to a tainted value
}

func (st *state) newFlow(f *processes.Func, process bool) *flow {
	fl := &flow{st: st, f: f, process: process, info: st.pass.TypesInfo, params: map[*types.Var]int{}, held: map[*types.Var]bool{}}
	sig := f.Obj.Signature()
	i := 0
	if r := sig.Recv(); r != nil {
		fl.recv = r
		fl.add(r, i)
		i++
	}
	for p := range sig.Params().Variables() {
		fl.add(p, i)
		i++
	}
	return fl
}

func (fl *flow) add(v *types.Var, i int) {
	if v.Name() == "" || v.Name() == "_" {
		return
	}
	fl.params[v] = i
	fl.order = append(fl.order, v)
}

// run propagates taint to a fixed point, then returns the sinks.
func (fl *flow) run() []sink {
	body := fl.f.Decl.Body
	for changed := true; changed; {
		changed = false
		fl.walk(body, func(lhs ast.Expr, pos token.Pos) {
			if fl.taint(lhs) {
				changed = true
			}
		})
	}
	var sinks []sink
	fl.walk(body, func(lhs ast.Expr, pos token.Pos) {
		if s, ok := fl.sinkAt(lhs, pos); ok {
			sinks = append(sinks, s)
		}
	})
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SendStmt:
			if fl.tainted(n.Value) {
				sinks = append(sinks, fl.newSink(n.Arrow, types.ExprString(n.Value),
					"sends %s, a reference to the process's input, on a channel", "sends it on a channel", -1))
			}
		case *ast.CallExpr:
			fn, args := fl.callee(n)
			if fn == nil {
				return true
			}
			for _, l := range fl.st.calleeLeaks(fn) {
				if l.How != "" && l.Param < len(args) && fl.tainted(args[l.Param]) {
					name := processes.FuncName(fn, fl.st.pass.Pkg)
					sinks = append(sinks, fl.newSink(args[l.Param].Pos(), types.ExprString(args[l.Param]),
						"passes %s, a reference to the process's input, to "+name+", which "+l.How,
						"passes it to "+name+", which "+l.How, -1))
					break
				}
			}
		}
		return true
	})
	return sinks
}

// walk calls store for every place a tainted value is stored: the left
// side of an assignment whose right side is tainted, and what a callee
// stores a tainted argument into.
func (fl *flow) walk(body *ast.BlockStmt, store func(lhs ast.Expr, pos token.Pos)) {
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if len(n.Lhs) == len(n.Rhs) {
				for i, lhs := range n.Lhs {
					if fl.tainted(n.Rhs[i]) {
						store(lhs, n.Rhs[i].Pos())
					}
				}
			} else if len(n.Rhs) == 1 && fl.tainted(n.Rhs[0]) {
				for _, lhs := range n.Lhs {
					if holdsRefs(fl.info.TypeOf(lhs)) {
						store(lhs, n.Rhs[0].Pos())
					}
				}
			}
		case *ast.ValueSpec:
			for i, name := range n.Names {
				if i < len(n.Values) && fl.tainted(n.Values[i]) {
					store(name, n.Values[i].Pos())
				}
			}
		case *ast.RangeStmt:
			if fl.tainted(n.X) {
				for _, e := range []ast.Expr{n.Key, n.Value} {
					if e != nil && holdsRefs(fl.info.TypeOf(e)) {
						store(e, n.X.Pos())
					}
				}
			}
		case *ast.CallExpr:
			fn, args := fl.callee(n)
			if fn == nil {
				return true
			}
			for _, l := range fl.st.calleeLeaks(fn) {
				if l.Param >= len(args) || !fl.tainted(args[l.Param]) {
					continue
				}
				if l.Into >= 0 && l.Into < len(args) {
					store(intoTarget(args[l.Into]), args[l.Param].Pos())
				}
			}
		}
		return true
	})
}

// intoTarget is the lvalue a callee writes when it stores into the
// argument e: what e points to.
func intoTarget(e ast.Expr) ast.Expr {
	if u, ok := ast.Unparen(e).(*ast.UnaryExpr); ok && u.Op == token.AND {
		return u.X
	}
	return &ast.StarExpr{X: e}
}

// taint marks the local variable that lhs is, or is part of, as holding a
// tainted value. It reports whether that is new.
func (fl *flow) taint(lhs ast.Expr) bool {
	v, whole := fl.root(lhs)
	if v == nil || fl.held[v] || processes.IsPackageVar(v) {
		return false
	}
	if _, isParam := fl.params[v]; isParam && !whole {
		return false // a sink: see sinkAt
	}
	if whole && !holdsRefs(v.Type()) {
		return false
	}
	fl.held[v] = true
	return true
}

// sinkAt returns the sink of a store into lhs, if lhs outlives the call.
func (fl *flow) sinkAt(lhs ast.Expr, pos token.Pos) (sink, bool) {
	v, whole := fl.root(lhs)
	if v == nil {
		return sink{}, false
	}
	what := types.ExprString(lhs)
	switch i, isParam := fl.params[v]; {
	case processes.IsPackageVar(v):
		name := v.Name()
		if v.Pkg() != fl.st.pass.Pkg {
			name = v.Pkg().Name() + "." + name
		}
		return fl.newSink(lhs.Pos(), what, "stores a reference to the process's input in %s (package variable "+name+")", "keeps it in package variable "+name, -1), true
	case isParam && !whole && fl.process && v == fl.recv:
		return fl.newSink(lhs.Pos(), what, "stores a reference to the process's input in %s, a field of the receiver, which lives across calls", "", -1), true
	case isParam && !whole && !fl.process:
		return sink{pos: pos, into: i}, true
	}
	return sink{}, false
}

func (fl *flow) newSink(pos token.Pos, what, msg, how string, into int) sink {
	s := sink{pos: pos, into: into}
	if strings.Contains(msg, "%s") {
		s.msg = fmt.Sprintf(msg, what)
	} else {
		s.msg = msg
	}
	if fl.process {
		s.msg += fl.f.ReachedFrom()
	}
	if how == "" {
		how = s.msg
	}
	s.how = how + " (at " + fl.where(pos) + ")"
	return s
}

func (fl *flow) where(pos token.Pos) string {
	p := fl.st.pass.Fset.Position(pos)
	file := p.Filename
	if i := strings.LastIndexAny(file, `/\`); i >= 0 {
		file = file[i+1:]
	}
	return fmt.Sprintf("%s/%s:%d:%d", fl.st.pass.Pkg.Path(), file, p.Line, p.Column)
}

// root returns the variable that e is (whole) or is a part of.
func (fl *flow) root(e ast.Expr) (v *types.Var, whole bool) {
	whole = true
	for {
		switch x := ast.Unparen(e).(type) {
		case *ast.Ident:
			v, _ := fl.info.ObjectOf(x).(*types.Var)
			return v, whole
		case *ast.SelectorExpr:
			if s := fl.info.Selections[x]; s != nil {
				if s.Kind() != types.FieldVal {
					return nil, false
				}
				e, whole = x.X, false
				continue
			}
			e = x.Sel // pkg.V
		case *ast.IndexExpr:
			e, whole = x.X, false
		case *ast.StarExpr:
			e, whole = x.X, false
		case *ast.SliceExpr:
			e, whole = x.X, false
		default:
			return nil, false
		}
	}
}

// callee returns the static callee of call and its arguments, the
// receiver first for a method.
func (fl *flow) callee(call *ast.CallExpr) (*types.Func, []ast.Expr) {
	fun := ast.Unparen(call.Fun)
	if ix, ok := fun.(*ast.IndexExpr); ok {
		fun = ix.X
	} else if ix, ok := fun.(*ast.IndexListExpr); ok {
		fun = ix.X
	}
	switch f := fun.(type) {
	case *ast.Ident:
		fn, _ := fl.info.Uses[f].(*types.Func)
		return fn, call.Args
	case *ast.SelectorExpr:
		fn, _ := fl.info.Uses[f.Sel].(*types.Func)
		if fn == nil {
			return nil, nil
		}
		if s := fl.info.Selections[f]; s != nil && s.Kind() == types.MethodVal {
			return fn, append([]ast.Expr{f.X}, call.Args...)
		}
		return fn, call.Args
	}
	return nil, nil
}

// tainted reports whether the value of e may refer to a tainted value.
func (fl *flow) tainted(e ast.Expr) bool {
	switch e := ast.Unparen(e).(type) {
	case *ast.Ident:
		v, ok := fl.info.Uses[e].(*types.Var)
		return ok && fl.held[v]
	case *ast.SelectorExpr:
		if s := fl.info.Selections[e]; s != nil {
			if s.Kind() == types.FieldVal {
				return holdsRefs(fl.info.TypeOf(e)) && fl.tainted(e.X)
			}
			return fl.tainted(e.X) // a method value binds its receiver
		}
		return false
	case *ast.CallExpr:
		return fl.taintedCall(e)
	case *ast.CompositeLit:
		for _, elt := range e.Elts {
			if kv, ok := elt.(*ast.KeyValueExpr); ok {
				elt = kv.Value
			}
			if fl.tainted(elt) {
				return true
			}
		}
	case *ast.UnaryExpr:
		return e.Op == token.AND && fl.tainted(e.X)
	case *ast.StarExpr, *ast.IndexExpr, *ast.TypeAssertExpr:
		var x ast.Expr
		switch e := e.(type) {
		case *ast.StarExpr:
			x = e.X
		case *ast.IndexExpr:
			x = e.X
		case *ast.TypeAssertExpr:
			x = e.X
		}
		return holdsRefs(fl.info.TypeOf(e)) && fl.tainted(x)
	case *ast.SliceExpr:
		return fl.tainted(e.X)
	case *ast.FuncLit:
		captured := false
		ast.Inspect(e.Body, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok {
				if v, ok := fl.info.Uses[id].(*types.Var); ok && fl.held[v] {
					captured = true
				}
			}
			return !captured
		})
		return captured
	}
	return false
}

// copies are the functions whose result shares nothing with their
// arguments but the elements.
var copies = map[string]bool{
	"slices.Clone": true, "slices.Collect": true, "slices.Sorted": true, "slices.SortedFunc": true,
	"slices.SortedStableFunc": true, "maps.Clone": true, "maps.Collect": true, "bytes.Clone": true,
	"strings.Clone": true, "slices.Concat": true,
}

func (fl *flow) taintedCall(call *ast.CallExpr) bool {
	t := fl.info.TypeOf(call)
	if !holdsRefs(t) {
		return false
	}
	if tv, ok := fl.info.Types[call.Fun]; ok && tv.IsType() { // conversion
		return len(call.Args) == 1 && fl.tainted(call.Args[0])
	}
	if id, ok := ast.Unparen(call.Fun).(*ast.Ident); ok {
		if b, ok := fl.info.Uses[id].(*types.Builtin); ok {
			if b.Name() != "append" || len(call.Args) == 0 {
				return false
			}
			if fl.tainted(call.Args[0]) {
				return true
			}
			elem := t.Underlying().(*types.Slice).Elem()
			return holdsRefs(elem) && anyTainted(fl, call.Args[1:])
		}
	}
	fn, args := fl.callee(call)
	if fn != nil {
		if fn.Name() == "Clone" && fn.Signature().Recv() != nil {
			return false // a view's Clone is a deep copy
		}
		if fn.Pkg() != nil && copies[fn.Pkg().Path()+"."+fn.Name()] {
			return holdsRefs(elemOf(t)) && anyTainted(fl, args)
		}
	} else if sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr); ok {
		args = append([]ast.Expr{sel.X}, call.Args...)
	} else {
		args = append([]ast.Expr{call.Fun}, call.Args...)
	}
	return anyTainted(fl, args)
}

func anyTainted(fl *flow, es []ast.Expr) bool {
	for _, e := range es {
		if fl.tainted(e) {
			return true
		}
	}
	return false
}

// elemOf is the element (or value) type of a slice or map type, else t.
func elemOf(t types.Type) types.Type {
	switch u := t.Underlying().(type) {
	case *types.Slice:
		return u.Elem()
	case *types.Map:
		return u.Elem()
	}
	return t
}

// holdsRefs reports whether a value of type t may refer to memory it
// shares with the value it was copied from.
func holdsRefs(t types.Type) bool { return refs(t, map[types.Type]bool{}) }

func refs(t types.Type, seen map[types.Type]bool) bool {
	if t == nil || seen[t] {
		return false
	}
	seen[t] = true
	switch u := t.Underlying().(type) {
	case *types.Basic:
		return u.Kind() == types.UnsafePointer
	case *types.Struct:
		for f := range u.Fields() {
			if refs(f.Type(), seen) {
				return true
			}
		}
		return false
	case *types.Array:
		return refs(u.Elem(), seen)
	case *types.Tuple:
		for v := range u.Variables() {
			if refs(v.Type(), seen) {
				return true
			}
		}
		return false
	}
	return true // pointers, slices, maps, chans, funcs, interfaces, type parameters
}

func isContext(t types.Type) bool {
	n, ok := t.(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "context" && n.Obj().Name() == "Context"
}
