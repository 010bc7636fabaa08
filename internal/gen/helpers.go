package gen

import "github.com/dave/jennifer/jen"

// Generic helpers that generated code calls for slices and maps whose
// elements need more than an assignment. They are declared only in files
// that use them. Their names cannot be those of a declared type's functions
// (theusCloneX, theusAppendX): those continue "theusClone"/"theusAppend"
// with a capital.
const (
	helperSliceClone  = "theusSliceClone"
	helperMapClone    = "theusMapClone"
	helperSliceAppend = "theusSliceAppend"
	helperMapAppend   = "theusMapAppend"
)

// cloneHelpers declares the deep-copy helpers the file uses.
func (g *generator) cloneHelpers() []jen.Code {
	var out []jen.Code
	if g.helpers[helperSliceClone] {
		out = append(out, doc(helperSliceClone+" deep-copies s, each element with clone; nil stays nil.").
			Func().Id(helperSliceClone).Types(jen.Id("T").Any()).
			Params(jen.Id("s").Index().Id("T"), jen.Id("clone").Func().Params(jen.Op("*").Id("T")).Id("T")).
			Index().Id("T").
			Block(
				jen.If(jen.Id("s").Op("==").Nil()).Block(jen.Return(jen.Nil())),
				jen.Id("c").Op(":=").Make(jen.Index().Id("T"), jen.Len(jen.Id("s"))),
				jen.For(jen.Id("i").Op(":=").Range().Id("s")).Block(
					jen.Id("c").Index(jen.Id("i")).Op("=").Id("clone").Call(jen.Op("&").Id("s").Index(jen.Id("i"))),
				),
				jen.Return(jen.Id("c")),
			))
	}
	if g.helpers[helperMapClone] {
		mapKV := jen.Map(jen.Id("K")).Id("V")
		out = append(out, doc(helperMapClone+" deep-copies m, each value with clone; nil stays nil.").
			Func().Id(helperMapClone).Types(jen.Id("K").Comparable(), jen.Id("V").Any()).
			Params(jen.Id("m").Add(mapKV.Clone()), jen.Id("clone").Func().Params(jen.Op("*").Id("V")).Id("V")).
			Add(mapKV.Clone()).
			Block(
				jen.If(jen.Id("m").Op("==").Nil()).Block(jen.Return(jen.Nil())),
				jen.Id("c").Op(":=").Make(mapKV.Clone(), jen.Len(jen.Id("m"))),
				jen.For(jen.List(jen.Id("k"), jen.Id("v")).Op(":=").Range().Id("m")).Block(
					jen.Id("c").Index(jen.Id("k")).Op("=").Id("clone").Call(jen.Op("&").Id("v")),
				),
				jen.Return(jen.Id("c")),
			))
	}
	return out
}

// encodeHelpers declares the JSON helpers the file uses.
func (g *generator) encodeHelpers() []jen.Code {
	var out []jen.Code
	bytesErr := func() *jen.Statement { return jen.Params(jen.Index().Byte(), jen.Error()) }
	elemFunc := func(t string) *jen.Statement {
		return jen.Func().Params(jen.Index().Byte(), jen.Op("*").Id(t)).Add(bytesErr())
	}
	ifNull := func(v string) jen.Code {
		return jen.If(jen.Id(v).Op("==").Nil()).Block(
			jen.Return(jen.Append(jen.Id("b"), jen.Lit("null").Op("...")), jen.Nil()))
	}
	comma := jen.If(jen.Id("i").Op(">").Lit(0)).Block(appendLit(jen.LitRune(',')))
	elem := func(ptr jen.Code) []jen.Code {
		return []jen.Code{
			jen.Var().Id("err").Error(),
			appendStmt(jen.Id("elem").Call(jen.Id("b"), ptr), true),
		}
	}
	if g.helpers[helperSliceAppend] {
		loop := append([]jen.Code{comma.Clone()}, elem(jen.Op("&").Id("s").Index(jen.Id("i")))...)
		out = append(out, doc(helperSliceAppend+" appends s as a JSON array, each element with elem; nil is null.").
			Func().Id(helperSliceAppend).Types(jen.Id("T").Any()).
			Params(jen.Id("b").Index().Byte(), jen.Id("s").Index().Id("T"), jen.Id("elem").Add(elemFunc("T"))).
			Add(bytesErr()).
			Block(
				ifNull("s"),
				appendLit(jen.LitRune('[')),
				jen.For(jen.Id("i").Op(":=").Range().Id("s")).Block(loop...),
				jen.Return(jen.Append(jen.Id("b"), jen.LitRune(']')), jen.Nil()),
			))
	}
	if g.helpers[helperMapAppend] {
		ent := jen.Id("es").Index(jen.Id("i"))
		loop := append([]jen.Code{
			comma.Clone(),
			jen.Id("b").Op("=").Qual(jsonencPkg, "AppendString").Call(jen.Id("b"), ent.Clone().Dot("k")),
			appendLit(jen.LitRune(':')),
		}, elem(jen.Op("&").Add(ent.Clone()).Dot("v"))...)
		out = append(out, doc(
			helperMapAppend+" appends m as a JSON object, each value with elem; nil is null.",
			"Keys are written and sorted as their text (key), as encoding/json does.").
			Func().Id(helperMapAppend).Types(jen.Id("K").Comparable(), jen.Id("V").Any()).
			Params(
				jen.Id("b").Index().Byte(),
				jen.Id("m").Map(jen.Id("K")).Id("V"),
				jen.Id("key").Func().Params(jen.Id("K")).String(),
				jen.Id("elem").Add(elemFunc("V")),
			).
			Add(bytesErr()).
			Block(
				ifNull("m"),
				jen.Type().Id("entry").Struct(jen.Id("k").String(), jen.Id("v").Id("V")),
				jen.Id("es").Op(":=").Make(jen.Index().Id("entry"), jen.Lit(0), jen.Len(jen.Id("m"))),
				jen.For(jen.List(jen.Id("k"), jen.Id("v")).Op(":=").Range().Id("m")).Block(
					jen.Id("es").Op("=").Append(jen.Id("es"), jen.Id("entry").Add(keyed(
						field{"k", jen.Id("key").Call(jen.Id("k"))},
						field{"v", jen.Id("v")},
					))),
				),
				jen.Qual("slices", "SortFunc").Call(jen.Id("es"),
					jen.Func().Params(jen.List(jen.Id("x"), jen.Id("y")).Id("entry")).Int().Block(
						jen.Return(jen.Qual("strings", "Compare").Call(jen.Id("x.k"), jen.Id("y.k"))),
					)),
				appendLit(jen.LitRune('{')),
				jen.For(jen.Id("i").Op(":=").Range().Id("es")).Block(loop...),
				jen.Return(jen.Append(jen.Id("b"), jen.LitRune('}')), jen.Nil()),
			))
	}
	return out
}
