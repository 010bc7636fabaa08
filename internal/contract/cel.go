package contract

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/theus-go/theus/runtime/celcheck"
)

// CEL checks: the `check:` of rules and invariants, and `state.invariants:`.

// parseInvariants reads `state.invariants:`, a list of rules on any state
// path, which every commit writing the path must keep.
func (p *parser) parseInvariants(n *yaml.Node) {
	if n == nil || isNull(n) || !p.expect(n, yaml.SequenceNode, "expected a list of invariants, e.g. - {path: \"domain.events[*]\", check: \"self.sold <= self.capacity\"}") {
		return
	}
	for _, item := range n.Content {
		if !p.expect(item, yaml.MappingNode, "expected an invariant: a mapping with a path and checks, e.g. {path: \"domain.events[*]\", check: \"self.sold <= self.capacity\"}") {
			continue
		}
		r := p.rule(nil, item)
		if r == nil {
			continue
		}
		bad := false
		for _, c := range r.Checks {
			if c.Kind == "required" && kindOf(r.Type) == structKind {
				p.errs.add(c.Pos, "required on a struct is not available in an invariant; write a check on its fields, e.g. check: \"self.id != ''\"")
				bad = true
			}
		}
		if !bad {
			p.m.Invariants = append(p.m.Invariants, r)
		}
	}
}

// exprUse is a CEL check to type-check: check c of rule r, of process proc
// (nil for an invariant), written in node.
type exprUse struct {
	proc  *Process
	rule  *Rule
	check *Check
	node  *yaml.Node
}

// checkExprs compiles every CEL check against the contract's types and
// reports what CEL finds at its place in the expression. A rule whose
// check does not compile is dropped from its process or the invariants.
func (p *parser) checkExprs() {
	conv := celTypes{}
	for _, u := range p.exprs {
		if u.rule.Type == nil || !conv.complete(u.rule.Type) {
			continue // in error, reported
		}
		var args *celcheck.Type
		if u.proc != nil {
			args = conv.args(u.proc)
			if args == nil {
				continue
			}
		}
		_, err := celcheck.Compile(u.check.Expr, conv.of(u.rule.Type), args)
		if err == nil {
			continue
		}
		var ce *celcheck.CompileError
		if !errors.As(err, &ce) {
			p.errorf(u.node, "check %q: %v", u.check.Expr, err)
			continue
		}
		for _, is := range ce.Issues {
			msg := is.Msg + p.celHint(is.Msg, u, conv)
			if u.proc == nil && strings.Contains(is.Msg, "undeclared reference to 'args'") {
				msg = "an invariant has no args: it holds whichever process or CompareAndSwap writes the path, so it can only read self"
			}
			p.errs.add(p.exprPos(u.node, is), "check %q: %s", shortExpr(u.check.Expr), msg)
		}
	}
}

// shortExpr quotes an expression in a message, cut short.
func shortExpr(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 48 {
		return string(r[:47]) + "…"
	}
	return s
}

var undefinedField = regexp.MustCompile(`undefined field '([^']+)'`)

// celHint suggests a field or a variable for a name CEL does not know.
func (p *parser) celHint(msg string, u exprUse, conv celTypes) string {
	if m := undefinedField.FindStringSubmatch(msg); m != nil {
		var names []string
		seen := map[*celcheck.Type]bool{}
		var walk func(t *celcheck.Type)
		walk = func(t *celcheck.Type) {
			if t == nil || seen[t] {
				return
			}
			seen[t] = true
			for _, f := range t.Fields {
				names = append(names, f.Name)
				walk(f.Type)
			}
			walk(t.Elem)
		}
		walk(conv.of(u.rule.Type))
		if u.proc != nil {
			walk(conv.args(u.proc))
		}
		return didYouMean(m[1], names, nil)
	}
	if strings.Contains(msg, "undeclared reference to '") && !strings.Contains(msg, "did you mean") {
		vars := "self (the value at " + u.rule.Text + ")"
		if u.proc != nil {
			vars += " and args (the arguments of " + u.proc.Name + ")"
		}
		return "; the check can read " + vars
	}
	return ""
}

// exprPos places issue is of the expression written in node in the file:
// a flow scalar starts at the node (after its quote), a block scalar (| or
// >) on the next line, at its indentation.
func (p *parser) exprPos(n *yaml.Node, is celcheck.Issue) Pos {
	pos := p.pos(n)
	if is.Line == 0 {
		return pos
	}
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		indent := 0
		if lines := bytes.Split(p.src, []byte("\n")); n.Line < len(lines) {
			l := lines[n.Line]
			indent = len(l) - len(bytes.TrimLeft(l, " "))
		}
		pos.Line = n.Line + is.Line
		pos.Col = indent + is.Col
		return pos
	}
	if is.Line == 1 {
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			pos.Col++
		}
		pos.Col += is.Col - 1
		return pos
	}
	pos.Line += is.Line - 1
	pos.Col = is.Col
	return pos
}

// celTypes converts contract types to CEL's, once each, so recursive
// structs convert to one object.
type celTypes map[any]*celcheck.Type

// complete reports whether t and what it holds are resolved (an error
// elsewhere may leave a field's type nil).
func (c celTypes) complete(t *Type) bool {
	ok := true
	seen := map[*Struct]bool{}
	var walk func(t *Type)
	walk = func(t *Type) {
		switch {
		case t == nil:
			ok = false
		case t.Kind == Slice:
			walk(t.Elem)
		case t.Kind == Map:
			walk(t.Key)
			walk(t.Elem)
		case t.Kind == Named && !seen[t.Struct]:
			seen[t.Struct] = true
			for _, f := range t.Struct.Fields {
				walk(f.Type)
			}
		}
	}
	walk(t)
	return ok
}

// args is the object of p's arguments, nil when one of their types is in
// error.
func (c celTypes) args(p *Process) *celcheck.Type {
	if d, ok := c[p]; ok {
		return d
	}
	d := &celcheck.Type{Kind: celcheck.Object, Name: p.GoName + "Args"}
	for _, a := range p.Args {
		if !c.complete(a.Type) {
			c[p] = nil
			return nil
		}
		d.Fields = append(d.Fields, celcheck.Field{Name: a.Name, Type: c.of(a.Type)})
	}
	c[p] = d
	return d
}

func (c celTypes) of(t *Type) *celcheck.Type {
	switch t.Kind {
	case Builtin:
		switch kindOf(t) {
		case stringKind:
			return &celcheck.Type{Kind: celcheck.String}
		case boolKind:
			return &celcheck.Type{Kind: celcheck.Bool}
		case floatKind:
			return &celcheck.Type{Kind: celcheck.Double}
		case uintKind:
			return &celcheck.Type{Kind: celcheck.Uint}
		}
		return &celcheck.Type{Kind: celcheck.Int}
	case Slice:
		return &celcheck.Type{Kind: celcheck.List, Elem: c.of(t.Elem)}
	case Map:
		return &celcheck.Type{Kind: celcheck.Map, Key: c.of(t.Key), Elem: c.of(t.Elem)}
	case Named:
		return c.object(t.Struct, t.Struct.Name, t.Struct.Fields)
	case Imported:
		if t.Under == nil { // time.Time, time.Duration
			if t.Name == "Duration" {
				return &celcheck.Type{Kind: celcheck.Duration}
			}
			return &celcheck.Type{Kind: celcheck.Timestamp}
		}
		if t.Under.Kind == ImportedStruct {
			return c.object(t.Under.Struct, t.Import.Alias+"."+t.Name, t.Under.Struct.Fields)
		}
		return c.of(t.Under)
	case ImportedStruct:
		return c.object(t.Struct, "object", t.Struct.Fields)
	}
	panic(fmt.Sprintf("contract: no CEL type for %s", t.Expr))
}

func (c celTypes) object(key *Struct, name string, fields []*Field) *celcheck.Type {
	if d, ok := c[key]; ok {
		return d
	}
	d := &celcheck.Type{Kind: celcheck.Object, Name: name}
	c[key] = d
	for _, f := range fields {
		d.Fields = append(d.Fields, celcheck.Field{Name: f.Name, Type: c.of(f.Type)})
	}
	return d
}
