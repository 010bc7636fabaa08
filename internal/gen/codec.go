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
			Block(jen.Return(jen.Op("&").Id(stateExpr("s", f, nil))))
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
// []string}". A struct met again inside itself (through a slice or a map)
// is written by name only. byte and rune are written as uint8 and int32,
// the types they alias.
func fingerprint(t *contract.Type) string {
	var b strings.Builder
	writeFingerprint(&b, t, map[*contract.Struct]bool{})
	return b.String()
}

func writeFingerprint(b *strings.Builder, t *contract.Type, open map[*contract.Struct]bool) {
	switch t.Kind {
	case contract.Slice:
		b.WriteString("[]")
		writeFingerprint(b, t.Elem, open)
	case contract.Map:
		b.WriteString("map[")
		writeFingerprint(b, t.Key, open)
		b.WriteString("]")
		writeFingerprint(b, t.Elem, open)
	case contract.Named:
		b.WriteString(t.Struct.Name)
		if open[t.Struct] {
			return
		}
		open[t.Struct] = true
		b.WriteString("{")
		for i, f := range t.Struct.Fields {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(f.Name + " ")
			writeFingerprint(b, f.Type, open)
		}
		b.WriteString("}")
		delete(open, t.Struct)
	case contract.Imported:
		b.WriteString(t.Import.Path + "." + t.Name)
	default:
		switch t.Name {
		case "byte":
			b.WriteString("uint8")
		case "rune":
			b.WriteString("int32")
		default:
			b.WriteString(t.Name)
		}
	}
}
