package gen

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/theus-go/theus/internal/contract"
)

// typeDecls declares the structs of `types:`; with struct tags the
// package declares them itself.
func (g *generator) typeDecls() []jen.Code {
	var out []jen.Code
	for _, s := range g.m.Types {
		if g.m.DeclaredInGo {
			break
		}
		fields := make([]jen.Code, len(s.Fields))
		for i, f := range s.Fields {
			fields[i] = jen.Id(f.GoName).Add(goType(f.Type)).Tag(map[string]string{"json": f.Name})
		}
		out = append(out, doc(s.GoName+" is declared in "+g.source+".").
			Type().Id(s.GoName).Struct(fields...))
		if d := defaultsDecl(s); d != nil {
			out = append(out, d)
		}
	}
	return out
}

// defaultsDecl declares UnmarshalJSON on a struct some of whose fields
// have a `default:`, or returns nil: decoding starts from the defaults, so
// a field the data lacks (a value stored before the field was added, a
// payload of an older producer) gets its default, and one the data has,
// even as a zero value, keeps it. encoding/json leaves the fields it does
// not find as they are, at any depth, which a value filled before decoding
// could not do for the entries of slices and maps.
func defaultsDecl(s *contract.Struct) jen.Code {
	var names, lits []jen.Code
	var listed []string
	for _, f := range s.Fields {
		if f.Default == nil {
			continue
		}
		lit := defaultLit(f.Default.Value)
		names = append(names, jen.Id("p."+f.GoName))
		lits = append(lits, jen.Op(lit))
		listed = append(listed, f.Name+": "+lit)
	}
	if names == nil {
		return nil
	}
	return doc("UnmarshalJSON decodes "+article(s.GoName)+" as encoding/json does, except that a field the data lacks gets its default from the contract ("+strings.Join(listed, ", ")+"), not its zero value.").
		Func().Params(jen.Id("x").Op("*").Id(s.GoName)).Id("UnmarshalJSON").Params(jen.Id("data").Index().Byte()).Error().Block(
		jen.If(jen.String().Call(jen.Id("data")).Op("==").Lit("null")).Block(jen.Return(jen.Nil())),
		jen.Type().Id("plain").Id(s.GoName),
		jen.Id("p").Op(":=").Id("plain").Call(jen.Op("*").Id("x")),
		jen.List(names...).Op("=").List(lits...),
		jen.Id("err").Op(":=").Qual("encoding/json", "Unmarshal").Call(jen.Id("data"), jen.Op("&").Id("p")),
		jen.Op("*").Id("x").Op("=").Id(s.GoName).Call(jen.Id("p")),
		jen.Return(jen.Id("err")),
	)
}

// defaultLit is the Go literal of a checked default (contract.Default).
func defaultLit(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	panic(fmt.Sprintf("theusgen: default of type %T", v))
}

// viewDecls declares the read-only view of every declared type.
func (g *generator) viewDecls() []jen.Code {
	var out []jen.Code
	for _, s := range g.m.Types {
		view := s.GoName + "View"
		decls := []jen.Code{doc(view + " is a read-only view of " + article(s.GoName) + " in a snapshot: a method per field, and Clone.").
			Type().Id(view).Add(structOf(jen.Id("p").Op("*").Id(s.GoName)))}
		for _, f := range s.Fields {
			decls = append(decls, jen.Func().Params(jen.Id("v").Id(view)).Id(f.GoName).Params().Add(viewType(f.Type)).
				Add(oneLine(jen.Return(g.viewOf(f.Type, lv{expr: "v.p." + f.GoName})))))
		}
		clone := g.cloneValue(&contract.Type{Kind: contract.Named, Name: s.Name, Struct: s}, deref("v.p"))
		out = append(out, list(decls), doc("Clone returns a deep copy of the "+s.GoName+" that shares nothing with the snapshot.").
			Func().Params(jen.Id("v").Id(view)).Id("Clone").Params().Id(s.GoName).
			Add(oneLine(jen.Return(clone))))
	}
	return out
}

// cloneFuncs declares the deep-copy function of every declared type that
// holds references (any other is copied by assignment).
func (g *generator) cloneFuncs() []jen.Code {
	var out []jen.Code
	for _, s := range g.m.Types {
		if !g.structRefs(s) {
			continue
		}
		var body []jen.Code
		for _, f := range s.Fields {
			if g.holdsRefs(f.Type) {
				body = append(body, jen.Id("c."+f.GoName).Op("=").Add(g.cloneValue(f.Type, lv{expr: "p." + f.GoName})))
			}
		}
		out = append(out, cloneFuncDecl(cloneFuncName(s), jen.Id(s.GoName), body))
	}
	return out
}

// cloneFuncDecl declares func name(p *T) T that copies *p and then runs
// body, which replaces what c shares with *p.
func cloneFuncDecl(name string, typ *jen.Statement, body []jen.Code) jen.Code {
	sig := jen.Func().Id(name).Params(jen.Id("p").Op("*").Add(typ)).Add(typ.Clone())
	if len(body) == 0 {
		return sig.Block(jen.Return(jen.Op("*").Id("p")))
	}
	stmts := append([]jen.Code{jen.Id("c").Op(":=").Op("*").Id("p")}, body...)
	return sig.Block(append(stmts, jen.Return(jen.Id("c")))...)
}

// encoderFuncs declares the JSON encoder of every type reachable from a
// topic payload.
func (g *generator) encoderFuncs() []jen.Code {
	var out []jen.Code
	for _, s := range g.m.Types {
		if !g.encoded[s] {
			continue
		}
		var body []jen.Code
		fallible := false
		for i, f := range s.Fields {
			key, _ := json.Marshal(f.Name) // the escaping encoding/json gives a key
			sep := ","
			if i == 0 {
				sep = "{"
			}
			body = append(body, appendLit(jen.Lit(sep+string(key)+":").Op("...")))
			call, canFail := g.appendCall(f.Type, lv{expr: "p." + f.GoName})
			fallible = fallible || canFail
			body = append(body, appendStmt(call, canFail))
		}
		if len(s.Fields) == 0 {
			body = append(body, appendLit(jen.Lit("{}").Op("...")))
		} else {
			body = append(body, appendLit(jen.LitRune('}')))
		}
		if fallible {
			body = append([]jen.Code{jen.Var().Id("err").Error()}, body...)
		}
		body = append(body, jen.Return(jen.Id("b"), jen.Nil()))
		out = append(out, jen.Func().Id(appendFuncName(s)).
			Params(jen.Id("b").Index().Byte(), jen.Id("p").Op("*").Id(s.GoName)).
			Params(jen.Index().Byte(), jen.Error()).
			Block(body...))
	}
	return out
}

// appendLit is b = append(b, x).
func appendLit(x jen.Code) jen.Code {
	return jen.Id("b").Op("=").Append(jen.Id("b"), x)
}

// appendStmt assigns the result of an append call to b, returning its error
// if it can fail.
func appendStmt(call jen.Code, canFail bool) jen.Code {
	if !canFail {
		return jen.Id("b").Op("=").Add(call)
	}
	return jen.If(
		jen.List(jen.Id("b"), jen.Id("err")).Op("=").Add(call),
		jen.Id("err").Op("!=").Nil(),
	).Block(jen.Return(jen.Id("b"), jen.Id("err")))
}

func cloneFuncName(s *contract.Struct) string  { return "theusClone" + s.GoName }
func appendFuncName(s *contract.Struct) string { return "theusAppend" + s.GoName }

// lv is an addressable expression: a selector such as "v.p.Tags", or with
// ptr set, *expr for a pointer variable expr.
type lv struct {
	expr string
	ptr  bool
}

// deref is the value a pointer variable points to.
func deref(name string) lv { return lv{expr: name, ptr: true} }

func (x lv) val() *jen.Statement {
	if x.ptr {
		return jen.Op("*").Id(x.expr)
	}
	return jen.Id(x.expr)
}

func (x lv) addr() *jen.Statement {
	if x.ptr {
		return jen.Id(x.expr)
	}
	return jen.Op("&").Id(x.expr)
}

// goType is the Go type of t.
func goType(t *contract.Type) *jen.Statement {
	switch t.Kind {
	case contract.Named:
		return jen.Id(t.Struct.GoName)
	case contract.Imported:
		return jen.Qual(t.Import.Path, t.Name)
	case contract.Slice:
		return jen.Index().Add(goType(t.Elem))
	case contract.Map:
		return jen.Map(goType(t.Key)).Add(goType(t.Elem))
	}
	return jen.Id(t.Name)
}

// holdsRefs reports whether a value of type t shares memory when copied by
// assignment: slices, maps and structs that hold them. Imported types are
// opaque values. A struct contains itself only through a slice or a map
// (the contract refuses recursion by value), so this terminates; the
// answer for each struct is kept, since structs may share others to any
// depth.
func (g *generator) holdsRefs(t *contract.Type) bool {
	switch t.Kind {
	case contract.Slice, contract.Map:
		return true
	case contract.Named:
		return g.structRefs(t.Struct)
	}
	return false
}

// structRefs reports whether a value of the declared type s holds
// references (holdsRefs).
func (g *generator) structRefs(s *contract.Struct) bool {
	refs, ok := g.refs[s]
	if !ok {
		refs = slices.ContainsFunc(s.Fields, func(f *contract.Field) bool { return g.holdsRefs(f.Type) })
		g.refs[s] = refs
	}
	return refs
}

// isValue reports whether a getter returns a value of type t as it is:
// builtins and imported types. Declared structs are shown through their
// views even when they hold no references, so that adding a slice field to
// a struct does not change what the getters of other types return.
func isValue(t *contract.Type) bool {
	return t.Kind == contract.Builtin || t.Kind == contract.Imported
}

// viewType is the type a getter returns for a value of type t.
func viewType(t *contract.Type) *jen.Statement {
	switch t.Kind {
	case contract.Named:
		return jen.Id(t.Struct.GoName + "View")
	case contract.Slice:
		if isValue(t.Elem) {
			return jen.Qual(enginePkg, "SliceView").Types(goType(t.Elem))
		}
		return jen.Qual(enginePkg, "SliceViewOf").Types(goType(t.Elem), viewType(t.Elem))
	case contract.Map:
		if isValue(t.Elem) {
			return jen.Qual(enginePkg, "MapView").Types(goType(t.Key), goType(t.Elem))
		}
		return jen.Qual(enginePkg, "MapView").Types(goType(t.Key), viewType(t.Elem))
	}
	return goType(t)
}

// viewOf is the read-only view of x, of type t.
func (g *generator) viewOf(t *contract.Type, x lv) *jen.Statement {
	switch t.Kind {
	case contract.Named:
		return jen.Id(t.Struct.GoName + "View").Add(keyed(field{"p", x.addr()}))
	case contract.Slice:
		if isValue(t.Elem) {
			return jen.Qual(enginePkg, "NewSliceView").Call(x.val())
		}
		cloneElem := jen.Func().Params(jen.Id("v").Add(goType(t.Elem))).Add(goType(t.Elem)).
			Block(jen.Return(g.cloneValue(t.Elem, lv{expr: "v"})))
		return jen.Qual(enginePkg, "NewSliceViewOf").Call(x.val(), g.viewFunc(t.Elem), cloneElem)
	case contract.Map:
		if isValue(t.Elem) {
			return jen.Qual(enginePkg, "NewMapView").Call(x.val())
		}
		return jen.Qual(enginePkg, "NewMapViewOf").Call(x.val(), g.viewFunc(t.Elem))
	}
	return x.val()
}

// viewFunc is a func(*T) V that views an element of type t.
func (g *generator) viewFunc(t *contract.Type) *jen.Statement {
	return jen.Func().Params(jen.Id("p").Op("*").Add(goType(t))).Add(viewType(t)).
		Block(jen.Return(g.viewOf(t, deref("p"))))
}

// cloneValue is a deep copy of x, of type t: x itself when t holds no
// references, else a call of t's clone function.
func (g *generator) cloneValue(t *contract.Type, x lv) *jen.Statement {
	if !g.holdsRefs(t) {
		return x.val()
	}
	switch t.Kind {
	case contract.Named:
		return jen.Id(cloneFuncName(t.Struct)).Call(x.addr())
	case contract.Slice:
		if !g.holdsRefs(t.Elem) {
			return jen.Qual("slices", "Clone").Call(x.val())
		}
		return jen.Qual(enginePkg, "CloneSlice").Call(x.val(), g.cloneElemFunc(t.Elem))
	case contract.Map:
		if !g.holdsRefs(t.Elem) {
			return jen.Qual("maps", "Clone").Call(x.val())
		}
		return jen.Qual(enginePkg, "CloneMap").Call(x.val(), g.cloneElemFunc(t.Elem))
	}
	return x.val()
}

// cloneElemFunc is a func(*T) T that deep-copies an element of type t.
func (g *generator) cloneElemFunc(t *contract.Type) *jen.Statement {
	if t.Kind == contract.Named {
		return jen.Id(cloneFuncName(t.Struct))
	}
	return jen.Func().Params(jen.Id("p").Op("*").Add(goType(t))).Add(goType(t)).
		Block(jen.Return(g.cloneValue(t, deref("p"))))
}

// isBytes reports whether t is []byte, which encoding/json writes as a
// base64 string.
func isBytes(t *contract.Type) bool {
	return t.Kind == contract.Slice && t.Elem.Kind == contract.Builtin &&
		(t.Elem.Name == "byte" || t.Elem.Name == "uint8")
}

// intKind returns "Int" or "Uint" for the integer builtins, "" otherwise,
// and whether a value must be converted to int64/uint64 first.
func intKind(t *contract.Type) (kind string, convert bool) {
	if t.Kind != contract.Builtin {
		return "", false
	}
	switch t.Name {
	case "int64":
		return "Int", false
	case "int", "int8", "int16", "int32", "rune":
		return "Int", true
	case "uint64":
		return "Uint", false
	case "uint", "uint8", "uint16", "uint32", "byte":
		return "Uint", true
	}
	return "", false
}

// asWide converts an integer x of type t to int64 or uint64 when needed.
func asWide(t *contract.Type, x jen.Code) *jen.Statement {
	kind, convert := intKind(t)
	if !convert {
		return jen.Add(x)
	}
	if kind == "Int" {
		return jen.Int64().Call(x)
	}
	return jen.Uint64().Call(x)
}

// formatInt is the decimal text of the integer x of type t, as
// encoding/json writes a map key and as the engine wants a message key.
func formatInt(t *contract.Type, x jen.Code) *jen.Statement {
	kind, _ := intKind(t)
	return jen.Qual("strconv", "Format"+kind).Call(asWide(t, x), jen.Lit(10))
}

// appendCall is a call that appends x, of type t, to b as encoding/json
// would. It evaluates to []byte, or to ([]byte, error) when canFail.
func (g *generator) appendCall(t *contract.Type, x lv) (call *jen.Statement, canFail bool) {
	b := jen.Id("b")
	switch t.Kind {
	case contract.Named:
		return jen.Id(appendFuncName(t.Struct)).Call(b, x.addr()), true
	case contract.Imported:
		return jen.Qual(jsonencPkg, "AppendValue").Call(b, x.val()), true
	case contract.Slice:
		if isBytes(t) {
			return jen.Qual(jsonencPkg, "AppendBytes").Call(b, x.val()), false
		}
		return jen.Qual(jsonencPkg, "AppendSlice").Call(b, x.val(), g.appendElemFunc(t.Elem)), true
	case contract.Map:
		return jen.Qual(jsonencPkg, "AppendMap").Call(b, x.val(), keyTextFunc(t.Key), g.appendElemFunc(t.Elem)), true
	}
	switch t.Name {
	case "string":
		return jen.Qual(jsonencPkg, "AppendString").Call(b, x.val()), false
	case "bool":
		return jen.Qual(jsonencPkg, "AppendBool").Call(b, x.val()), false
	case "float64":
		return jen.Qual(jsonencPkg, "AppendFloat").Call(b, x.val(), jen.Lit(64)), true
	case "float32":
		return jen.Qual(jsonencPkg, "AppendFloat").Call(b, jen.Float64().Call(x.val()), jen.Lit(32)), true
	}
	kind, _ := intKind(t)
	return jen.Qual(jsonencPkg, "Append"+kind).Call(b, asWide(t, x.val())), false
}

// appendElemFunc is a func([]byte, *T) ([]byte, error) that appends a
// value of type t: theusAppendX for a declared type, jsonenc's for a
// builtin, and for any other type a function declared once for that type
// (theusAppend_SliceOfString), however many fields and elements use it.
func (g *generator) appendElemFunc(t *contract.Type) *jen.Statement {
	switch t.Kind {
	case contract.Named:
		return jen.Id(appendFuncName(t.Struct))
	case contract.Builtin:
		// runtime/jsonenc declares them (ElemInt, ElemString, …).
		if name, ok := builtinAliases[t.Name]; ok {
			return jen.Qual(jsonencPkg, "Elem"+upperFirst(name))
		}
	}
	name := "theusAppend_" + typeName(t)
	if !g.helpers[name] {
		g.helpers[name] = true
		call, canFail := g.appendCall(t, deref("e"))
		ret := jen.Return(call)
		if !canFail {
			ret = jen.Return(call, jen.Nil())
		}
		g.helperDecls = append(g.helperDecls, jen.Func().Id(name).Params(jen.Id("b").Index().Byte(), jen.Id("e").Op("*").Add(goType(t))).
			Params(jen.Index().Byte(), jen.Error()).Block(ret))
	}
	return jen.Id(name)
}

// builtinAliases names the builtin types for jsonenc's element encoders:
// each by itself, and rune and byte by the types they alias.
var builtinAliases = map[string]string{
	"string": "string", "bool": "bool", "float32": "float32", "float64": "float64",
	"int": "int", "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64", "rune": "int32",
	"uint": "uint", "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64", "byte": "uint8",
}

// typeName spells a type as an identifier, for the functions declared once
// per type: "Int", "SliceOfString", "MapOfStringToUser", "TimeTime". It
// holds no "_", so that it cannot meet a contract name (Go names of the
// contract hold none either) after the prefix "theusAppend_".
func typeName(t *contract.Type) string {
	switch t.Kind {
	case contract.Named:
		return t.Struct.GoName
	case contract.Imported:
		return upperFirst(importName(t.Import.Alias)) + upperFirst(t.Name)
	case contract.Slice:
		return "SliceOf" + typeName(t.Elem)
	case contract.Map:
		return "MapOf" + typeName(t.Key) + "To" + typeName(t.Elem)
	}
	return upperFirst(t.Name)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// keyTextFunc is a func(K) string giving the text of a map key, by which
// encoding/json sorts and writes keys.
func keyTextFunc(k *contract.Type) *jen.Statement {
	text := jen.Id("k")
	if kind, _ := intKind(k); kind != "" {
		text = formatInt(k, jen.Id("k"))
	}
	return jen.Func().Params(jen.Id("k").Add(goType(k))).String().Block(jen.Return(text))
}

// article prefixes a type name with "a" or "an", by its first letter (a
// User, an Item); good enough for comments.
func article(name string) string {
	if name != "" && strings.ContainsRune("AEIO", rune(name[0])) {
		return "an " + name
	}
	return "a " + name
}
