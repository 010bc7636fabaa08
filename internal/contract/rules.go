package contract

import (
	"errors"
	"fmt"
	"go/token"
	"math"
	"math/big"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Domain errors (`errors:`) and rules (`rules:`) of a process.

// parseErrors reads a process's `errors:`, a list of names. Processes that
// declare the same name share one ErrorDecl, so one sentinel.
func (p *parser) parseErrors(pr *Process, n *yaml.Node) {
	first := map[string]*yaml.Node{}
	for _, item := range p.strList(n) {
		name := item.Value
		if f, dup := first[name]; dup {
			p.errorf(item, "duplicate error %q (first at %d:%d)", name, f.Line, f.Column)
			continue
		}
		first[name] = item
		g := "Err" + GoName(name)
		if g == "Err" || !token.IsIdentifier(g) {
			p.errorf(item, "error %q does not convert to a Go name (got %q)", name, g)
			continue
		}
		i := slices.IndexFunc(p.m.Errors, func(d *ErrorDecl) bool { return d.Name == name })
		if i < 0 {
			i = len(p.m.Errors)
			p.m.Errors = append(p.m.Errors, &ErrorDecl{Name: name, GoName: g, Pos: p.pos(item)})
		}
		pr.Errors = append(pr.Errors, p.m.Errors[i])
	}
}

// errorNames are the sentinels' declarations in the package block, for
// checkNames.
func (p *parser) errorNames() []goDecl {
	var out []goDecl
	for _, d := range p.m.Errors {
		out = append(out, goDecl{name: d.GoName, desc: fmt.Sprintf("error %q", d.Name), pos: d.Pos})
	}
	return out
}

// checkKinds are the keys of a rule that are checks.
var checkKinds = []string{"min", "max", "min_len", "max_len", "regex", "one_of", "required", "check"}

var ruleKeys = slices.Concat([]string{"path"}, checkKinds, []string{"message", "on_fail"})

// parseRules reads a process's `rules:`, a list of mappings. The outputs
// must have been read: a rule's path must be one of them, or lie below one.
func (p *parser) parseRules(pr *Process, n *yaml.Node) {
	if isNull(n) || !p.expect(n, yaml.SequenceNode, "expected a list of rules") {
		return
	}
	for _, item := range n.Content {
		if !p.expect(item, yaml.MappingNode, "expected a rule: a mapping with a path and checks, e.g. {path: domain.user.email, required: true}") {
			continue
		}
		if r := p.rule(pr, item); r != nil {
			pr.Rules = append(pr.Rules, r)
		}
	}
}

// rule reads one entry of `rules:` of pr, or of `state.invariants:` when
// pr is nil, or returns nil after reporting why it cannot be used.
func (p *parser) rule(pr *Process, n *yaml.Node) *Rule {
	ents := p.entries(n)
	keys, unknown := p.index(ents, ruleKeys...)
	// A misspelt key may be the path or the check that seems missing.
	complete := len(unknown) == 0
	r := &Rule{Pos: p.pos(n)}
	ok := true
	if e, has := keys["on_fail"]; has {
		switch s, isStr := p.str(e.val); {
		case !isStr:
			ok = false
		case s == "warn":
			r.Warn = true
		case s != "reject":
			p.errorf(e.val, "%s", unknownChoice("on_fail", s, "", []string{"reject", "warn"}))
			ok = false
		}
	}
	if e, has := keys["message"]; has {
		if s, isStr := p.str(e.val); isStr {
			r.Message = strings.TrimSpace(s)
		} else {
			ok = false
		}
	}
	known := true // whether r.Type is known, so checks can be matched to it
	if e, has := keys["path"]; !has {
		switch {
		case !complete:
		case pr == nil:
			p.errorf(n, "invariant has no path (add path: zone.field, or zone.collection[*])")
		default:
			p.errorf(n, "rule has no path (add path: zone.field, an output of process %q)", pr.Name)
		}
		ok, known = false, false
	} else if !p.rulePath(pr, r, e.val) {
		ok, known = false, false
	}
	byKind := map[string]*Check{} // for "min greater than max"
	hasChecks := false
	for _, e := range ents {
		if !slices.Contains(checkKinds, e.name) {
			continue
		}
		hasChecks = true
		c := p.check(r, e, known)
		if c == nil {
			ok = false
			continue
		}
		if c.Kind == "check" {
			p.exprs = append(p.exprs, exprUse{proc: pr, rule: r, check: c, node: e.val})
		}
		r.Checks = append(r.Checks, c)
		byKind[c.Kind] = c
	}
	if !hasChecks {
		if !complete {
			return nil
		}
		what := "rule"
		if pr == nil {
			what = "invariant"
		}
		if r.Text != "" {
			what = fmt.Sprintf("%s on %q", what, r.Text)
		}
		p.errorf(n, "%s has no check (add one of %s)", what, oneOf(checkKinds))
		return nil
	}
	for _, b := range [][2]string{{"min", "max"}, {"min_len", "max_len"}} {
		lo, hi := byKind[b[0]], byKind[b[1]]
		if lo != nil && hi != nil && greater(lo, hi) {
			p.errs.add(hi.Pos, "%s %s is less than %s %s: no value can pass", hi.Kind, hi.Lit, lo.Kind, lo.Lit)
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return r
}

// greater reports whether the literal of a is greater than that of b.
func greater(a, b *Check) bool {
	x, okA := new(big.Rat).SetString(a.Lit)
	y, okB := new(big.Rat).SetString(b.Lit)
	return okA && okB && x.Cmp(y) > 0
}

// rulePath resolves the path of rule r, written in n: an output of pr, a
// field below one, or coll[*] (or a field below it) where coll is a
// collection output, for a check of every entry the call writes.
func (p *parser) rulePath(pr *Process, r *Rule, n *yaml.Node) bool {
	text, ok := p.str(n)
	if !ok {
		return false
	}
	r.Text = text
	head, rest, each := strings.Cut(text, "[*]")
	if !each {
		pa := p.path(n)
		if pa == nil {
			return false
		}
		if pr == nil { // an invariant: any state path
			if pa.Field.Collection && len(pa.Sub) == 0 {
				p.errorf(n, "an invariant on collection %q checks its entries: write %s[*] or %s[*].FIELD", pa.Text, pa.Text, pa.Text)
				return false
			}
			r.Path, r.Sub, r.Type = fieldPath(pa.Field), pa.Sub, pa.Type
			return true
		}
		for _, o := range pr.Outputs {
			if o.Field == pa.Field && len(o.Sub) <= len(pa.Sub) && slices.Equal(o.Sub, pa.Sub[:len(o.Sub)]) {
				if o.Field.Collection {
					p.errorf(n, "a rule on collection %q checks its entries: write %s[*] or %s[*].FIELD", o.Text, o.Text, o.Text)
					return false
				}
				r.Path, r.Sub, r.Type = o, pa.Sub[len(o.Sub):], pa.Type
				return true
			}
		}
		p.notOutput(pr, n, text)
		return false
	}
	if rest != "" && !strings.HasPrefix(rest, ".") || strings.ContainsAny(rest, "[]*") {
		p.errorf(n, "invalid path %q ([*] follows a collection once, e.g. domain.accounts[*].balance)", text)
		return false
	}
	headNode := *n
	headNode.Value = head
	pa := p.path(&headNode)
	if pa == nil {
		return false
	}
	if !pa.Field.Collection || len(pa.Sub) > 0 {
		p.errorf(n, "[*] needs a collection: %q is not one (path %q)", head, text)
		return false
	}
	if pr == nil {
		r.Path, r.Each = fieldPath(pa.Field), true
	} else {
		i := slices.IndexFunc(pr.Outputs, func(o *Path) bool { return o.Text == pa.Text })
		if i < 0 {
			p.notOutput(pr, n, text)
			return false
		}
		r.Path, r.Each = pr.Outputs[i], true
	}
	r.Sub, r.Type = p.selectFields(n, text, pa.Type.Elem, strings.Split(rest, ".")[1:])
	return r.Type != nil
}

// fieldPath is the path of a top-level state field, which an invariant
// belongs to.
func fieldPath(f *StateField) *Path {
	return &Path{Text: string(f.Zone) + "." + f.Name, Field: f, Type: f.Type, GoName: f.GoName, Pos: f.Pos}
}

func (p *parser) notOutput(pr *Process, n *yaml.Node, text string) {
	if p.partial[pr] {
		return // it may be one of the outputs in error
	}
	p.errorf(n, "rule path %q is not an output of process %q, nor below one (rules check what a process writes)", text, pr.Name)
}

// selectFields follows the struct fields names from a value of type t, for
// the path text written in n. It returns a nil Type after reporting why a
// name cannot be followed.
func (p *parser) selectFields(n *yaml.Node, text string, t *Type, names []string) ([]*Field, *Type) {
	var sub []*Field
	for _, name := range names {
		if t == nil {
			return nil, nil // in error, already reported
		}
		if t.Kind != Named {
			p.errorf(n, "cannot select %q in path %q: the value before it has type %s, not a declared struct", name, text, t.Expr)
			return nil, nil
		}
		f := p.fields[t.Struct][name]
		if f == nil {
			if !p.unresolved(t.Struct, name) {
				segs := strings.Split(text, ".")
				hint := didYouMean(name, fieldNames(t.Struct), withSegment(segs, len(segs)-len(names)+len(sub)))
				p.errorf(n, "%q is not a field of type %s (path %q)%s", name, t.Name, text, hint)
			}
			return nil, nil
		}
		sub = append(sub, f)
		t = f.Type
	}
	return sub, t
}

// valueKind groups types by the checks that apply to them.
type valueKind int

const (
	otherKind valueKind = iota
	intKind
	uintKind
	floatKind
	stringKind
	boolKind
	lenKind // slices and maps
	structKind
)

func kindOf(t *Type) valueKind {
	switch t.Kind {
	case Slice, Map:
		return lenKind
	case Named:
		return structKind
	case Builtin:
		switch {
		case t.Name == "string":
			return stringKind
		case t.Name == "bool":
			return boolKind
		case strings.HasPrefix(t.Name, "float"):
			return floatKind
		case strings.HasPrefix(t.Name, "uint") || t.Name == "byte":
			return uintKind
		default:
			return intKind
		}
	}
	return otherKind
}

// checkApplies tells which kinds each check applies to, and says so for
// messages.
var checkApplies = map[string]struct {
	kinds []valueKind
	what  string
}{
	"min":     {[]valueKind{intKind, uintKind, floatKind}, "numbers"},
	"max":     {[]valueKind{intKind, uintKind, floatKind}, "numbers"},
	"min_len": {[]valueKind{stringKind, lenKind}, "strings, slices and maps"},
	"max_len": {[]valueKind{stringKind, lenKind}, "strings, slices and maps"},
	"regex":   {[]valueKind{stringKind}, "strings"},
	"one_of":  {[]valueKind{intKind, uintKind, floatKind, stringKind, boolKind}, "numbers, strings and booleans"},
	"required": {[]valueKind{intKind, uintKind, floatKind, stringKind, boolKind, lenKind, structKind},
		"numbers, strings, booleans, slices, maps and declared structs"},
	"check": {[]valueKind{otherKind, intKind, uintKind, floatKind, stringKind, boolKind, lenKind, structKind}, "any value"},
}

// check reads the check e of rule r. When known is false the rule's type
// is unknown (its path is in error) and only what does not depend on it is
// checked. It returns nil after reporting an error.
func (p *parser) check(r *Rule, e entry, known bool) *Check {
	c := &Check{Kind: e.name, Pos: p.pos(e.val)}
	kind := otherKind
	if known {
		kind = kindOf(r.Type)
		if a := checkApplies[e.name]; !slices.Contains(a.kinds, kind) {
			p.errorf(e.key, "%s applies to %s; %q has type %s", e.name, a.what, r.Text, r.Type.Expr)
			return nil
		}
	}
	switch e.name {
	case "min", "max":
		lit, ok := p.numLit(e.val, r.Type, kind)
		if !ok {
			return nil
		}
		c.Lit = lit
	case "min_len", "max_len":
		if !p.expect(e.val, yaml.ScalarNode, e.name+" must be a non-negative integer") {
			return nil
		}
		v, err := strconv.ParseInt(strings.ReplaceAll(e.val.Value, "_", ""), 0, 64)
		if e.val.Tag != "!!int" || err != nil || v < 0 {
			p.errorf(e.val, "%s must be a non-negative integer", e.name)
			return nil
		}
		c.Lit = strconv.FormatInt(v, 10)
	case "regex":
		s, ok := p.str(e.val)
		if !ok {
			return nil
		}
		if _, err := regexp.Compile(s); err != nil {
			msg := err.Error()
			var se *syntax.Error
			if errors.As(err, &se) {
				msg = se.Code.String() + ": `" + se.Expr + "`"
			}
			p.errorf(e.val, "regex does not compile: %s", msg)
			return nil
		}
		c.Regex = s
	case "one_of":
		if !p.expect(e.val, yaml.SequenceNode, "one_of must be a list of values") {
			return nil
		}
		if len(e.val.Content) == 0 {
			p.errorf(e.val, "one_of needs at least one value")
			return nil
		}
		first := map[string]*yaml.Node{}
		ok := true
		for _, item := range e.val.Content {
			lit, litOK := p.literal(item, r.Type, kind)
			if !litOK {
				ok = false
				continue
			}
			if f, dup := first[lit]; dup && known {
				p.errorf(item, "duplicate value %s in one_of (first at %d:%d)", item.Value, f.Line, f.Column)
				ok = false
				continue
			}
			first[lit] = item
			c.OneOf = append(c.OneOf, lit)
		}
		if !ok {
			return nil
		}
	case "check":
		s, ok := p.str(e.val)
		if !ok {
			return nil
		}
		if strings.TrimSpace(s) == "" {
			p.errorf(e.val, "check needs a CEL expression of type bool, e.g. check: \"self.sold <= self.capacity\"")
			return nil
		}
		c.Expr = s
	case "required":
		if !p.expect(e.val, yaml.ScalarNode, "required must be true") {
			return nil
		}
		if e.val.Tag != "!!bool" || e.val.Value != "true" {
			p.errorf(e.val, "required must be true (leave it out for an optional value)")
			return nil
		}
		if kind == structKind && !isComparable(r.Type, nil) {
			p.errorf(e.key, "required needs a zero value to compare with, and type %s holds slices, maps or imported types; put required on its fields", r.Type.Expr)
			return nil
		}
	}
	return c
}

// isComparable reports whether values of t can be compared with == in Go,
// for required on a struct. Imported types are opaque, so not known to be.
func isComparable(t *Type, seen map[*Struct]bool) bool {
	switch t.Kind {
	case Builtin:
		return true
	case Named:
		if seen[t.Struct] {
			return true
		}
		if seen == nil {
			seen = map[*Struct]bool{}
		}
		seen[t.Struct] = true
		for _, f := range t.Struct.Fields {
			if f.Type == nil || !isComparable(f.Type, seen) {
				return false
			}
		}
		return true
	}
	return false
}

// literal reads a one_of value of type t (of kind k) as a Go literal. With
// an unknown type it only checks that n is a scalar.
func (p *parser) literal(n *yaml.Node, t *Type, k valueKind) (string, bool) {
	switch k {
	case stringKind:
		s, ok := p.str(n)
		return strconv.Quote(s), ok
	case boolKind:
		if !p.expect(n, yaml.ScalarNode, "expected true or false") {
			return "", false
		}
		if n.Tag != "!!bool" {
			p.errorf(n, "expected true or false, not %s (the field has type bool)", shown(n))
			return "", false
		}
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		return strconv.FormatBool(b), err == nil
	case intKind, uintKind, floatKind:
		return p.numLit(n, t, k)
	}
	return "", p.expect(n, yaml.ScalarNode, "expected a value")
}

// intBits are the sizes of the integer builtins; int and uint are taken
// as 64 bits.
var intBits = map[string]int{
	"int": 64, "int8": 8, "int16": 16, "int32": 32, "int64": 64, "rune": 32,
	"uint": 64, "uint8": 8, "uint16": 16, "uint32": 32, "uint64": 64, "byte": 8,
}

// numLit reads a number of type t (of kind k) as a Go literal: integers
// in decimal, floats in the shortest form that reads back the same. With
// an unknown type any number is accepted.
func (p *parser) numLit(n *yaml.Node, t *Type, k valueKind) (string, bool) {
	if !p.expect(n, yaml.ScalarNode, "expected a number") {
		return "", false
	}
	// As yaml.v3 reads numbers: underscores are separators, 0x/0o/0b
	// prefixes allowed.
	s := strings.ReplaceAll(n.Value, "_", "")
	switch {
	case n.Tag != "!!int" && n.Tag != "!!float":
		p.errorf(n, "expected a number, not %s", shown(n))
		return "", false
	case k == intKind || k == uintKind:
		if n.Tag != "!!int" {
			p.errorf(n, "expected an integer, not %s (the field has type %s)", shown(n), t.Expr)
			return "", false
		}
		bits := intBits[t.Name]
		if k == intKind {
			v, err := strconv.ParseInt(s, 0, bits)
			if err != nil {
				p.errorf(n, "%s is out of range for %s", n.Value, t.Expr)
				return "", false
			}
			return strconv.FormatInt(v, 10), true
		}
		v, err := strconv.ParseUint(s, 0, bits)
		if err != nil {
			p.errorf(n, "%s is out of range for %s", n.Value, t.Expr)
			return "", false
		}
		return strconv.FormatUint(v, 10), true
	}
	var f float64
	var err error
	if n.Tag == "!!int" {
		f, err = parseBigInt(s) // 0x, 0o, 0b and leading-0 octal, as for integers
	} else {
		f, err = strconv.ParseFloat(s, 64)
	}
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		p.errorf(n, "expected a finite number, not %s", n.Value)
		return "", false
	}
	if k == floatKind && t.Name == "float32" && math.Abs(f) > math.MaxFloat32 {
		p.errorf(n, "%s is out of range for float32", n.Value)
		return "", false
	}
	return strconv.FormatFloat(f, 'g', -1, 64), true
}

func parseBigInt(s string) (float64, error) {
	b, ok := new(big.Int).SetString(s, 0)
	if !ok {
		return 0, strconv.ErrSyntax
	}
	f, _ := new(big.Float).SetInt(b).Float64()
	return f, nil
}

// shown is a scalar as a message quotes it: strings in quotes, so that "5"
// and 5 read differently.
func shown(n *yaml.Node) string {
	if n.Tag == "!!str" {
		return strconv.Quote(n.Value)
	}
	return n.Value
}
