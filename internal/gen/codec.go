package gen

import (
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/theus-go/theus/internal/contract"
)

// stateFields is the value of theusSchema.State: one engine.StateField per
// top-level state field, in contract order, so that a durable store can
// encode, decode and fingerprint the state without knowing its Go type.
func (g *generator) stateFields() jen.Code {
	elems := make([]jen.Code, len(g.m.State))
	for i, f := range g.m.State {
		path := string(f.Zone) + "." + f.Name
		ctor, typ, value := "ValueField", goType(f.Type), f.Type
		if f.Collection {
			ctor, typ, value = "CollectionField", collType(f.Type), f.Type.Elem
		}
		get := jen.Func().Params(jen.Id("s").Op("*").Id(g.st)).Op("*").Add(typ).
			Add(oneLine(jen.Return(jen.Op("&").Id(stateExpr("s", f, nil)))))
		elems[i] = jen.Qual(enginePkg, ctor).Call(jen.Lit(path), jen.Lit(fieldFingerprint(f)), get, g.appendElemFunc(value))
	}
	return jen.Index().Qual(enginePkg, "StateField").Types(jen.Id(g.st)).Custom(multiLine, elems...)
}

// fieldFingerprint describes the type of state field f structurally, as a
// store records it to detect schema drift: a collection is
// "collection[K]V", since it is stored entry by entry and cannot become a
// plain map (or the other way round) without a migration.
func fieldFingerprint(f *contract.StateField) string {
	if f.Collection {
		return "collection[" + fingerprint(f.Type.Key) + "]" + fingerprint(f.Type.Elem)
	}
	return fingerprint(f.Type)
}

// fingerprint describes t structurally with the contract's names, which
// are also the JSON names of stored values: "User{id string, tags
// []string}". byte and rune are written as uint8 and int32, the types they
// alias. A type of another package is written with its package's path and
// what encoding/json stores of it: "example.com/money.Amount{units int64,
// currency string}", "example.com/money.Cents(int64)"; time.Time and
// time.Duration by name only.
//
// A struct (or a type of another package) is written in full wherever it
// occurs, and by name only where it is met again inside itself (through a
// slice or a map). Types that share other types would make that
// exponential in the contract (a type with two fields of a type with two
// fields of ...), so a fingerprint that would exceed fullFingerprintMax
// bytes is written in its compact form instead: each type in full where it
// first occurs, by name after. The compact form cannot be mistaken for a
// full one (in a full one, a type written by name is always inside its own
// description), and contracts whose fingerprints fit keep the form that
// stores have recorded.
func fingerprint(t *contract.Type) string {
	w := fingerprinter{open: map[any]bool{}, limit: fullFingerprintMax}
	if w.write(t) {
		return w.b.String()
	}
	w = fingerprinter{open: map[any]bool{}, compact: true}
	w.write(t)
	return w.b.String()
}

// fullFingerprintMax is the longest fingerprint written in full: far above
// what hand-written types give, short enough not to weigh on the
// generated file.
const fullFingerprintMax = 16 << 10

type fingerprinter struct {
	b strings.Builder
	// open holds the types being written (in the compact form, every type
	// written so far): the *contract.Struct of a declared type, the Under
	// of an imported one.
	open    map[any]bool
	compact bool
	// limit, if not 0, is the length at which write gives up.
	limit int
}

// write writes the fingerprint of t; it reports false when it gave up at
// the limit.
func (w *fingerprinter) write(t *contract.Type) bool {
	if w.limit > 0 && w.b.Len() > w.limit {
		return false
	}
	switch t.Kind {
	case contract.Slice:
		w.b.WriteString("[]")
		return w.write(t.Elem)
	case contract.Map:
		w.b.WriteString("map[")
		w.write(t.Key)
		w.b.WriteString("]")
		return w.write(t.Elem)
	case contract.Named:
		w.b.WriteString(t.Struct.Name)
		return w.described(t.Struct, func() bool { return w.fields(t.Struct) })
	case contract.Imported:
		w.b.WriteString(t.Import.Path + "." + t.Name)
		if t.Under == nil {
			return true
		}
		return w.described(t.Under, func() bool {
			if t.Under.Kind == contract.ImportedStruct {
				return w.fields(t.Under.Struct)
			}
			w.b.WriteString("(")
			ok := w.write(t.Under)
			w.b.WriteString(")")
			return ok
		})
	case contract.ImportedStruct:
		w.b.WriteString("struct")
		return w.fields(t.Struct)
	}
	switch t.Name {
	case "byte":
		w.b.WriteString("uint8")
	case "rune":
		w.b.WriteString("int32")
	default:
		w.b.WriteString(t.Name)
	}
	return true
}

// described writes what a named type is, with describe, unless the type
// is open (then its name, written already, says it).
func (w *fingerprinter) described(key any, describe func() bool) bool {
	if w.open[key] {
		return true
	}
	w.open[key] = true
	ok := describe()
	if !w.compact {
		delete(w.open, key)
	}
	return ok
}

// fields writes {name type, ...}.
func (w *fingerprinter) fields(s *contract.Struct) bool {
	w.b.WriteString("{")
	for i, f := range s.Fields {
		if i > 0 {
			w.b.WriteString(", ")
		}
		w.b.WriteString(f.Name + " ")
		if !w.write(f.Type) {
			return false
		}
	}
	w.b.WriteString("}")
	return true
}

// StateFingerprint is the fingerprint the generated code gives state
// field f (engine.FieldInfo.Type), for tools that compare contracts as a
// store compares them (engine.CompareTypes).
func StateFingerprint(f *contract.StateField) string { return fieldFingerprint(f) }

// TypeFingerprint is the fingerprint of type t, in the form of
// StateFingerprint.
func TypeFingerprint(t *contract.Type) string { return fingerprint(t) }
