package gen

import (
	"github.com/dave/jennifer/jen"

	"github.com/theus-go/theus/internal/contract"
)

// What a process set is checked at the end of its call's Run, once the
// process returned nil, and what a Patch sets before CompareAndSwap hands
// it to the engine: first that each value can be encoded as a durable
// store will encode it, then the rules. A durable store encodes the
// values of a whole commit group inside Store.Commit, so a value it could
// not encode there would fail the group; checked here, it fails only the
// call (Tx.Fail) or the CompareAndSwap that set it, with an error naming
// its path.
//
// Only values that can fail to encode are looked at: with the default JSON
// encoding, floats (NaN, infinities) and types of other packages, at any
// depth (see mayFail); with a codec given by engine.WithCodec (Tx.Codec,
// Engine.Codec), every value. Other types cost one test of the codec.

// rulesDecl declares the engine.RulesFunc of p, which has rules: the checks of the rules of each output,
// given the pointer out to the value the run left (see ruleCheck). The
// rules of a collection are checked on the entries whose write the commit
// applies; deletes have no value to check.
func (g *generator) rulesDecl(p *contract.Process, rules map[*contract.Path][]jen.Code) jen.Code {
	var cases []jen.Code
	for i, o := range p.Outputs {
		if len(rules[o]) == 0 {
			continue
		}
		var body []jen.Code
		if o.Field.Collection && len(o.Sub) == 0 {
			pending := jen.Op("*").Id("out").Assert(jen.Op("*").Index().Qual(enginePkg, "Pending").Types(goType(o.Type.Key), goType(o.Type.Elem)))
			body = []jen.Code{jen.For(jen.Id("w").Op(":=").Range().Qual(enginePkg, "FinalWrites").Call(pending)).Block(append([]jen.Code{
				jen.If(jen.Id("w.Value").Op("==").Nil()).Block(jen.Continue()),
			}, rules[o]...)...)}
		} else {
			body = append([]jen.Code{jen.Id("x").Op(":=").Id("out").Assert(jen.Op("*").Add(goType(o.Type)))}, rules[o]...)
		}
		cases = append(cases, jen.Case(jen.Lit(i)).Block(body...))
	}
	return doc(rulesFunc(p)+" checks the rules of "+p.Name+" on its output i (engine.RulesFunc).").
		Func().Id(rulesFunc(p)).
		Params(jen.Id("tx").Op("*").Qual(enginePkg, "Tx"), jen.Id("i").Int(), jen.List(jen.Id("out"), jen.Id("args")).Any()).
		Block(jen.Switch(jen.Id("i")).Block(cases...))
}

// regexpDecls declares the compiled regexes of p's rules.
func (g *generator) regexpDecls(p *contract.Process) []jen.Code {
	var out []jen.Code
	for i, r := range p.Rules {
		for _, c := range r.Checks {
			if c.Kind == "regex" {
				name := regexpVar(p, i)
				out = append(out, doc(name+" is the regex of the rule of "+p.Name+" on "+r.Text+".").
					Var().Id(name).Op("=").Qual("regexp", "MustCompile").Call(regexpLit(c.Regex)))
			}
		}
	}
	return out
}

// validFuncOrNil is the theusValidX function (or literal) that checks a
// value of type t as JSON, nil for a type whose values always encode.
func (g *generator) validFuncOrNil(t *contract.Type) jen.Code {
	if g.mayFail(t) {
		return g.validFunc(t)
	}
	return jen.Nil()
}

// checkCall checks, with engine.CheckValue or CheckEntries (fn), that the
// value x of type t (or every entry put in x, for CheckEntries) at path can
// be encoded with codec, or as JSON when codec is nil, and runs fail when
// it cannot.
func (g *generator) checkCall(t *contract.Type, fn string, codec, x jen.Code, path string, fail jen.Code) jen.Code {
	return jen.If(
		jen.Id("err").Op(":=").Qual(enginePkg, fn).Call(codec, jen.Lit(path), x, g.validFuncOrNil(t)),
		jen.Id("err").Op("!=").Nil(),
	).Block(fail)
}

// validFuncs declares theusValidX for every declared type X that a state
// value may hold and that may fail to encode: it returns the error that
// encoding/json would give for a value, without encoding it, so that a
// check costs a look at the floats and an encoding of the imported values
// only.
func (g *generator) validFuncs() []jen.Code {
	var out []jen.Code
	for _, s := range g.m.Types {
		if !g.encoded[s] || !g.fails[s] {
			continue
		}
		var body []jen.Code
		for _, f := range s.Fields {
			if g.mayFail(f.Type) {
				body = append(body, jen.If(jen.Id("err").Op(":=").Add(g.validCall(f.Type, lv{expr: "p." + f.GoName})), jen.Id("err").Op("!=").Nil()).
					Block(jen.Return(jen.Id("err"))))
			}
		}
		body = append(body, jen.Return(jen.Nil()))
		out = append(out, jen.Func().Id(validFuncName(s)).Params(jen.Id("p").Op("*").Id(s.GoName)).Error().Block(body...))
	}
	return out
}

func validFuncName(s *contract.Struct) string { return "theusValid" + s.GoName }

// validCall is the error of encoding x, of type t (mayFail), as JSON.
func (g *generator) validCall(t *contract.Type, x lv) *jen.Statement {
	switch t.Kind {
	case contract.Named:
		return jen.Id(validFuncName(t.Struct)).Call(x.addr())
	case contract.Imported:
		return jen.Qual(jsonencPkg, "CheckValue").Call(x.val())
	case contract.Slice:
		return jen.Qual(jsonencPkg, "CheckSlice").Call(x.val(), g.validFunc(t.Elem))
	case contract.Map:
		return jen.Qual(jsonencPkg, "CheckMap").Call(x.val(), g.validFunc(t.Elem))
	case contract.Builtin:
		if t.Name == "float32" {
			return jen.Qual(jsonencPkg, "CheckFloat").Call(jen.Float64().Call(x.val()), jen.Lit(32))
		}
		return jen.Qual(jsonencPkg, "CheckFloat").Call(x.val(), jen.Lit(64))
	}
	panic("gen: validCall of a type that cannot fail: " + t.Expr)
}

// validFunc is a func(*T) error that checks a value of type t (mayFail).
func (g *generator) validFunc(t *contract.Type) *jen.Statement {
	if t.Kind == contract.Named {
		return jen.Id(validFuncName(t.Struct))
	}
	return jen.Func().Params(jen.Id("e").Op("*").Add(goType(t))).Error().Block(jen.Return(g.validCall(t, deref("e"))))
}

// mayFail reports whether encoding/json can fail to encode a value of type
// t: a float (NaN, infinities) or a type of another package (its
// MarshalJSON, or a float inside it), at any depth.
func (g *generator) mayFail(t *contract.Type) bool {
	switch t.Kind {
	case contract.Builtin:
		return t.Name == "float32" || t.Name == "float64"
	case contract.Imported:
		return true
	case contract.Slice, contract.Map:
		return g.mayFail(t.Elem)
	case contract.Named:
		return g.fails[t.Struct]
	}
	return false
}

// failingStructs returns the declared types whose values may fail to
// encode (see mayFail): those that hold such a value directly, and those
// that hold one of them, found by walking the uses backwards once, since
// types may hold each other through slices and maps.
func failingStructs(m *contract.Model) map[*contract.Struct]bool {
	fails := map[*contract.Struct]bool{}
	usedBy := map[*contract.Struct][]*contract.Struct{}
	var queue []*contract.Struct
	for _, s := range m.Types {
		direct := false
		for _, f := range s.Fields {
			t := f.Type
			for t.Kind == contract.Slice || t.Kind == contract.Map {
				t = t.Elem
			}
			switch {
			case t.Kind == contract.Named:
				usedBy[t.Struct] = append(usedBy[t.Struct], s)
			case t.Kind == contract.Imported, t.Name == "float32", t.Name == "float64":
				direct = true
			}
		}
		if direct && !fails[s] {
			fails[s] = true
			queue = append(queue, s)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for _, u := range usedBy[s] {
			if !fails[u] {
				fails[u] = true
				queue = append(queue, u)
			}
		}
	}
	return fails
}
