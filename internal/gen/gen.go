package gen

import (
	"bytes"
	"errors"
	"fmt"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"github.com/dave/jennifer/jen"

	"github.com/theus-go/theus/internal/contract"
)

// Import paths of the runtime packages that generated code uses.
const (
	enginePkg  = "github.com/theus-go/theus/runtime/engine"
	jsonencPkg = "github.com/theus-go/theus/runtime/jsonenc"
	memoryPkg  = "github.com/theus-go/theus/runtime/store/memory"
	celPkg     = "github.com/theus-go/theus/runtime/celcheck"
)

// Generate renders the Go file for m. The result maps m.Output (a slash
// path relative to the contract's directory) to the formatted source. m must
// be valid, as contract.Parse returns it, with Package set (Parse leaves it
// empty when the contract does not say it; the caller picks the default).
func Generate(m *contract.Model) (files map[string][]byte, err error) {
	// The generator panics only on a model the contract checks should
	// have refused: the user gets an error, not a stack.
	defer func() {
		if r := recover(); r != nil {
			files, err = nil, fmt.Errorf("gen: internal error on a model the contract checks accepted (please report it): %v", r)
		}
	}()
	if m.Package == "" {
		return nil, errors.New("gen: the model has no package name")
	}
	for _, s := range m.Types {
		for _, f := range s.Fields {
			if f.Name == "-" || !contract.ValidJSONName(f.Name) {
				// The contract should have refused it: encoding/json would
				// ignore the tag and disagree with the generated encoder.
				return nil, fmt.Errorf("gen: %s: field %q of type %q cannot be a JSON tag name", f.Pos, f.Name, s.Name)
			}
		}
	}
	g := newGenerator(m)
	src, err := g.render()
	if err != nil {
		return nil, fmt.Errorf("gen: %s: %w", m.Source, err)
	}
	return map[string][]byte{m.Output: src}, nil
}

// generator renders one Model. Declarations are collected section by
// section and assembled at the end.
type generator struct {
	m *contract.Model
	// source is the contract's base name, or for struct tags the package's
	// import path, as the generated comments say it.
	source string
	// paths are the state paths of theusSchema.Paths, in index order.
	paths []*schemaPath
	// byText finds a schema path by its dotted text.
	byText map[string]*schemaPath
	// encoded holds the declared types that get a JSON encoder: those
	// reachable from a topic payload.
	encoded map[*contract.Struct]bool
	// refs caches holdsRefs for declared types.
	refs map[*contract.Struct]bool
	// fails holds the declared types whose values may fail to encode
	// (mayFail).
	fails map[*contract.Struct]bool
	// st is the engine's state type: State, or theusState when the
	// contract has collections (State then holds plain maps for them, and
	// theusState engine.Collections).
	st string
	// hasColl is set when the contract declares a collection.
	hasColl bool
	// helpers holds the names of the functions declared once per type
	// (see appendElemFunc), and helperDecls their declarations, in the
	// order of first use.
	helpers     map[string]bool
	helperDecls []jen.Code
}

// schemaPath is one entry of theusSchema.Paths.
type schemaPath struct {
	text  string
	field *contract.StateField
	sub   []*contract.Field
	// konst is the name of the index constant.
	konst string
}

func newGenerator(m *contract.Model) *generator {
	g := &generator{
		m:       m,
		source:  filepath.Base(m.Source),
		byText:  map[string]*schemaPath{},
		encoded: map[*contract.Struct]bool{},
		refs:    map[*contract.Struct]bool{},
		fails:   failingStructs(m),
		helpers: map[string]bool{},
	}
	if m.DeclaredInGo {
		g.source = m.Source
	}
	g.st = "State"
	for _, f := range m.State {
		g.addPath(f, nil)
		if f.Collection {
			g.hasColl, g.st = true, "theusState"
		}
	}
	for _, p := range m.Processes {
		for _, pa := range slices.Concat(p.Inputs, p.Outputs) {
			g.addPath(pa.Field, pa.Sub)
		}
	}
	for _, t := range m.Topics {
		g.markEncoded(t.Payload)
	}
	// Durable stores encode state values with the same encoders.
	for _, f := range m.State {
		if f.Collection {
			g.markEncoded(f.Type.Elem)
		} else {
			g.markEncoded(f.Type)
		}
	}
	return g
}

// addPath adds the path of state field f and the struct fields sub below
// it to the schema, unless it is there already.
func (g *generator) addPath(f *contract.StateField, sub []*contract.Field) {
	text := string(f.Zone) + "." + f.Name
	// Sub-fields are joined with "_": Go names hold no underscore, so
	// domain.user.email and domain.user_email keep distinct constants.
	k := "theusPath" + zoneGoName(f.Zone) + f.GoName
	for _, s := range sub {
		text += "." + s.Name
		k += "_" + s.GoName
	}
	if g.byText[text] != nil {
		return
	}
	p := &schemaPath{text: text, field: f, sub: sub, konst: k}
	g.paths = append(g.paths, p)
	g.byText[text] = p
}

// markEncoded marks the declared types that an encoder of t calls.
func (g *generator) markEncoded(t *contract.Type) {
	switch t.Kind {
	case contract.Named:
		if g.encoded[t.Struct] {
			return
		}
		g.encoded[t.Struct] = true
		for _, f := range t.Struct.Fields {
			g.markEncoded(f.Type)
		}
	case contract.Slice:
		g.markEncoded(t.Elem)
	case contract.Map:
		g.markEncoded(t.Elem)
	}
}

func (g *generator) render() ([]byte, error) {
	f := jen.NewFile(g.m.Package)
	f.HeaderComment(fmt.Sprintf("Code generated by theusgen from %s. DO NOT EDIT.", g.source))
	f.ImportAlias(enginePkg, "engine")
	f.ImportAlias(jsonencPkg, "jsonenc")
	f.ImportAlias(memoryPkg, "memory")
	f.ImportAlias(celPkg, "celcheck")
	for _, imp := range g.m.Imports {
		f.ImportAlias(imp.Path, importName(imp.Alias))
	}

	// The file reads top to bottom as the contract's vocabulary: its
	// types, the state, the views, the processes. What the engine needs of
	// the contract comes after, below a comment that says so.
	types := g.typeDecls()
	state, statePrivate := g.stateDecls()
	patch := g.patchDecls()
	procs := append(g.engineDecls(), g.errorDecls()...)
	var calls, runs []jen.Code
	for _, p := range g.m.Processes {
		pub, priv, run := g.processDecls(p)
		procs = append(procs, pub...)
		calls = append(calls, priv...)
		runs = append(runs, run)
	}
	var runFuncs []jen.Code
	for i := 0; i < len(runs); i += runCases {
		runFuncs = append(runFuncs, runDecl(runFunc(i), runs[i:min(i+runCases, len(runs))]))
	}
	if len(runs) > 0 {
		runFuncs = append(runFuncs, g.inStateDecl())
	}
	calls = append(runFuncs, calls...)
	typesNote := "Types: the structs declared in " + g.source + "."
	if g.m.DeclaredInGo {
		typesNote = "" // the package declares them
	}
	private := slices.Concat(statePrivate, calls, g.cloneFuncs(), g.encoderFuncs(), g.validFuncs(), g.topicDecls())
	// Last: the per-type helpers that everything above may have asked for.
	private = append(append(private, g.helperDecls...), g.guard())
	for _, sec := range []struct {
		note  string
		decls []jen.Code
	}{
		{typesNote, types},
		{"State: the state of " + g.source + ", the Snapshots that show it and the Patches that change it.", append(state, patch...)},
		{"Views: read-only views of the declared types, valid as long as what they view (an In's, during the call only).", g.viewDecls()},
		{"Processes: what the application implements, the Engine that runs it, and for each process its arguments, inputs, outputs, receipt and effects.", procs},
		{"What the engine needs of " + g.source + ": the schema, the function per process that calls the application (runtime/engine holds a call's arguments and outputs, checks and applies them), deep copies, JSON encoders and checks, the topics' emitters.", private},
	} {
		if len(sec.decls) == 0 {
			continue
		}
		if sec.note != "" {
			f.Comment(sec.note)
			f.Line()
		}
		for _, d := range sec.decls {
			f.Add(d)
			f.Line()
		}
	}

	var buf bytes.Buffer
	if err := f.Render(&buf); err != nil {
		return nil, err
	}
	src, err := groupImports(buf.Bytes())
	if err != nil {
		return nil, err
	}
	return separateBlocks(src), nil
}

// separateBlocks puts a blank line after a function of several lines that
// a list (see list) follows with another function, which gofmt leaves
// without one.
func separateBlocks(src []byte) []byte {
	return bytes.ReplaceAll(src, []byte("\n}\nfunc "), []byte("\n}\n\nfunc "))
}

// localNames are the identifiers that generated code declares inside
// functions (receivers, parameters, variables). An import alias spelled
// the same would be shadowed where a type of that package is named inside
// such a function (func(p *[]p.Addr) in theusCloneX(p *X)).
var localNames = map[string]bool{
	"a": true, "args": true, "b": true, "c": true, "clone": true, "codec": true, "core": true, "ctx": true, "data": true,
	"gen": true, "result": true, "st": true, "tx": true,
	"e": true, "eff": true, "elem": true, "f": true, "entry": true, "err": true, "es": true,
	"expected": true, "from": true, "i": true, "impl": true, "in": true, "initial": true,
	"k": true, "kept": true, "key": true, "m": true, "o": true, "opts": true, "out": true,
	"p": true, "path": true, "paths": true, "plain": true, "r": true, "s": true, "t": true, "to": true,
	"v": true, "w": true, "x": true, "y": true,
}

// importName is the name under which the generated file imports the
// package of a contract alias: the alias itself unless generated code uses
// it as a local name. The name is private to the generated file, so
// renaming it changes nothing for the user.
func importName(alias string) string {
	if localNames[alias] {
		return "theus" + strings.ToUpper(alias[:1]) + alias[1:]
	}
	return alias
}

// groupImports splits the import block into the standard library and the
// other packages, with a blank line between, the layout gofmt users write
// by hand (jennifer writes one block sorted by path).
func groupImports(src []byte) ([]byte, error) {
	const open, end = "\nimport (\n", "\n)\n"
	i := bytes.Index(src, []byte(open))
	if i < 0 {
		return src, nil
	}
	body := src[i+len(open):]
	j := bytes.Index(body, []byte(end))
	if j < 0 {
		return nil, errors.New("unterminated import block")
	}
	// jennifer's output is gofmt'd and its imports sorted by path, so the
	// two groups, each in that order, are too: formatting the file again
	// would only cost time (most of what generating a large contract
	// takes).
	var std, other []string
	for _, line := range strings.Split(string(body[:j]), "\n") {
		path := line[strings.IndexByte(line, '"')+1:]
		if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
			other = append(other, line)
		} else {
			std = append(std, line)
		}
	}
	groups := strings.Join(std, "\n")
	if len(std) > 0 && len(other) > 0 {
		groups += "\n\n"
	}
	groups += strings.Join(other, "\n")
	var out bytes.Buffer
	out.Write(src[:i+len(open)])
	out.WriteString(groups)
	out.Write(body[j:])
	return out.Bytes(), nil
}

// doc returns // comment lines for a declaration, one per line of the
// texts, followed by a line break. Lines are written raw, so that a
// contract doc never turns into a /* */ block.
func doc(texts ...string) *jen.Statement {
	s := jen.Null()
	for _, t := range texts {
		for _, line := range strings.Split(t, "\n") {
			line = strings.TrimRightFunc(line, unicode.IsSpace)
			if line == "" {
				s.Comment("//").Line()
			} else {
				s.Comment("// " + line).Line()
			}
		}
	}
	return s
}

// field is one key of a keyed composite literal.
type field struct {
	key string
	val jen.Code
}

// sortedFields sorts keys the way jennifer's Dict does, so that every keyed
// literal in the file follows one rule.
func sortedFields(fs []field) []jen.Code {
	fs = slices.Clone(fs)
	slices.SortFunc(fs, func(a, b field) int { return strings.Compare(a.key, b.key) })
	out := make([]jen.Code, len(fs))
	for i, f := range fs {
		out[i] = jen.Id(f.key).Op(":").Add(f.val)
	}
	return out
}

// keyed is a one-line keyed literal body: {a: x, b: y}.
func keyed(fs ...field) *jen.Statement {
	return jen.Values(sortedFields(fs)...)
}

// keyedLines is a keyed literal body with one key per line.
func keyedLines(fs ...field) *jen.Statement {
	return jen.Custom(multiLine, sortedFields(fs)...)
}

// structOf is a struct type, written on one line when it has one field
// (struct{ Email string }), as gofmt keeps it.
func structOf(fields ...jen.Code) *jen.Statement {
	if len(fields) != 1 {
		return jen.Struct(fields...)
	}
	return jen.Id("struct").Custom(jen.Options{Open: "{", Close: "}"}, fields...)
}

// multiLine renders a composite literal body with one element per line.
var multiLine = jen.Options{Open: "{", Close: "}", Separator: ",", Multi: true}

func zoneGoName(z contract.Zone) string {
	if z == contract.ZoneGlobal {
		return "Global"
	}
	return "Domain"
}

// reservedFields are the unexported fields that generated structs declare
// next to fields named after contract names (a call's impl, args and
// result, Patch.writes, an In's tx).
var reservedFields = map[string]bool{"tx": true, "run": true, "result": true, "writes": true, "impl": true, "args": true}

// privateName returns the unexported field name for an exported Go name:
// "MaxEmailLen" -> "maxEmailLen", "URL" -> "url", "HTTPStatus" ->
// "httpStatus". A result that is a Go keyword or a field the generated code
// declares itself is prefixed instead ("Type" -> "theusType").
func privateName(goName string) string {
	n := lowerInitial(goName)
	if token.IsKeyword(n) || reservedFields[n] {
		return "theus" + goName
	}
	return n
}

// lowerInitial lower-cases the leading run of capitals, keeping the last
// one when it starts the next word ("HTTPStatus" -> "httpStatus").
func lowerInitial(s string) string {
	rs := []rune(s)
	n := 0
	for n < len(rs) && unicode.IsUpper(rs[n]) {
		n++
	}
	if n > 1 && n < len(rs) && unicode.IsLower(rs[n]) {
		n--
	}
	for i := range n {
		rs[i] = unicode.ToLower(rs[i])
	}
	return string(rs)
}

// list writes decls one after the other without blank lines between them,
// as a type's one-line methods are listed (gofmt still separates a
// declaration of several lines from the next).
func list(decls []jen.Code) jen.Code {
	s := jen.Null()
	for i, d := range decls {
		if i > 0 {
			s.Line()
		}
		s.Add(d)
	}
	return s
}
