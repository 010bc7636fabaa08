package lint

import (
	"fmt"
	"strings"

	"github.com/theus-go/theus/internal/contract"
	"github.com/theus-go/theus/internal/gen"
	"github.com/theus-go/theus/runtime/engine"
)

// Codes of `theusgen breaking`.
const (
	CodeStateBreaking  = "TB001"
	CodeStateRemoved   = "TB002"
	CodeTopicRemoved   = "TB003"
	CodePayloadRemoved = "TB004"
	CodePayloadRetyped = "TB005"
	CodeTopicKeyChange = "TB006"
)

// BreakingRules lists every code `theusgen breaking` reports, in code order.
var BreakingRules = []Rule{
	{CodeStateBreaking, "state-breaking", Error, "stored state cannot be read with the new type (type changed, narrowed, key type changed, collection <-> value): it needs a migration"},
	{CodeStateRemoved, "state-removed", Warning, "a state field, or a field of a stored type, was removed: its stored values are ignored"},
	{CodeTopicRemoved, "topic-removed", Error, "a topic was removed: its consumers get no more messages"},
	{CodePayloadRemoved, "payload-field-removed", Error, "a field of a topic's payload was removed: consumers reading it break"},
	{CodePayloadRetyped, "payload-field-retyped", Error, "a field of a topic's payload changed type: consumers decoding it break"},
	{CodeTopicKeyChange, "topic-key-changed", Error, "a topic's key changed: per-key order and partitioning change for its consumers"},
}

// Breaking compares the contract new with an earlier one, old, and reports
// at new's positions the changes that break the state a store holds
// (the same rules as a store applies on recovery, engine.CompareTypes) and
// the changes that break consumers of a topic's payload. A finding about
// something new no longer has is reported at the closest place new still
// has (its type, its section), and says where the old contract had it.
//
// allow lists paths acknowledged as deliberate ("domain.orders",
// "domain.orders[*].seats", a topic's name, or a field below it): their
// findings, and those below them, become warnings.
func Breaking(old, new *contract.Model, allow []string) []Finding {
	b := breaker{old: old, new: new}
	b.state()
	b.topics()
	for i, f := range b.out {
		if f.Severity == Error && allowed(b.subjects[i], allow) {
			b.out[i].Severity = Warning
			b.out[i].Message += " (allowed)"
		}
	}
	return SortFindings(b.out)
}

type breaker struct {
	old, new *contract.Model
	out      []Finding
	subjects []string // per finding: the path it is about, for allow
}

func (b *breaker) add(pos contract.Pos, code string, sev Severity, subject, msg string) {
	b.out = append(b.out, contractFinding(pos, code, sev, msg))
	b.subjects = append(b.subjects, subject)
}

// allowed reports whether subject is, or lies below, a path of allow.
func allowed(subject string, allow []string) bool {
	for _, a := range allow {
		if subject == a || strings.HasPrefix(subject, a) && (subject[len(a)] == '.' || subject[len(a)] == '[') {
			return true
		}
	}
	return false
}

// filePos is where a finding goes when new holds nothing closer.
func (b *breaker) filePos() contract.Pos { return contract.Pos{File: b.new.Source, Line: 1, Col: 1} }

func (b *breaker) state() {
	byPath := map[string]*contract.StateField{}
	for _, f := range b.new.State {
		byPath[string(f.Zone)+"."+f.Name] = f
	}
	for _, of := range b.old.State {
		path := string(of.Zone) + "." + of.Name
		nf := byPath[path]
		if nf == nil {
			pos := b.filePos()
			for _, f := range b.new.State {
				if f.Zone == of.Zone {
					pos = f.Pos
					break
				}
			}
			b.add(pos, CodeStateRemoved, Warning, path, fmt.Sprintf("state field %s was removed (was at line %d): its stored values are ignored", path, of.Pos.Line))
			continue
		}
		changes, err := engine.CompareTypes(path, gen.StateFingerprint(of), gen.StateFingerprint(nf))
		if err != nil { // fingerprints are generated: a bug, said as such
			b.add(nf.Pos, CodeStateBreaking, Error, path, "cannot compare: "+err.Error())
			continue
		}
		for _, c := range changes {
			pos := locate(nf.Pos, nf.Type, strings.TrimPrefix(c.Path, path))
			switch {
			case c.Kind == engine.FieldRemoved:
				b.add(pos, CodeStateRemoved, Warning, c.Path, fmt.Sprintf("%s: stored field removed: its stored values are ignored", c.Path))
			case c.Kind.Breaking():
				b.add(pos, CodeStateBreaking, Error, c.Path, fmt.Sprintf("%s: %s (%s -> %s): stored values need a migration", c.Path, c.Kind, c.Old, c.New))
			}
		}
	}
}

func (b *breaker) topics() {
	byName := map[string]*contract.Topic{}
	for _, t := range b.new.Topics {
		byName[t.Name] = t
	}
	for _, ot := range b.old.Topics {
		nt := byName[ot.Name]
		if nt == nil {
			pos := b.filePos()
			if len(b.new.Topics) > 0 {
				pos = b.new.Topics[0].Pos
			}
			b.add(pos, CodeTopicRemoved, Error, ot.Name, fmt.Sprintf("topic %s was removed (was at line %d): its consumers get no more messages", ot.Name, ot.Pos.Line))
			continue
		}
		if ok, nk := keyName(ot), keyName(nt); ok != nk {
			b.add(nt.Pos, CodeTopicKeyChange, Error, ot.Name, fmt.Sprintf("topic %s: key changed from %s to %s: per-key order and partitions change for consumers", ot.Name, ok, nk))
		}
		// The payload is compared as a store compares state, from a root
		// named "$" that the messages leave out.
		changes, err := engine.CompareTypes("$", gen.TypeFingerprint(ot.Payload), gen.TypeFingerprint(nt.Payload))
		if err != nil {
			b.add(nt.Pos, CodePayloadRetyped, Error, ot.Name, "cannot compare: "+err.Error())
			continue
		}
		for _, c := range changes {
			sub := strings.TrimPrefix(c.Path, "$")
			field := strings.TrimPrefix(sub, ".")
			pos := locate(nt.Pos, nt.Payload, sub)
			switch c.Kind {
			case engine.FieldAdded:
			case engine.FieldRemoved:
				b.add(pos, CodePayloadRemoved, Error, ot.Name+sub, fmt.Sprintf("topic %s: payload field %s removed: consumers reading it break", ot.Name, field))
			default:
				what := "payload field " + field
				if field == "" {
					what = "payload"
				}
				b.add(pos, CodePayloadRetyped, Error, ot.Name+sub, fmt.Sprintf("topic %s: %s %s (%s -> %s): consumers decoding it break", ot.Name, what, c.Kind, c.Old, c.New))
			}
		}
	}
}

func keyName(t *contract.Topic) string {
	if t.Key == nil {
		return "(none)"
	}
	return t.Key.Name
}

// locate returns the position, in the new contract, of what sub (".a[*].b"
// below a value of type t declared at pos) names, or of the closest thing
// above it that the contract declares: a struct field where it has one,
// the struct's declaration when the field is not there.
func locate(pos contract.Pos, t *contract.Type, sub string) contract.Pos {
	for sub != "" && t != nil {
		switch {
		case strings.HasPrefix(sub, "[*]"):
			sub = sub[3:]
			for t.Kind == contract.Imported && t.Under != nil {
				t = t.Under
			}
			t = t.Elem
		case strings.HasPrefix(sub, "."):
			name := sub[1:]
			if i := strings.IndexAny(name, ".["); i >= 0 {
				name = name[:i]
			}
			sub = sub[1+len(name):]
			s := structOf(t)
			if s == nil {
				return pos
			}
			var f *contract.Field
			for _, x := range s.Fields {
				if x.Name == name {
					f = x
				}
			}
			if f == nil {
				if s.Pos.Line > 0 {
					return s.Pos
				}
				return pos
			}
			if f.Pos.Line > 0 {
				pos = f.Pos
			}
			t = f.Type
		default:
			return pos
		}
	}
	return pos
}

// structOf returns the fields of t, a declared or imported struct.
func structOf(t *contract.Type) *contract.Struct {
	for t != nil && t.Kind == contract.Imported {
		t = t.Under
	}
	if t == nil || t.Kind != contract.Named && t.Kind != contract.ImportedStruct {
		return nil
	}
	return t.Struct
}
