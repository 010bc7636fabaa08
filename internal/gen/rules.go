package gen

import (
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/dave/jennifer/jen"

	"github.com/theus-go/theus/internal/contract"
)

// Domain errors and rules. Each domain error gets one sentinel shared by
// the processes that declare it; the engine is told which a process
// declares (ProcessSpec.Errors, and engine.Run for RunX). A process with
// rules checks them at the end of its call's Run, on the values it set,
// through the call's Tx (see checkDecls): Fail for on_fail: reject, Warn
// for warn. The checks allocate nothing while rules hold, and regexes are
// compiled once, into package variables.

// errorDecls declares the domain error sentinels.
func (g *generator) errorDecls() []jen.Code {
	// The processes that declare each error, in one pass over them.
	by := map[*contract.ErrorDecl][]string{}
	for _, p := range g.m.Processes {
		for _, d := range p.Errors {
			by[d] = append(by[d], p.Name)
		}
	}
	var out []jen.Code
	for _, d := range g.m.Errors {
		out = append(out, doc(d.GoName+" is the domain error "+d.Name+", declared by "+strings.Join(by[d], ", ")+".").
			Var().Id(d.GoName).Op("=").Qual(enginePkg, "DomainError").Call(jen.Lit(d.Name)))
	}
	return out
}

// declaredErrors lists the sentinels of the errors p declares.
func declaredErrors(p *contract.Process) []jen.Code {
	out := make([]jen.Code, len(p.Errors))
	for i, d := range p.Errors {
		out[i] = jen.Id(d.GoName)
	}
	return out
}

// regexpVar is the package variable holding the compiled regex of rule i
// of p. Go names hold no "_", so the separator keeps names apart.
func regexpVar(p *contract.Process, i int) string {
	return "theusRegexp" + p.GoName + "_" + strconv.Itoa(i)
}

// ruleChecks returns the checks of p's rules, by the output they belong
// to, in the order of p's rules. The checks of a collection output go in a
// loop over the entries written (see outputChecks).
func (g *generator) ruleChecks(p *contract.Process) map[*contract.Path][]jen.Code {
	checks := map[*contract.Path][]jen.Code{}
	for i, r := range p.Rules {
		for _, c := range r.Checks {
			checks[r.Path] = append(checks[r.Path], ruleCheck(p, i, r, c))
		}
	}
	return checks
}

// ruleCheck checks c of rule i of p on the value the run set: the output's
// value, or for a [*] rule the value w.Value of an entry written.
func ruleCheck(p *contract.Process, i int, r *contract.Rule, c *contract.Check) jen.Code {
	// The value is behind a pointer: x, the output's, or w.Value, the
	// entry's.
	value := "*x"
	if r.Each {
		value = "*w.Value"
	}
	if len(r.Sub) > 0 {
		value = value[1:]
	}
	for _, f := range r.Sub {
		value += "." + f.GoName
	}
	e := ruleError(p, r, c)
	broken := jen.Id("tx").Dot("Fail").Call(jen.Op("&").Add(e))
	if r.Warn {
		broken = jen.Id("tx").Dot("Warn").Call(e)
	}
	if c.Kind == "check" {
		// The check reads the value where the run left it.
		ptr := jen.Op("&").Id(value)
		if p, ok := strings.CutPrefix(value, "*"); ok {
			ptr = jen.Id(p)
		}
		holds := jen.Id(checkVar(p, i)).Dot("Holds").Call(jen.Id("tx"), ptr, jen.Id("args").Assert(jen.Op("*").Id(p.GoName+"Args")))
		return jen.If(jen.Op("!").Add(holds)).Block(jen.Id("v").Op(":=").Id(value), broken)
	}
	return jen.If(jen.Id("v").Op(":=").Id(value), failed(p, i, r.Type, c)).Block(broken)
}

// ruleError is the engine.RuleError of check c of rule r, for the value v
// (of the entry w, for a [*] rule).
func ruleError(p *contract.Process, r *contract.Rule, c *contract.Check) *jen.Statement {
	fields := []field{
		{"Process", jen.Lit(p.Name)},
		{"Path", jen.Lit(r.Text)},
		{"Rule", jen.Lit(c.Kind)},
		{"Value", jen.Id("v")},
		{"Must", jen.Lit(must(c))},
	}
	if r.Message != "" {
		fields = append(fields, field{"Message", jen.Lit(r.Message)})
	}
	if r.Each {
		fields = append(fields, field{"Key", jen.Id("w.Key")})
	}
	return jen.Qual(enginePkg, "RuleError").Add(keyed(fields...))
}

// failed is the condition under which the value v of type t breaks check c
// of rule i of p.
func failed(p *contract.Process, i int, t *contract.Type, c *contract.Check) *jen.Statement {
	v := jen.Id("v")
	length := func() *jen.Statement {
		if isString(t) {
			return jen.Qual("unicode/utf8", "RuneCountInString").Call(v)
		}
		return jen.Len(v)
	}
	switch c.Kind {
	case "min":
		return v.Op("<").Op(c.Lit)
	case "max":
		return v.Op(">").Op(c.Lit)
	case "min_len":
		return length().Op("<").Op(c.Lit)
	case "max_len":
		return length().Op(">").Op(c.Lit)
	case "regex":
		return jen.Op("!").Id(regexpVar(p, i)).Dot("MatchString").Call(v)
	case "one_of":
		cond := jen.Null()
		for j, lit := range c.OneOf {
			if j > 0 {
				cond.Op("&&")
			}
			cond.Id("v").Op("!=").Op(lit)
		}
		return cond
	case "check":
		panic("gen: a check is not a Go condition")
	case "required":
		switch {
		case t.Kind == contract.Slice || t.Kind == contract.Map:
			return jen.Len(v).Op("==").Lit(0)
		case t.Kind == contract.Named:
			return v.Op("==").Parens(jen.Id(t.Struct.GoName).Values())
		case isString(t):
			return v.Op("==").Lit("")
		case t.Name == "bool":
			return jen.Op("!").Add(v)
		}
		return v.Op("==").Lit(0)
	}
	panic("gen: unknown check " + c.Kind)
}

func isString(t *contract.Type) bool { return t.Kind == contract.Builtin && t.Name == "string" }

// regexpLit writes a pattern as a raw string when it can be one, so that
// the generated regex reads as the contract writes it.
func regexpLit(pattern string) jen.Code {
	raw := utf8.ValidString(pattern) && !strings.ContainsFunc(pattern, func(r rune) bool {
		return r == '`' || r == '\r' || r == '\uFEFF' || !unicode.IsPrint(r) && r != ' '
	})
	if raw {
		return jen.Op("`" + pattern + "`")
	}
	return jen.Lit(pattern)
}

// checkVar is the package variable holding the CEL check of rule i of p.
func checkVar(p *contract.Process, i int) string {
	return "theusCheck" + p.GoName + "_" + strconv.Itoa(i)
}

// checkDecls declares the CEL checks of p's rules, compiled on first use
// against the generated types; the names of p's arguments, which the Args
// struct does not carry, are given in order.
func (g *generator) checkDecls(p *contract.Process) []jen.Code {
	var out []jen.Code
	for i, r := range p.Rules {
		for _, c := range r.Checks {
			if c.Kind != "check" {
				continue
			}
			args := []jen.Code{jen.Lit(c.Expr)}
			for _, a := range p.Args {
				args = append(args, jen.Lit(a.Name))
			}
			name := checkVar(p, i)
			out = append(out, doc(name+" is the check of the rule of "+p.Name+" on "+r.Text+".").
				Var().Id(name).Op("=").Qual(celPkg, "NewCheck").Call(args...))
		}
	}
	return out
}

// must says what check c requires of a value, after "must".
func must(c *contract.Check) string {
	switch c.Kind {
	case "min":
		return "be >= " + c.Lit
	case "max":
		return "be <= " + c.Lit
	case "min_len":
		return "have length >= " + c.Lit
	case "max_len":
		return "have length <= " + c.Lit
	case "regex":
		return "match " + c.Regex
	case "one_of":
		return "be one of " + strings.Join(c.OneOf, ", ")
	case "required":
		return "be set"
	case "check":
		return "satisfy " + strings.Join(strings.Fields(c.Expr), " ")
	}
	panic("gen: unknown check " + c.Kind)
}

// celExpr is check c, on a value of type t, as a CEL expression, for the
// engine to check an invariant with.
func celExpr(c *contract.Check, t *contract.Type) string {
	lit := func(s string) string {
		switch {
		case t.Kind != contract.Builtin:
		case strings.HasPrefix(t.Name, "uint") || t.Name == "byte":
			return s + "u"
		case strings.HasPrefix(t.Name, "float") && !strings.ContainsAny(s, ".eE"):
			return s + ".0"
		}
		return s
	}
	switch c.Kind {
	case "min":
		return "self >= " + lit(c.Lit)
	case "max":
		return "self <= " + lit(c.Lit)
	case "min_len":
		return "size(self) >= " + c.Lit
	case "max_len":
		return "size(self) <= " + c.Lit
	case "regex":
		return "self.matches(" + strconv.Quote(c.Regex) + ")"
	case "one_of":
		lits := make([]string, len(c.OneOf))
		for i, l := range c.OneOf {
			lits[i] = lit(l)
		}
		return "self in [" + strings.Join(lits, ", ") + "]"
	case "required":
		switch {
		case t.Kind == contract.Slice || t.Kind == contract.Map:
			return "size(self) > 0"
		case isString(t):
			return `self != ""`
		case t.Name == "bool":
			return "self"
		}
		return "self != " + lit("0")
	case "check":
		return c.Expr
	}
	panic("gen: unknown check " + c.Kind)
}

// invariants is the value of theusSchema.Invariants: one engine.Invariant
// per check of each of the contract's invariants.
func (g *generator) invariants() jen.Code {
	var out []jen.Code
	for _, r := range g.m.Invariants {
		fi := slices.Index(g.m.State, r.Path.Field)
		for _, c := range r.Checks {
			fields := []field{
				{"Path", jen.Lit(r.Text)},
				{"Field", jen.Lit(fi)},
				{"Rule", jen.Lit(c.Kind)},
				{"Check", jen.Lit(celExpr(c, r.Type))},
				{"Must", jen.Lit(must(c))},
			}
			if r.Each {
				fields = append(fields, field{"Each", jen.True()})
			}
			if len(r.Sub) > 0 {
				names := make([]jen.Code, len(r.Sub))
				for i, f := range r.Sub {
					names[i] = jen.Lit(f.Name)
				}
				fields = append(fields, field{"Sub", jen.Index().String().Values(names...)})
			}
			if r.Message != "" {
				fields = append(fields, field{"Message", jen.Lit(r.Message)})
			}
			if r.Warn {
				fields = append(fields, field{"Warn", jen.True()})
			}
			out = append(out, keyed(fields...))
		}
	}
	return jen.Index().Qual(enginePkg, "Invariant").Custom(multiLine, out...)
}
