package celcheck

import (
	"fmt"
	"reflect"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/ext"
	"cel.dev/cel-go/interpreter"
)

// CostLimit bounds the work of one evaluation of a check, in CEL's cost
// units (about one per value visited or compared; Kubernetes allows a
// validation rule as much). A check whose cost theusgen can bound below it
// (no loop over a list or a map of unknown size) runs without counting; the
// others count, and one that reaches the limit fails the commit with an
// error rather than holding the engine's lock for long.
const CostLimit = 1_000_000

// Issue is one problem CEL found in an expression.
type Issue struct {
	// Line and Col are 1-based, within the expression; 0 when CEL gives no
	// position.
	Line, Col int
	Msg       string
}

// CompileError lists what is wrong with an expression.
type CompileError struct {
	Expr   string
	Issues []Issue
}

func (e *CompileError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "check %q:", e.Expr)
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString(";")
		}
		if is.Line > 0 {
			fmt.Fprintf(&b, " %d:%d:", is.Line, is.Col)
		}
		b.WriteString(" " + is.Msg)
	}
	return b.String()
}

// Program is a compiled check: a CEL expression of type bool over self, the
// value checked, and args, the arguments of the call (absent in state
// invariants). It is safe for concurrent use.
type Program struct {
	expr    string
	prg     cel.Program
	p       *provider
	self    *Type
	args    *Type
	counted bool // evaluation counts its cost against CostLimit
	acts    sync.Pool
}

// Compile compiles and type-checks expr, a check of a value of type self
// (and of the call's arguments args, nil where there are none). The
// expression must be of type bool. Errors are a *CompileError.
func Compile(expr string, self, args *Type) (*Program, error) {
	p, err := newProvider(self, args)
	if err != nil {
		return nil, err
	}
	opts := []cel.EnvOption{
		cel.CustomTypeProvider(p), cel.CustomTypeAdapter(p),
		cel.CrossTypeNumericComparisons(true),
		ext.Strings(), ext.Math(),
		cel.Variable("self", self.cel()),
	}
	if args != nil {
		opts = append(opts, cel.Variable("args", args.cel()))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, err
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		ce := &CompileError{Expr: expr}
		for _, e := range iss.Errors() {
			is := Issue{Msg: e.Message}
			if l := e.Location; l != nil && l.Line() > 0 {
				is.Line, is.Col = l.Line(), l.Column()+1
			}
			ce.Issues = append(ce.Issues, is)
		}
		return nil, ce
	}
	if !ast.OutputType().IsExactType(types.BoolType) {
		return nil, &CompileError{Expr: expr, Issues: []Issue{{Line: 1, Col: 1,
			Msg: fmt.Sprintf("a check must be true or false, and this expression is of type %s", typeText(ast.OutputType()))}}}
	}
	est, err := env.EstimateCost(ast, noSizes{})
	if err != nil {
		return nil, err
	}
	prog := &Program{expr: expr, p: p, self: self, args: args, counted: est.Max > CostLimit}
	var popts []cel.ProgramOption
	if prog.counted {
		popts = append(popts, cel.CostLimit(CostLimit))
	}
	if prog.prg, err = env.Program(ast, popts...); err != nil {
		return nil, err
	}
	prog.acts.New = func() any { return &activation{} }
	return prog, nil
}

func typeText(t *types.Type) string {
	if t.Kind() == types.DynKind {
		return "dyn (unknown until run)"
	}
	return t.String()
}

// noSizes lets CEL assume the worst for lists and maps.
type noSizes struct{}

func (noSizes) EstimateSize(cost.AstNode) *cost.SizeEstimate { return nil }
func (noSizes) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

// Expr returns the expression.
func (p *Program) Expr() string { return p.expr }

// Eval evaluates the check on the value self points to (a pointer to a
// value of the Program's self type) and the arguments args points to (nil
// where there are none). It reports whether the check holds; an error
// means it could not be evaluated (a division by zero, the cost limit).
func (p *Program) Eval(self, args any) (bool, error) {
	a := p.acts.Get().(*activation)
	ok, err := p.eval(a, self, args)
	p.acts.Put(a)
	return ok, err
}

// eval is Eval with the activation a, which it leaves cleared.
func (p *Program) eval(a *activation, self, args any) (bool, error) {
	a.self = object{p: p.p, t: p.self}
	a.selfVal = nil
	if p.self.Kind == Object {
		a.self.v = reflect.ValueOf(self).Elem()
		a.selfVal = &a.self
	} else {
		a.selfVal = p.p.value(reflect.ValueOf(self).Elem(), p.self)
	}
	a.args, a.argsVal = object{}, nil
	if p.args != nil && args != nil {
		a.args = object{p: p.p, t: p.args, v: reflect.ValueOf(args).Elem()}
		a.argsVal = &a.args
	}
	out, _, err := p.prg.Eval(a)
	*a = activation{}
	if err != nil {
		return false, fmt.Errorf("check %s: %w", p.expr, err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("check %s: got %v, not a bool", p.expr, out)
	}
	return bool(b), nil
}

// activation binds self and args; pooled, so that an evaluation allocates
// nothing for them.
type activation struct {
	self, args       object
	selfVal, argsVal ref.Val
}

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "self":
		return a.selfVal, a.selfVal != nil
	case "args":
		return a.argsVal, a.argsVal != nil
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

// Compiler compiles the check expr of a state invariant for the engine
// (engine.CheckCompiler): self is the value at the fields sub (JSON names)
// of a value of type t, the state field or the collection entry.
func Compiler(expr string, t reflect.Type, sub []string) (func(v any) (bool, any, error), error) {
	root, err := TypeOf(t)
	if err != nil {
		return nil, err
	}
	self, index := root, make([]int, 0, len(sub))
	for _, name := range sub {
		f := self.Field(name)
		if f == nil {
			return nil, fmt.Errorf("no field %q in %s", name, self.Name)
		}
		self, index = f.Type, append(index, f.goIndex)
	}
	prg, err := Compile(expr, self, nil)
	if err != nil {
		return nil, err
	}
	// The engine calls the check under its lock, one at a time: it keeps
	// its own activation rather than taking one from the pool.
	act := new(activation)
	return func(v any) (bool, any, error) {
		p := v
		var fv reflect.Value
		if len(index) > 0 {
			fv = reflect.ValueOf(v).Elem()
			for _, i := range index {
				fv = fv.Field(i)
			}
			p = fv.Addr().Interface()
		}
		ok, err := prg.eval(act, p, nil)
		if ok || err != nil {
			return ok, nil, err
		}
		return false, reflect.ValueOf(p).Elem().Interface(), nil
	}, nil
}
