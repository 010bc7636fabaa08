package contract

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"reflect"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/tools/go/packages"
	"gopkg.in/yaml.v3"
)

// tagLoader builds a Model from a type-checked Go package. It fills a
// parser as Parse would, and hands the parts that the two sources share
// (paths, topic and error names, rules, Go-name collisions) to the
// parser's own checks, with YAML nodes that stand for the Go source text:
// one set of rules, one set of messages.
type tagLoader struct {
	p        *parser
	pkg      *packages.Package
	dir, abs string
	// structs holds the Struct of every struct type of the package read
	// so far.
	structs map[*types.TypeName]*Struct
	// goTypes holds the Go type of every state field and struct field, to
	// check a process field against the path it names.
	goTypes map[any]types.Type
	imports map[string]*Import // by import path
	// imported reads the types of other packages that the package's
	// types name.
	imported *importedReader
	// tagLits holds the tag literal of every struct field of the package,
	// by the position of the field's name.
	tagLits map[token.Pos]*ast.BasicLit
	// jsonOpts holds the json tag options that change what encoding/json
	// writes (omitempty, omitzero, string), by field; the generated
	// encoder does not follow them, so a payload type may not use them.
	jsonOpts map[*Field]string
	specs    []typeSpec
}

// typeSpec is a type declaration of the package and its directives.
type typeSpec struct {
	obj  *types.TypeName
	doc  *ast.CommentGroup
	dirs []directive
}

func newTagLoader(pkg *packages.Package, dir, abs string, sc *scanned) *tagLoader {
	m := &Model{Source: pkg.PkgPath, Package: pkg.Name, Output: sc.output, OutputPos: sc.outputPos, DeclaredInGo: true}
	return &tagLoader{
		p:        newParser("", m),
		pkg:      pkg,
		dir:      dir,
		abs:      abs,
		structs:  map[*types.TypeName]*Struct{},
		goTypes:  map[any]types.Type{},
		imports:  map[string]*Import{},
		imported: newImportedReader(),
		tagLits:  map[token.Pos]*ast.BasicLit{},
		jsonOpts: map[*Field]string{},
	}
}

func (t *tagLoader) build() (*Model, error) {
	p, m := t.p, t.p.m
	t.collect()
	t.loadState()
	for _, ts := range t.specs {
		for _, d := range ts.dirs {
			if d.name == "topic" && t.isStruct(ts, d) {
				t.loadTopic(ts, d)
			}
		}
	}
	for _, ts := range t.specs {
		if i := slices.IndexFunc(ts.dirs, func(d directive) bool { return d.name == "process" }); i >= 0 && t.isStruct(ts, ts.dirs[i]) {
			t.loadProcess(ts, ts.dirs[i])
		}
	}
	t.checkPayloadJSON()
	p.reportUnknowns()
	slices.SortStableFunc(m.Types, func(a, b *Struct) int { return comparePos(a.Pos, b.Pos) })
	slices.SortFunc(m.Imports, func(a, b *Import) int { return strings.Compare(a.Path, b.Path) })
	p.scope = t.scopeDecls()
	p.checkExprs()
	p.checkNames()
	if len(p.errs) > 0 {
		return nil, p.errs.sorted()
	}
	return m, nil
}

func comparePos(a, b Pos) int {
	switch {
	case before(a, b):
		return -1
	case before(b, a):
		return 1
	}
	return 0
}

// pos is the position of p, in a file name joined to the directory as the
// user gave it.
func (t *tagLoader) pos(p token.Pos) Pos {
	return t.position(t.pkg.Fset.Position(p))
}

func (t *tagLoader) position(p token.Position) Pos {
	return Pos{File: displayName(p.Filename, t.dir, t.abs), Line: p.Line, Col: p.Column}
}

func (t *tagLoader) errorf(pos Pos, format string, args ...any) {
	t.p.errs.add(pos, format, args...)
}

// node is a YAML scalar standing for text written at pos, for the checks
// that the parser shares with Parse. It points the parser at pos's file.
func (t *tagLoader) node(s span) *yaml.Node {
	t.p.file = s.pos.File
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s.text, Line: s.pos.Line, Column: s.pos.Col}
}

// list is a YAML sequence of the comma-separated names in s.
func (t *tagLoader) list(s span) *yaml.Node {
	seq := t.node(s)
	seq.Kind, seq.Tag, seq.Value = yaml.SequenceNode, "!!seq", ""
	for _, item := range s.split(',') {
		seq.Content = append(seq.Content, t.node(item))
	}
	return seq
}

// collect finds the type declarations with their directives and the tag
// of every struct field, and reports directives that are unknown or not
// where they belong.
func (t *tagLoader) collect() {
	for _, i := range sortedFiles(t.pkg) {
		f := t.pkg.Syntax[i]
		for _, field := range structFields(f) {
			for _, name := range field.Names {
				if field.Tag != nil {
					t.tagLits[name.Pos()] = field.Tag
				}
			}
		}
		attached := map[*ast.Comment]bool{}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && !gd.Lparen.IsValid() {
					doc = gd.Doc
				}
				obj, _ := t.pkg.TypesInfo.Defs[ts.Name].(*types.TypeName)
				if obj == nil {
					continue
				}
				s := typeSpec{obj: obj, doc: doc}
				if doc != nil {
					for _, c := range doc.List {
						if d, ok := parseDirective(c.Text, t.pos(c.Slash)); ok {
							attached[c] = true
							s.dirs = append(s.dirs, d)
						}
					}
				}
				t.specs = append(t.specs, s)
			}
		}
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				d, ok := parseDirective(c.Text, t.pos(c.Slash))
				switch {
				case !ok || d.name == "output":
					// Read by scanPackage.
				case !slices.Contains(directives, d.name):
					hint := didYouMean(d.name, directives, func(s string) string { return directivePrefix + s })
					if hint == "" {
						hint = " (expected " + oneOf(directives) + ")"
					}
					t.errorf(d.pos, "unknown directive //theus:%s%s", d.name, hint)
				case !attached[c]:
					t.errorf(d.pos, "//theus:%s must be in the doc comment of a struct type declaration", d.name)
				}
			}
		}
	}
	for _, ts := range t.specs {
		var process *directive
		for _, d := range ts.dirs {
			switch d.name {
			case "process":
				if process != nil {
					t.errorf(d.pos, "duplicate //theus:process (first at %s)", otherAt(process.pos, d.pos))
				} else {
					process = &d
				}
			case "rule":
				if !slices.ContainsFunc(ts.dirs, func(d directive) bool { return d.name == "process" }) {
					t.errorf(d.pos, "//theus:rule belongs to a process: add //theus:process to %s, or move the rule", ts.obj.Name())
				}
			case "topic":
				if i := slices.IndexFunc(ts.dirs, func(d directive) bool { return d.name == "process" }); i >= 0 {
					t.errorf(d.pos, "%s is a process (//theus:process at %s); a topic's payload is another type", ts.obj.Name(), otherAt(ts.dirs[i].pos, d.pos))
				}
			}
		}
	}
}

// structFields returns the fields of every struct type written in f.
func structFields(f *ast.File) []*ast.Field {
	var out []*ast.Field
	ast.Inspect(f, func(n ast.Node) bool {
		if st, ok := n.(*ast.StructType); ok && st.Fields != nil {
			out = append(out, st.Fields.List...)
		}
		return true
	})
	return out
}

// tagLiterals returns the tags of the struct fields written in f.
func tagLiterals(f *ast.File) []*ast.BasicLit {
	var out []*ast.BasicLit
	for _, field := range structFields(f) {
		if field.Tag != nil {
			out = append(out, field.Tag)
		}
	}
	return out
}

// isStruct reports whether the type that directive d is on is a struct
// type, and reports an error if not.
func (t *tagLoader) isStruct(ts typeSpec, d directive) bool {
	typ := ts.obj.Type()
	if _, ok := typ.Underlying().(*types.Struct); ok && !ts.obj.IsAlias() {
		if n, ok := typ.(*types.Named); ok && n.TypeParams().Len() > 0 {
			t.errorf(d.pos, "//theus:%s cannot be on the generic type %s", d.name, ts.obj.Name())
			return false
		}
		return true
	}
	t.errorf(d.pos, "//theus:%s must be on a struct type; %s is %s", d.name, ts.obj.Name(), t.typeString(typ.Underlying()))
	return false
}

func (t *tagLoader) typeString(typ types.Type) string {
	return types.TypeString(typ, types.RelativeTo(t.pkg.Types))
}

// tag returns the value of key in the tag of struct field v, whose tag
// text is tag.
func (t *tagLoader) tag(v *types.Var, tag, key string) (span, bool) {
	val, off, exact, ok := lookupTag(tag, key)
	if !ok {
		return span{}, false
	}
	lit := t.tagLits[v.Pos()]
	if lit == nil {
		return span{text: val, pos: t.pos(v.Pos())}, true
	}
	pos := t.pos(lit.Pos())
	// Columns inside the tag are known when it is a one-line raw string.
	exact = exact && strings.HasPrefix(lit.Value, "`") && !strings.Contains(lit.Value, "\n")
	if exact {
		pos.Col += 1 + off
	}
	return span{text: val, pos: pos, exact: exact}, true
}

// compileError reports why the type of what, declared at pos, does not
// compile: the type checker's first error on that line from pos on.
func (t *tagLoader) compileError(pos Pos, what string) {
	for _, e := range t.pkg.TypeErrors {
		if ep := t.position(e.Fset.Position(e.Pos)); ep.File == pos.File && ep.Line == pos.Line && ep.Col >= pos.Col {
			t.errorf(ep, "%s", e.Msg)
			return
		}
	}
	t.errorf(pos, "the type of %s does not compile", what)
}

// zoneFields are the names of State's fields for each zone.
var zoneFields = map[Zone]string{ZoneDomain: "Domain", ZoneGlobal: "Global"}

const stateHint = "type State struct { Domain struct{...} `theus:\"domain\"`; Global struct{...} `theus:\"global\"` }"

// loadState reads the State type: its zones, and the state fields in
// them.
func (t *tagLoader) loadState() {
	obj := t.pkg.Types.Scope().Lookup("State")
	if obj == nil {
		first := t.pkg.Syntax[sortedFiles(t.pkg)[0]]
		t.errorf(t.pos(first.Name.Pos()), "package %s declares no State type: declare the state as %s", t.pkg.Name, stateHint)
		return
	}
	tn, isType := obj.(*types.TypeName)
	st, isStruct := obj.Type().Underlying().(*types.Struct)
	if !isType || !isStruct || tn.IsAlias() {
		t.errorf(t.pos(obj.Pos()), "State must be a struct type: %s", stateHint)
		return
	}
	if n, ok := obj.Type().(*types.Named); ok && n.TypeParams().Len() > 0 {
		t.errorf(t.pos(obj.Pos()), "State cannot be generic")
		return
	}
	zones := map[Zone]*types.Struct{}
	zoneErr := false // a zone in error may be one that paths name
	for i := range st.NumFields() {
		v := st.Field(i)
		pos := t.pos(v.Pos())
		val, ok := t.tag(v, st.Tag(i), "theus")
		if !ok {
			t.errorf(pos, "field %s of State has no theus tag: State holds the zones, %s", v.Name(), stateHint)
			zoneErr = true
			continue
		}
		parts := val.split(',')
		zone := Zone(parts[0].text)
		want, known := zoneFields[zone]
		for _, extra := range parts[1:] {
			t.errorf(extra.pos, "unexpected %q: the tag of a zone is only its name", extra.text)
		}
		zs, isStruct := v.Type().Underlying().(*types.Struct)
		named, isNamed := v.Type().(*types.Named)
		switch {
		case !known:
			t.errorf(parts[0].pos, "%s", unknownChoice("zone", parts[0].text, "", zoneNames))
		case v.Name() != want:
			t.errorf(pos, "the field tagged theus:%q must be named %s", zone, want)
		case zones[zone] != nil:
			t.errorf(pos, "duplicate zone %q", zone)
		case !isStruct || isNamed && (named.Obj().Pkg() != t.pkg.Types || named.TypeParams().Len() > 0):
			t.errorf(pos, "State.%s must be a struct: struct{...}, or a struct type of this package", want)
		default:
			zones[zone] = zs
			continue
		}
		zoneErr = true
	}
	for _, zone := range []Zone{ZoneDomain, ZoneGlobal} {
		t.p.broken[zone] = zoneErr && zones[zone] == nil
	}
	for _, zone := range []Zone{ZoneDomain, ZoneGlobal} {
		if zs := zones[zone]; zs != nil {
			t.loadZone(zone, zs)
		}
	}
}

// loadZone reads the state fields of one zone.
func (t *tagLoader) loadZone(zone Zone, zs *types.Struct) {
	p := t.p
	owner := "State." + zoneFields[zone]
	for i := range zs.NumFields() {
		v := zs.Field(i)
		pos := t.pos(v.Pos())
		if !t.exportedField(v, pos, owner) {
			continue
		}
		val, ok := t.tag(v, zs.Tag(i), "theus")
		if !ok {
			t.errorf(pos, "field %s of %s has no theus tag (the state field's name: theus:%q)", v.Name(), owner, SnakeName(v.Name()))
			continue
		}
		parts := val.split(',')
		name := parts[0]
		if name.text == "" {
			t.errorf(name.pos, "the theus tag of %s.%s needs the state field's name first: theus:%q", owner, v.Name(), SnakeName(v.Name()))
			continue
		}
		p.checkPathName(t.node(name), "state field name", name.text)
		f := &StateField{Zone: zone, Name: name.text, GoName: v.Name(), Pos: pos}
		typ := t.typeOf(v.Type(), pos, fmt.Sprintf("state field %s", name.text))
		for _, opt := range parts[1:] {
			switch {
			case opt.text != "collection":
				t.errorf(opt.pos, "%s", unknownChoice("option", opt.text, " in the theus tag of a state field", []string{"collection"}))
			case zone != ZoneDomain:
				t.errorf(opt.pos, "collections belong to the domain zone (use a map type for configuration)")
			case typ != nil && typ.Kind != Map:
				t.errorf(opt.pos, "a collection is a map[K]V, not %s", typ.Expr)
				typ = nil
			default:
				f.Collection = true
			}
		}
		f.Type = typ
		t.goTypes[f] = v.Type()
		if other, dup := p.state[f.Name]; dup {
			t.errorf(f.Pos, "state field %q is declared in both domain and global (other at %s)", f.Name, otherAt(other.Pos, f.Pos))
			p.poisonName(zone, f.Name)
			continue
		}
		p.state[f.Name] = f
		p.m.State = append(p.m.State, f)
	}
}

// exportedField reports whether v, a field of owner, is a named exported
// field, and reports an error if not.
func (t *tagLoader) exportedField(v *types.Var, pos Pos, owner string) bool {
	switch {
	case v.Embedded():
		t.errorf(pos, "embedded field %s in %s: give the field a name (theus reads fields one by one, and encoding/json would flatten it)", v.Name(), owner)
	case !v.Exported():
		t.errorf(pos, "field %s of %s is unexported: theus copies, shows and encodes every field; export it", v.Name(), owner)
	default:
		return true
	}
	return false
}

// typeOf converts the Go type of what, declared at pos, or reports why it
// cannot be used and returns nil.
func (t *tagLoader) typeOf(typ types.Type, pos Pos, what string) *Type {
	fail := func(format string, args ...any) *Type { return t.refuse(pos, what, format, args...) }
	switch u := types.Unalias(typ).(type) {
	case *types.Basic:
		switch {
		case u.Kind() == types.Invalid:
			t.compileError(pos, what)
			return nil
		case builtins[u.Name()]:
			return &Type{Kind: Builtin, Name: u.Name(), Expr: u.Name()}
		}
		return fail("type %s is not supported", u.Name())
	case *types.Slice:
		elem := t.typeOf(u.Elem(), pos, what)
		if elem == nil {
			return nil
		}
		return &Type{Kind: Slice, Elem: elem, Expr: "[]" + elem.Expr}
	case *types.Map:
		key, elem := t.typeOf(u.Key(), pos, what), t.typeOf(u.Elem(), pos, what)
		if key == nil || elem == nil {
			return nil
		}
		if !isKeyType(key) {
			return fail("invalid map key type %q: use string or an integer type", key.Expr)
		}
		return &Type{Kind: Map, Key: key, Elem: elem, Expr: "map[" + key.Expr + "]" + elem.Expr}
	case *types.Named:
		return t.named(u, pos, what)
	case *types.Array, *types.Pointer, *types.Chan, *types.Signature, *types.Interface:
		return fail("%s", refusedKind(u))
	case *types.Struct:
		return fail("anonymous structs are not allowed; declare a struct type")
	}
	return fail("type %s is not supported", t.typeString(typ))
}

// refuse reports why the type of what, declared at pos, cannot be used.
func (t *tagLoader) refuse(pos Pos, what, format string, args ...any) *Type {
	t.errorf(pos, "%s: %s", what, fmt.Sprintf(format, args...))
	return nil
}

// named converts a named type: a struct of the package, or a type of
// another package.
func (t *tagLoader) named(n *types.Named, pos Pos, what string) *Type {
	obj := n.Obj()
	fail := func(format string, args ...any) *Type { return t.refuse(pos, what, format, args...) }
	switch {
	case n.TypeArgs().Len() > 0 || n.TypeParams().Len() > 0:
		return fail("generic type %s is not supported", t.typeString(n))
	case obj.Pkg() == nil: // error
		return fail("%s", refusedInterface)
	case obj.Pkg() == t.pkg.Types:
		if _, ok := n.Underlying().(*types.Struct); !ok {
			return fail("type %s is not supported: a type of this package must be a struct (use %s)", obj.Name(), t.typeString(n.Underlying()))
		}
		s := t.declStruct(obj)
		return &Type{Kind: Named, Name: s.Name, Struct: s, Expr: s.Name}
	}
	read, problem := t.imported.named(n)
	if problem != "" {
		return fail("imported type %s: %s", types.TypeString(n, packageName), problem)
	}
	imp := t.importOf(obj.Pkg(), pos)
	return &Type{Kind: Imported, Name: obj.Name(), Import: imp, Expr: imp.Alias + "." + obj.Name(), Under: read.Under}
}

// importOf returns the Import of pkg, declaring it on first use under the
// package's name, or the first free name after it.
func (t *tagLoader) importOf(pkg *types.Package, pos Pos) *Import {
	if imp := t.imports[pkg.Path()]; imp != nil {
		return imp
	}
	alias := pkg.Name()
	for n := 2; t.p.imports[alias] != nil || t.pkg.Types.Scope().Lookup(alias) != nil || !isPlainIdent(alias); n++ {
		alias = fmt.Sprintf("%s%d", pkg.Name(), n)
	}
	imp := &Import{Alias: alias, Path: pkg.Path(), Pos: pos}
	t.imports[pkg.Path()] = imp
	t.p.imports[alias] = imp
	t.p.m.Imports = append(t.p.m.Imports, imp)
	return imp
}

// declStruct returns the Struct of a struct type of the package, reading
// it on first use.
func (t *tagLoader) declStruct(obj *types.TypeName) *Struct {
	if s := t.structs[obj]; s != nil {
		return s
	}
	p := t.p
	s := &Struct{Name: obj.Name(), GoName: obj.Name(), Pos: t.pos(obj.Pos())}
	t.structs[obj] = s
	p.types[s.Name] = s
	p.fields[s] = map[string]*Field{}
	p.m.Types = append(p.m.Types, s)
	st := obj.Type().Underlying().(*types.Struct)
	s.Fields = t.fields(st, s.Name, "field")
	for _, f := range s.Fields {
		p.fields[s][f.Name] = f
	}
	// A field may also be named by its Go name where no other field has
	// that JSON name: key=ID for `ID string `json:"id"``.
	for _, f := range s.Fields {
		if _, taken := p.fields[s][f.GoName]; !taken {
			p.fields[s][f.GoName] = f
		}
	}
	return s
}

// fields reads the fields of st, a struct type or the arguments of a
// process (owner names it; what is "field" or "argument"). A field's name
// is the name encoding/json gives it, because the generated encoder must
// write what encoding/json writes; an argument, which is never encoded,
// is named like a process, in snake case (Email -> email).
func (t *tagLoader) fields(st *types.Struct, owner, what string) []*Field {
	var out []*Field
	byName := map[string]*Field{}
	for i := range st.NumFields() {
		v := st.Field(i)
		pos := t.pos(v.Pos())
		if !t.exportedField(v, pos, owner) {
			continue
		}
		if _, ok := t.tag(v, st.Tag(i), "theus"); ok {
			t.errorf(pos, "%s %s of %s has a theus tag; only the fields of State's zones and of processes take one", what, v.Name(), owner)
		}
		jsonTag := reflect.StructTag(st.Tag(i)).Get("json")
		name, opts, _ := strings.Cut(jsonTag, ",")
		if what == "argument" {
			name, opts = SnakeName(v.Name()), ""
		} else if name == "-" {
			t.errorf(pos, "%s %s of %s is tagged json:%q; every field is part of the state and of messages: remove the tag", what, v.Name(), owner, jsonTag)
			continue
		}
		if !ValidJSONName(name) {
			name = v.Name() // as encoding/json does
		}
		f := &Field{Name: name, GoName: v.Name(), Pos: pos}
		f.Type = t.typeOf(v.Type(), pos, fmt.Sprintf("%s %s of %s", what, v.Name(), owner))
		t.goTypes[f] = v.Type()
		if other := byName[name]; other != nil {
			t.errorf(pos, "%s %s of %s has the JSON name %q of %s, and encoding/json would write neither", what, v.Name(), owner, name, other.GoName)
			continue
		}
		byName[name] = f
		for opt := range strings.SplitSeq(opts, ",") {
			if opt == "omitempty" || opt == "omitzero" || opt == "string" {
				t.jsonOpts[f] = opt
				break
			}
		}
		out = append(out, f)
	}
	return out
}

// ValidJSONName reports whether encoding/json accepts name as the name in
// a json struct tag (its isValidTag); it uses the Go field's name instead
// of one it does not accept.
func ValidJSONName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		if !strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c) && !unicode.IsLetter(c) && !unicode.IsDigit(c) {
			return false
		}
	}
	return true
}

// checkPayloadJSON refuses the json options that the generated encoder
// does not follow in the types that it encodes: those of topic payloads.
func (t *tagLoader) checkPayloadJSON() {
	seen := map[*Struct]bool{}
	var walk func(typ *Type, topic *Topic)
	walk = func(typ *Type, topic *Topic) {
		switch {
		case typ == nil:
		case typ.Kind == Slice || typ.Kind == Map:
			walk(typ.Elem, topic)
		case typ.Kind == Named && !seen[typ.Struct]:
			seen[typ.Struct] = true
			for _, f := range typ.Struct.Fields {
				if opt := t.jsonOpts[f]; opt != "" {
					t.errorf(f.Pos, "field %s of %s has the json option %q, which messages do not follow (%s is part of the payload of topic %q): remove it",
						f.GoName, typ.Struct.Name, opt, typ.Struct.Name, topic.Name)
				}
				walk(f.Type, topic)
			}
		}
	}
	for _, tp := range t.p.m.Topics {
		walk(tp.Payload, tp)
	}
}

// options reads the key=value words of directive d; allowed are the keys
// it takes.
func (t *tagLoader) options(d directive, allowed ...string) map[string]span {
	out := map[string]span{}
	first := map[string]Pos{}
	for _, w := range d.args.words() {
		key, _, ok := strings.Cut(w.text, "=")
		switch {
		case !ok:
			t.errorf(w.pos, "expected key=value in //theus:%s, not %q (keys: %s)", d.name, w.text, oneOf(allowed))
		case !slices.Contains(allowed, key):
			t.errorf(w.pos, "%s", unknownChoice("option", key, " in //theus:"+d.name, allowed))
		case first[key] != Pos{}:
			t.errorf(w.pos, "duplicate option %q (first at %s)", key, otherAt(first[key], w.pos))
		case len(w.text) == len(key)+1:
			t.errorf(w.pos, "option %q needs a value", key)
		default:
			first[key] = w.pos
			out[key] = w.slice(len(key)+1, len(w.text))
		}
	}
	return out
}

// loadTopic reads a //theus:topic directive on a struct type.
func (t *tagLoader) loadTopic(ts typeSpec, d directive) {
	p := t.p
	opts := t.options(d, "name", "key")
	name, ok := opts["name"]
	if !ok {
		t.errorf(d.pos, "//theus:topic needs name=TOPIC, e.g. //theus:topic name=user.updated key=ID")
		return
	}
	if other := p.topics[name.text]; other != nil {
		t.errorf(name.pos, "duplicate topic %q (first at %s)", name.text, otherAt(other.Pos, name.pos))
		return
	}
	tp := &Topic{Name: name.text, GoName: p.goName(t.node(name), "topic", name.text), Pos: name.pos}
	p.topics[tp.Name] = tp
	p.m.Topics = append(p.m.Topics, tp)
	s := t.declStruct(ts.obj)
	tp.Payload = &Type{Kind: Named, Name: s.Name, Struct: s, Expr: s.Name}
	if key, ok := opts["key"]; ok {
		tp.Key = p.topicKey(key.pos, s, key.text)
	}
}

// loadProcess reads a struct type with a //theus:process directive d.
func (t *tagLoader) loadProcess(ts typeSpec, d directive) {
	p := t.p
	goName := ts.obj.Name()
	pr := &Process{
		Name:     SnakeName(goName),
		GoName:   goName,
		Doc:      processDoc(ts.doc, goName),
		Semantic: Effect,
		Pos:      d.pos,
	}
	if back := GoName(pr.Name); back != goName {
		t.errorf(d.pos, "process %s: its contract name %q converts back to %s; name the type %s", goName, pr.Name, back, back)
	}
	p.m.Processes = append(p.m.Processes, pr)
	opts := t.options(d, "semantic", "emits", "errors")
	if s, ok := opts["semantic"]; ok {
		switch sem := Semantic(s.text); sem {
		case Pure, Effect, Guide:
			pr.Semantic = sem
		default:
			t.errorf(s.pos, "%s", unknownChoice("semantic", s.text, "", semantics))
		}
	}
	if s, ok := opts["emits"]; ok {
		pr.KeyPos = map[string]Pos{"emits": s.pos}
		if pr.Semantic == Pure {
			t.errorf(s.pos, "a pure process cannot emit topics (use semantic=effect)")
		} else {
			pr.Emits, p.emitPos[pr] = p.emits(t.list(s))
		}
	}
	if s, ok := opts["errors"]; ok {
		p.parseErrors(pr, t.list(s))
	}
	st := ts.obj.Type().Underlying().(*types.Struct)
	for i := range st.NumFields() {
		v := st.Field(i)
		pos := t.pos(v.Pos())
		if !t.exportedField(v, pos, "process "+goName) {
			continue
		}
		val, tagged := t.tag(v, st.Tag(i), "theus")
		switch {
		case v.Name() == "Args" && !tagged:
			t.args(pr, v, pos)
		case v.Name() == "Result" && !tagged:
			pr.Result = t.typeOf(v.Type(), pos, "the result of process "+goName)
		case !tagged:
			t.errorf(pos, "field %s of process %s has no theus tag (tag it theus:\"in,path=zone.field\", or name it Args or Result)", v.Name(), goName)
		default:
			t.processField(pr, v, val, pos)
		}
	}
	for _, rd := range ts.dirs {
		if rd.name == "rule" {
			t.rule(pr, rd)
		}
	}
}

// processDoc is the doc comment of a process type as a contracts.yaml
// would say it: without directives, lines of a paragraph joined (the
// breaks of a Go comment are layout), and without the type's name in
// front ("UpdateUserEmail changes ..." is the doc "Changes ...").
func processDoc(doc *ast.CommentGroup, goName string) string {
	if doc == nil {
		return ""
	}
	paras := strings.Split(strings.TrimSpace(doc.Text()), "\n\n")
	for i, para := range paras {
		paras[i] = strings.Join(strings.Fields(para), " ")
	}
	text := strings.Join(paras, "\n\n")
	if rest, ok := strings.CutPrefix(text, goName+" "); ok {
		r, size := utf8.DecodeRuneInString(rest)
		text = string(unicode.ToUpper(r)) + rest[size:]
	}
	return text
}

// args reads the Args field of a process: a struct of arguments.
func (t *tagLoader) args(pr *Process, v *types.Var, pos Pos) {
	st, ok := v.Type().Underlying().(*types.Struct)
	if !ok {
		t.errorf(pos, "Args of process %s must be a struct of arguments, e.g. Args struct{ Email string }", pr.GoName)
		return
	}
	pr.Args = t.fields(st, "the Args of process "+pr.GoName, "argument")
}

// processField reads a field of a process with a theus tag: an input, an
// output or both, at a state path.
func (t *tagLoader) processField(pr *Process, v *types.Var, tag span, pos Pos) {
	p := t.p
	var in, out bool
	var outPos Pos
	var path *span
	written := false
	defer func() {
		if out && !written {
			p.partial[pr] = true // see parser.partial
		}
	}()
	for _, part := range tag.split(',') {
		switch key, _, _ := strings.Cut(part.text, "="); {
		case part.text == "in":
			in = true
		case part.text == "out":
			out, outPos = true, part.pos
		case key == "path" && part.text != key:
			s := part.slice(len("path="), len(part.text))
			path = &s
		default:
			if hint := didYouMean(key, []string{"in", "out", "path"}, nil); hint != "" {
				t.errorf(part.pos, "unknown option %q in the theus tag of a process field%s", part.text, hint)
			} else {
				t.errorf(part.pos, "unknown option %q in the theus tag of a process field (expected in, out and path=zone.field)", part.text)
			}
			p.partial[pr] = true // it may have been out
			return
		}
	}
	switch {
	case !in && !out:
		t.errorf(tag.pos, "the theus tag of %s.%s needs in, out or both", pr.GoName, v.Name())
		return
	case path == nil:
		t.errorf(tag.pos, "the theus tag of %s.%s needs path=zone.field (e.g. path=domain.user)", pr.GoName, v.Name())
		return
	}
	pa := p.path(t.node(*path))
	if pa == nil {
		return
	}
	pa.Text = string(pa.Field.Zone) + "." + pa.Field.Name
	want := t.goTypes[pa.Field]
	for _, f := range pa.Sub {
		pa.Text += "." + f.Name
		want = t.goTypes[f]
	}
	pa.GoName = v.Name()
	if isInvalid(v.Type()) {
		t.compileError(pos, "field "+v.Name())
		return
	}
	if want != nil && !types.Identical(v.Type(), want) {
		t.errorf(pos, "field %s has type %s, but %s has type %s", v.Name(), t.typeString(v.Type()), pa.Text, t.typeString(want))
		return
	}
	if in {
		if other := findOverlap(pr.Inputs, pa, false); other != nil {
			t.errorf(path.pos, "duplicate input %q (first at %s)", pa.Text, otherAt(other.Pos, pa.Pos))
		} else {
			pr.Inputs = append(pr.Inputs, pa)
		}
	}
	if !out {
		return
	}
	switch other := findOverlap(pr.Outputs, pa, true); {
	case pr.Semantic == Pure:
		t.errorf(outPos, "a pure process cannot have outputs (use semantic=effect)")
	case pa.Field.Zone == ZoneGlobal:
		t.errorf(path.pos, "%q cannot be an output: global state is read-only in processes", pa.Text)
	case other != nil && other.Text == pa.Text:
		t.errorf(path.pos, "duplicate output %q (first at %s)", pa.Text, otherAt(other.Pos, pa.Pos))
	case other != nil:
		t.errorf(path.pos, "output %q overlaps output %q (other at %s)", pa.Text, other.Text, otherAt(other.Pos, pa.Pos))
	default:
		o := *pa
		pr.Outputs = append(pr.Outputs, &o)
		written = true
	}
}

// isInvalid reports whether typ did not type-check.
func isInvalid(typ types.Type) bool {
	b, ok := typ.(*types.Basic)
	return ok && b.Kind() == types.Invalid
}

// rule reads a //theus:rule directive: the same mapping as an entry of
// `rules:` in contracts.yaml, in YAML flow style, checked by the same code.
func (t *tagLoader) rule(pr *Process, d directive) {
	const example = "//theus:rule {path: domain.user.email, regex: '^[^@ ]+@[^@ ]+$'}"
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(d.args.text), &doc); err != nil {
		// The text is one line, so the problem is at off in it.
		_, off, msg, hint := locateSyntaxError([]byte(d.args.text), err)
		if hint != "" {
			msg += "; " + hint
		} else {
			msg += " (write it as " + example + ")"
		}
		t.errorf(d.args.slice(off, len(d.args.text)).pos, "invalid rule: %s", msg)
		return
	}
	if len(doc.Content) == 0 {
		t.errorf(d.pos, "//theus:rule needs a rule: %s", example)
		return
	}
	n := doc.Content[0]
	var place func(n *yaml.Node)
	place = func(n *yaml.Node) {
		n.Line, n.Column = d.args.pos.Line, d.args.pos.Col+n.Column-1
		for _, c := range n.Content {
			place(c)
		}
	}
	place(n)
	t.p.file = d.args.pos.File
	if !t.p.expect(n, yaml.MappingNode, "expected a rule: a mapping with a path and checks, e.g. {path: domain.user.email, required: true}") {
		return
	}
	r := t.p.rule(pr, n)
	if r == nil {
		return
	}
	r.Text = r.Path.Text
	if r.Each {
		r.Text += "[*]"
	}
	for _, f := range r.Sub {
		r.Text += "." + f.Name
	}
	pr.Rules = append(pr.Rules, r)
}

// scopeDecls are the package-level names of the package, which the
// generated file must not declare again.
func (t *tagLoader) scopeDecls() []goDecl {
	scope := t.pkg.Types.Scope()
	var out []goDecl
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Pos().IsValid() {
			continue
		}
		kind := "the name"
		switch obj.(type) {
		case *types.TypeName:
			kind = "the type"
		case *types.Func:
			kind = "the func"
		case *types.Var:
			kind = "the var"
		case *types.Const:
			kind = "the const"
		}
		out = append(out, goDecl{name: name, desc: kind + " " + name + " of the package", pos: t.pos(obj.Pos())})
	}
	return out
}
