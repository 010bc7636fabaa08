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
	// aliases holds the local variables that may point into memory that
	// outlives the call (s := k.st, m := pkgMap, for _, b := range k.boxes).
	aliases map[*types.Var]alias
}

// alias is a local variable that may point into a base: a package
// variable, the receiver of a process, or a parameter of a summarized
// function.
type alias struct {
	base *types.Var
	how  string // how it was set, for messages: "s = k.st", "b in range k.boxes"
}

func (st *state) newFlow(f *processes.Func, process bool) *flow {
	fl := &flow{st: st, f: f, process: process, info: st.pass.TypesInfo, params: map[*types.Var]int{},
		held: map[*types.Var]bool{}, aliases: map[*types.Var]alias{}}
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
	fl.findAliases(body)
	for changed := true; changed; {
		changed = false
		fl.walk(body, func(lhs ast.Expr, _ *callStore) {
			if fl.taint(lhs) {
				changed = true
			}
		})
	}
	var sinks []sink
	fl.walk(body, func(lhs ast.Expr, call *callStore) {
		if s, ok := fl.sinkAt(lhs, call); ok {
			sinks = append(sinks, s)
		}
	})
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SendStmt:
			if fl.tainted(n.Value) {
				sinks = append(sinks, fl.newSink(n.Arrow,
					"sends "+types.ExprString(n.Value)+", a reference to the process's input, on a channel", "sends it on a channel", -1))
			}
		case *ast.CallExpr:
			fn, args := fl.callee(n)
			if fn == nil {
				return true
			}
			for _, l := range fl.st.calleeLeaks(fn) {
				if l.How != "" && l.Param < len(args) && fl.tainted(args[l.Param]) {
					name := processes.FuncName(fn, fl.st.pass.Pkg)
					sinks = append(sinks, fl.newSink(args[l.Param].Pos(),
						"passes "+types.ExprString(args[l.Param])+", a reference to the process's input, to "+name+", which "+l.How,
						"passes it to "+name+", which "+l.How, -1))
					break
				}
			}
		}
		return true
	})
	return sinks
}

// callStore is a store made by a callee: it stores the argument value
// into what the argument into points to.
type callStore struct {
	fn          string // the callee, as messages name it
	value, into ast.Expr
}

// walk calls store for every place a tainted value is stored: the left
// side of an assignment whose right side is tainted, the parameters of a
// func literal handed to a call on tainted values, and what a callee
// stores a tainted argument into (call is then set).
func (fl *flow) walk(body *ast.BlockStmt, store func(lhs ast.Expr, call *callStore)) {
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.AssignStmt:
			if len(n.Lhs) == len(n.Rhs) {
				for i, lhs := range n.Lhs {
					if fl.tainted(n.Rhs[i]) {
						store(lhs, nil)
					}
				}
			} else if len(n.Rhs) == 1 && fl.tainted(n.Rhs[0]) {
				for _, lhs := range n.Lhs {
					if holdsRefs(fl.info.TypeOf(lhs)) {
						store(lhs, nil)
					}
				}
			}
		case *ast.ValueSpec:
			for i, name := range n.Names {
				if i < len(n.Values) && fl.tainted(n.Values[i]) {
					store(name, nil)
				}
			}
		case *ast.RangeStmt:
			if fl.tainted(n.X) {
				for _, e := range []ast.Expr{n.Key, n.Value} {
					if e != nil && holdsRefs(fl.info.TypeOf(e)) {
						store(e, nil)
					}
				}
			}
		case *ast.CallExpr:
			fn, args := fl.callee(n)
			fl.callbacks(n, fn, args, store)
			if fn == nil {
				return true
			}
			for _, l := range fl.st.calleeLeaks(fn) {
				if l.Param >= len(args) || !fl.tainted(args[l.Param]) {
					continue
				}
				if l.Into >= 0 && l.Into < len(args) {
					name := processes.FuncName(fn, fl.st.pass.Pkg)
					store(intoTarget(args[l.Into]), &callStore{fn: name, value: args[l.Param], into: args[l.Into]})
				}
			}
		}
		return true
	})
}

// callbacks stores into the parameters of the func literals passed to
// call when it is made on tainted values (the function value, the
// receiver or another argument): a callback may be handed them, as
// slices.SortFunc hands its func the elements, or an iterator its yield.
func (fl *flow) callbacks(call *ast.CallExpr, fn *types.Func, args []ast.Expr, store func(ast.Expr, *callStore)) {
	if fn == nil {
		args = append([]ast.Expr{call.Fun}, call.Args...)
	}
	var lits []*ast.FuncLit
	given := false
	for _, a := range args {
		if lit, ok := ast.Unparen(a).(*ast.FuncLit); ok {
			lits = append(lits, lit) // what a literal captures is not handed to it
		} else {
			given = given || fl.tainted(a)
		}
	}
	if !given {
		return
	}
	for _, lit := range lits {
		for _, field := range lit.Type.Params.List {
			for _, name := range field.Names {
				if holdsRefs(fl.info.TypeOf(name)) {
					store(name, nil)
				}
			}
		}
	}
}

// intoTarget is the lvalue a callee writes when it stores into the
// argument e: what e points to.
func intoTarget(e ast.Expr) ast.Expr {
	if u, ok := ast.Unparen(e).(*ast.UnaryExpr); ok && u.Op == token.AND {
		return u.X
	}
	return &ast.StarExpr{Star: e.Pos(), X: e}
}

// findAliases fills fl.aliases: the local variables set, anywhere in
// body, from a value that may point into a base (package variable,
// receiver, parameter) or into another alias. A copy of a value that
// holds no references shares nothing and is no alias.
func (fl *flow) findAliases(body *ast.BlockStmt) {
	processes.Bindings(body, func(lhs, rhs ast.Expr, ranged bool) bool {
		id, ok := ast.Unparen(lhs).(*ast.Ident)
		if !ok {
			return false
		}
		v, ok := fl.info.ObjectOf(id).(*types.Var)
		if !ok || processes.IsPackageVar(v) {
			return false
		}
		if _, isParam := fl.params[v]; isParam {
			return false
		}
		if _, done := fl.aliases[v]; done || !holdsRefs(v.Type()) {
			return false
		}
		base := fl.pointsInto(rhs)
		if base == nil {
			return false
		}
		op := " = "
		if ranged {
			op = " in range "
		}
		fl.aliases[v] = alias{base: base, how: v.Name() + op + types.ExprString(rhs)}
		return true
	})
}

// pointsInto returns the base that the value of e may point into, or nil.
func (fl *flow) pointsInto(e ast.Expr) *types.Var {
	addr := false
	if u, ok := ast.Unparen(e).(*ast.UnaryExpr); ok && u.Op == token.AND {
		e, addr = u.X, true
	}
	v, _, indirect := fl.root(e)
	if v == nil {
		return nil
	}
	if a, ok := fl.aliases[v]; ok {
		// &x.f of an alias x held by value is the address of the
		// local copy; every other value read from it is shared.
		if addr && !indirect {
			return nil
		}
		return a.base
	}
	if fl.isBase(v) {
		return v
	}
	return nil
}

// isBase reports whether v outlives the call: a package variable, the
// receiver of a process or, in a function being summarized, a parameter.
func (fl *flow) isBase(v *types.Var) bool {
	if processes.IsPackageVar(v) {
		return true
	}
	if _, isParam := fl.params[v]; isParam {
		return !fl.process || v == fl.recv
	}
	return false
}

// taint marks the local variable that lhs is, or is part of, as holding a
// tainted value. It reports whether that is new.
func (fl *flow) taint(lhs ast.Expr) bool {
	v, whole, _ := fl.root(lhs)
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

// sinkAt returns the sink of a store into lhs, made by an assignment or
// by call, if lhs outlives the call.
func (fl *flow) sinkAt(lhs ast.Expr, call *callStore) (sink, bool) {
	v, whole, indirect := fl.root(lhs)
	base, through := v, ""
	switch a, isAlias := fl.aliases[v]; {
	case v == nil:
		return sink{}, false
	case processes.IsPackageVar(v):
		// kept, whole or in part
	case whole:
		return sink{}, false // a local variable or a parameter, set
	case !indirect:
		return sink{}, false // a field of a local or of a parameter passed by value
	case isAlias:
		base, through = a.base, a.how
	case !fl.isBase(v):
		return sink{}, false // a local, or in or out
	}
	pos, what := lhs.Pos(), types.ExprString(lhs)
	msg := "stores a reference to the process's input in "
	if call != nil {
		pos, what = call.value.Pos(), types.ExprString(call.into)
		msg = "passes " + types.ExprString(call.value) + ", a reference to the process's input, to " + call.fn + ", which stores it into "
	}
	var where, how string
	switch {
	case processes.IsPackageVar(base):
		name := base.Name()
		if base.Pkg() != fl.st.pass.Pkg {
			name = base.Pkg().Name() + "." + name
		}
		if through != "" {
			name += ", through " + through
		}
		where, how = " (package variable "+name+")", "keeps it in package variable "+name
	case !fl.process:
		return sink{pos: pos, into: fl.params[base]}, true
	case through != "":
		where = ", part of the receiver (" + through + "), which lives across calls"
	case call != nil && v == fl.recv && isWhole(call.into):
		where = ", the receiver, which lives across calls"
	default:
		where = ", a field of the receiver, which lives across calls"
	}
	if call != nil && how != "" {
		how = "passes it to " + call.fn + ", which " + how
	}
	return fl.newSink(pos, msg+what+where, how, -1), true
}

// isWhole reports whether e is a variable, not a part of one.
func isWhole(e ast.Expr) bool {
	_, ok := ast.Unparen(e).(*ast.Ident)
	return ok
}

func (fl *flow) newSink(pos token.Pos, msg, how string, into int) sink {
	s := sink{pos: pos, into: into, msg: msg}
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

// root returns the variable that e is (whole) or is a part of, and
// whether the way from that variable to e goes through a pointer, map or
// slice (indirect): then e is not inside the variable's own memory.
func (fl *flow) root(e ast.Expr) (v *types.Var, whole, indirect bool) {
	whole = true
	for {
		switch x := ast.Unparen(e).(type) {
		case *ast.Ident:
			v, _ := fl.info.ObjectOf(x).(*types.Var)
			return v, whole, indirect
		case *ast.SelectorExpr:
			if s := fl.info.Selections[x]; s != nil {
				if s.Kind() != types.FieldVal {
					return nil, false, false
				}
				e, whole, indirect = x.X, false, indirect || s.Indirect()
				continue
			}
			e = x.Sel // pkg.V
		case *ast.IndexExpr:
			e, whole, indirect = x.X, false, indirect || shares(fl.info.TypeOf(x.X))
		case *ast.StarExpr:
			e, whole, indirect = x.X, false, true
		case *ast.SliceExpr:
			e, whole, indirect = x.X, false, indirect || shares(fl.info.TypeOf(x.X))
		default:
			return nil, false, false
		}
	}
}

// shares reports whether indexing a value of type t reaches memory
// outside the value: the elements of a slice, map or pointed-to array.
func shares(t types.Type) bool {
	if t == nil {
		return true
	}
	switch t.Underlying().(type) {
	case *types.Array, *types.Basic: // an array's elements; a string is read-only
		return false
	}
	return true
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
