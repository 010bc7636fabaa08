package contract

import (
	"bytes"
	"errors"
	"fmt"
	"go/token"
	"io"
	"maps"
	"math"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// DefaultOutput is the generated file's name when the contract sets none.
const DefaultOutput = "theus_gen.go"

// Parse parses and validates the contract src, read from filename (used in
// positions and as Model.Source). When the contract has errors, Parse
// returns a nil Model and an ErrorList holding all of them, sorted.
//
// The packages of `imports:` whose types the contract names are loaded with
// golang.org/x/tools/go/packages from filename's directory, which runs the
// go command: their types are checked and described in Type.Under. A
// contract that names no imported type touches nothing but src.
//
// Model.Package is left empty when the contract sets no package: the
// default depends on the directory, which is the caller's business.
func Parse(filename string, src []byte) (*Model, error) {
	m := &Model{Source: filename, Output: DefaultOutput, OutputPos: Pos{File: filename, Line: 1, Col: 1}}
	p := newParser(filename, m)
	p.parseFile(src)
	if len(p.errs) > 0 {
		return nil, p.errs.sorted()
	}
	return p.m, nil
}

// newParser returns a parser that fills m, reporting positions in file.
func newParser(file string, m *Model) *parser {
	return &parser{
		file:    file,
		m:       m,
		imports: map[string]*Import{},
		types:   map[string]*Struct{},
		fields:  map[*Struct]map[string]*Field{},
		state:   map[string]*StateField{},
		topics:  map[string]*Topic{},
		emitPos: map[*Process][]Pos{},
		broken:  map[any]bool{},
		poison:  map[any]map[string]bool{},
		partial: map[*Process]bool{},
		unknown: map[string]*unknownUse{},
	}
}

// parser builds one Model from one file, collecting errors as it goes rather
// than stopping at the first: each section is checked as far as the
// sections it depends on allow, and a reference to something that was
// itself in error is skipped silently so that one mistake gives one message.
//
// That last rule is kept in one way throughout: whatever fails to be
// declared (a section that is not a mapping, a misspelt section, zone or
// key, a name declared twice) is recorded as broken or poisoned, and every
// lookup goes through unresolved before it reports a name as unknown. A
// list that lost an entry to an error (a process's outputs) is partial,
// and what needs the whole list (a rule must be on an output) is not
// checked against it.
type parser struct {
	file string
	errs ErrorList
	m    *Model

	// Lookups by contract name, filled as sections are parsed.
	imports map[string]*Import
	types   map[string]*Struct
	fields  map[*Struct]map[string]*Field
	state   map[string]*StateField
	topics  map[string]*Topic
	// broken holds the sections that could not be read at all (a list
	// where a mapping belongs): "imports", "types", "topics", a Zone or a
	// *Struct (its fields). A name not found in a broken section may well
	// be declared there, so it is not reported again.
	broken map[any]bool
	// poison holds, by the same scopes, names that were written but not
	// declared: the entries of a misspelt section (typs:, a zone globals:),
	// a state field declared in both zones. A use of one is not reported.
	poison map[any]map[string]bool
	// partial holds the processes whose outputs lost an entry to an error.
	partial map[*Process]bool
	// unknown holds the uses of each unknown type or topic, reported once
	// at the first (see reportUnknown).
	unknown map[string]*unknownUse
	// emitPos holds where each of a process's Emits is written, for
	// messages about it (Topic.Pos is the topic's declaration).
	emitPos map[*Process][]Pos
	// importUses are the type expressions that name imported types, read
	// with go/types once the file is parsed (resolveImports).
	importUses []importUse
	// exprs are the CEL checks of rules and invariants, type-checked once
	// every type is resolved (checkExprs); src is the file, whose
	// indentation places errors inside block scalars.
	exprs []exprUse
	src   []byte
	// scope holds the package-level names that the user's Go files declare,
	// when the contract is read from struct tags: the generated file must
	// not declare them again.
	scope []goDecl
}

func (p *parser) pos(n *yaml.Node) Pos { return Pos{File: p.file, Line: n.Line, Col: n.Column} }

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs.add(p.pos(n), format, args...)
}

func (p *parser) parseFile(src []byte) {
	if e := checkEncoding(p.file, src); e != nil {
		p.errs = append(p.errs, e)
		return
	}
	p.src = src
	root := p.decode(src)
	if root == nil {
		return
	}
	if !p.expect(root, yaml.MappingNode, "expected a mapping") {
		return
	}
	top := p.entries(root)
	if !p.version(top) {
		// The rest of a file in another version follows another schema:
		// checking it against this one would only add noise.
		return
	}
	keys, unknown := p.index(top, topKeys...)
	// What a misspelt section declares is unknown, not missing.
	for _, scope := range []string{"imports", "types", "topics"} {
		p.poisonNames(scope, misspelt(unknown, scope))
	}
	if n := misspelt(unknown, "state"); n != nil {
		p.poisonState(n)
	}
	if e, ok := keys["package"]; ok {
		p.pkg(e.val)
	}
	if e, ok := keys["output"]; ok {
		p.m.OutputPos = p.pos(e.key)
		p.output(e.val)
	}
	// Sections are read in the order of their references (types use
	// imports, state uses types, ...), whatever their order in the file.
	p.parseImports(keys["imports"].val)
	p.parseTypes(keys["types"].val)
	p.parseState(keys["state"].val)
	p.parseTopics(keys["topics"].val)
	p.parseProcesses(keys["processes"].val)
	p.parseAllow(keys["allow"].val)
	p.reportUnknowns()
	p.resolveImports()
	p.checkRecursion()
	p.checkExprs()
	p.checkNames()
}

var topKeys = []string{"version", "package", "output", "imports", "types", "state", "topics", "processes", "allow"}

// parseAllow reads `allow:`, the breaking changes acknowledged for
// `theusgen breaking`: a list of state paths and topic names. They may
// name what the contract no longer declares (a removed topic), so only
// their shape is checked.
func (p *parser) parseAllow(n *yaml.Node) {
	if n == nil {
		return
	}
	for _, item := range p.strList(n) {
		if strings.TrimSpace(item.Value) == "" || strings.ContainsAny(item.Value, " \t") {
			p.errorf(item, "allow entries are state paths or topic names (domain.orders, order.placed), not %q", item.Value)
			continue
		}
		p.m.Allow = append(p.m.Allow, &Allow{Path: item.Value, Pos: p.pos(item)})
	}
}

const emptyFile = "empty file: expected a mapping with at least \"version: 1\""

// decode returns the root node of the only document in src, or nil after
// reporting why there is none.
func (p *parser) decode(src []byte) *yaml.Node {
	fileStart := Pos{File: p.file, Line: 1, Col: 1}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc, next yaml.Node
	err := dec.Decode(&doc)
	if err == nil {
		// A second document would be silently ignored by Decode.
		if err = dec.Decode(&next); err == nil {
			p.errorf(&next, "a contract is a single YAML document; remove this one or move it to another file")
			return nil
		}
	}
	switch {
	case errors.Is(err, io.EOF) && doc.Kind == 0, // nothing but comments
		errors.Is(err, io.EOF) && (len(doc.Content) == 0 || isNull(doc.Content[0])): // "---" alone
		p.errs.add(fileStart, emptyFile)
		return nil
	case !errors.Is(err, io.EOF):
		p.errs = append(p.errs, syntaxError(p.file, src, err))
		return nil
	}
	return doc.Content[0]
}

// entry is one key: value pair of a YAML mapping.
type entry struct {
	name     string
	key, val *yaml.Node
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// isMapping reports whether n is a mapping, null or absent (nil), and
// reports an error otherwise.
func (p *parser) isMapping(n *yaml.Node) bool {
	return n == nil || isNull(n) || p.expect(n, yaml.MappingNode, "expected a mapping")
}

// expect reports msg at n unless n is of the given kind. Aliases are refused
// everywhere: following them would report errors at the anchor instead of
// where the value is used, and a cyclic alias would never end.
func (p *parser) expect(n *yaml.Node, kind yaml.Kind, msg string) bool {
	switch n.Kind {
	case kind:
		return true
	case yaml.AliasNode:
		p.errorf(n, "YAML aliases are not supported; write the value out")
	default:
		p.errorf(n, "%s", msg)
	}
	return false
}

// entries returns the pairs of mapping n in source order. An empty value
// (null) is an empty mapping, so that a section whose entries are all
// commented out stays valid. A duplicate key is reported at its second
// occurrence and dropped.
func (p *parser) entries(n *yaml.Node) []entry {
	return p.section(n, nil)
}

// section is entries for a section that other parts of the contract refer
// to: when n is not a mapping, scope is marked broken.
func (p *parser) section(n *yaml.Node, scope any) []entry {
	if !p.isMapping(n) {
		if scope != nil {
			p.broken[scope] = true
		}
		return nil
	}
	if n == nil || isNull(n) {
		return nil
	}
	var out []entry
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !p.expect(k, yaml.ScalarNode, "expected a string key") {
			continue
		}
		if f, dup := first[k.Value]; dup {
			p.errorf(k, "duplicate key %q (first at %d:%d); a key appears once in a mapping: merge the two entries or rename one", k.Value, f.Line, f.Column)
			continue
		}
		first[k.Value] = k
		out = append(out, entry{name: k.Value, key: k, val: v})
	}
	return out
}

// unknownKey is a key of a mapping that is not allowed there, and the
// allowed key it most likely misspells ("" when none is close).
type unknownKey struct {
	entry
	meant string
}

// index returns entries by name, reporting the ones not in allowed, which
// it also returns: a misspelt key may hold what an allowed one would (see
// misspelt), and while one is there a missing key is not worth reporting.
func (p *parser) index(ents []entry, allowed ...string) (map[string]entry, []unknownKey) {
	m := make(map[string]entry, len(ents))
	var unknown []unknownKey
	for _, e := range ents {
		if !slices.Contains(allowed, e.name) {
			u := unknownKey{entry: e}
			if s := suggest(e.name, allowed); len(s) == 1 {
				u.meant = s[0]
			}
			p.errorf(e.key, "%s", unknownChoice("key", e.name, "", allowed))
			unknown = append(unknown, u)
			continue
		}
		m[e.name] = e
	}
	return m, unknown
}

// keyed returns the pairs of mapping n by name; see entries and index.
func (p *parser) keyed(n *yaml.Node, allowed ...string) (map[string]entry, []unknownKey) {
	return p.index(p.entries(n), allowed...)
}

// misspelt returns the value of the unknown key that stands for name, or
// nil.
func misspelt(unknown []unknownKey, name string) *yaml.Node {
	for _, u := range unknown {
		if u.meant == name {
			return u.val
		}
	}
	return nil
}

// poisonNames records the keys of mapping n, which were written under a
// misspelt key, as names that scope may have meant to declare; when n is
// no mapping, the whole scope is broken.
func (p *parser) poisonNames(scope any, n *yaml.Node) {
	if n == nil || isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.broken[scope] = true
		return
	}
	for i := 0; i < len(n.Content); i += 2 {
		p.poisonName(scope, n.Content[i].Value)
	}
}

func (p *parser) poisonName(scope any, name string) {
	if p.poison[scope] == nil {
		p.poison[scope] = map[string]bool{}
	}
	p.poison[scope][name] = true
}

// unresolved reports whether name, not found in scope, may be declared
// there after all (in a part of the contract that is in error), so that
// saying it is unknown would only repeat an error.
func (p *parser) unresolved(scope any, name string) bool {
	return p.broken[scope] || p.poison[scope][name]
}

// unknownChoice says that name is none of the allowed values of what
// (written where, e.g. " in //theus:process", or ""): which one it likely
// misspells, or else the whole list.
func unknownChoice(what, name, where string, allowed []string) string {
	if hint := didYouMean(name, allowed, nil); hint != "" {
		return fmt.Sprintf("unknown %s %q%s%s", what, name, where, hint)
	}
	return fmt.Sprintf("unknown %s %q%s (expected %s)", what, name, where, oneOf(allowed))
}

// oneOf formats a list of alternatives: "a, b or c".
func oneOf(list []string) string { return joinLast(list, " or ") }

// AndList formats a list as prose: "a", "a and b", "a, b and c" (for
// messages and generated comments).
func AndList(list []string) string { return joinLast(list, " and ") }

func joinLast(list []string, last string) string {
	if len(list) == 1 {
		return list[0]
	}
	return strings.Join(list[:len(list)-1], ", ") + last + list[len(list)-1]
}

// str returns the value of a string scalar. Other scalars (numbers,
// booleans, null) are refused rather than converted: `doc: 12` or `result:`
// with nothing after it are more likely mistakes than intentions.
func (p *parser) str(n *yaml.Node) (string, bool) {
	if !p.expect(n, yaml.ScalarNode, "expected a string") {
		return "", false
	}
	if n.Tag != "!!str" {
		p.errorf(n, "expected a string")
		return "", false
	}
	return n.Value, true
}

// strList returns the string items of sequence n; null is an empty list.
func (p *parser) strList(n *yaml.Node) []*yaml.Node {
	if isNull(n) || !p.expect(n, yaml.SequenceNode, "expected a list of strings") {
		return nil
	}
	var out []*yaml.Node
	for _, item := range n.Content {
		if _, ok := p.str(item); ok {
			out = append(out, item)
		}
	}
	return out
}

// version checks the version key and reports whether the rest of the file
// should be checked.
func (p *parser) version(top []entry) bool {
	for _, e := range top {
		if e.name != "version" {
			continue
		}
		n := e.val
		if !p.expect(n, yaml.ScalarNode, "version must be the integer 1") {
			return false
		}
		v, err := strconv.ParseInt(n.Value, 0, 64)
		switch {
		case n.Tag != "!!int" || err != nil:
			p.errorf(n, "version must be the integer 1")
			return false
		case v != 1:
			p.errorf(n, "unsupported version %s (this theusgen supports version 1)", n.Value)
			return false
		}
		return true
	}
	for _, e := range top {
		if s := suggest(e.name, topKeys); slices.Equal(s, []string{"version"}) {
			return true // misspelt, which index reports
		}
	}
	p.errs.add(Pos{File: p.file, Line: 1, Col: 1}, "missing required key \"version\" (add \"version: 1\")")
	return true
}

func (p *parser) pkg(n *yaml.Node) {
	s, ok := p.str(n)
	if !ok {
		return
	}
	if !isPlainIdent(s) {
		p.errorf(n, "package %q is not a valid Go package name", s)
		return
	}
	p.m.Package = s
}

// output checks that the generated file stays in the contract's directory
// tree: a contract must not be able to make the generator write elsewhere.
func (p *parser) output(n *yaml.Node) {
	s, ok := p.str(n)
	if !ok {
		return
	}
	clean := path.Clean(filepath.ToSlash(s))
	switch {
	case !strings.HasSuffix(clean, ".go"):
		p.errorf(n, "output %q must be a .go file", s)
	case path.IsAbs(clean) || filepath.IsAbs(s) || filepath.VolumeName(s) != "":
		p.errorf(n, "output %q must be relative to the contract's directory", s)
	case clean == ".." || strings.HasPrefix(clean, "../"):
		p.errorf(n, "output %q must not leave the contract's directory", s)
	case strings.HasPrefix(path.Base(clean), ".") || strings.HasPrefix(path.Base(clean), "_"):
		p.errorf(n, "output %q would be ignored by the go command (its name starts with '.' or '_')", s)
	default:
		p.m.Output = clean
	}
}

// identProblem explains why s cannot be used as an identifier in the
// generated file, or returns "".
func identProblem(s string) string {
	switch {
	case s == "_":
		return "is the blank identifier"
	case token.IsKeyword(s):
		return "is a Go keyword"
	case predeclared[s]:
		return "would shadow Go's predeclared identifier"
	case !isPlainIdent(s):
		return "is not a Go identifier"
	}
	return ""
}

func (p *parser) parseImports(n *yaml.Node) {
	byPath := map[string]*Import{}
	for _, e := range p.section(n, "imports") {
		ipath, ok := p.str(e.val)
		imp := &Import{Alias: e.name, Path: ipath, Pos: p.pos(e.key)}
		// Declared even when in error, so that its uses are not reported
		// as unknown aliases on top.
		p.imports[imp.Alias] = imp
		if problem := identProblem(e.name); problem != "" {
			p.errorf(e.key, "import alias %q %s", e.name, problem)
			continue
		}
		if !ok {
			continue
		}
		if !validImportPath(ipath) {
			p.errorf(e.val, "invalid import path %q", ipath)
			continue
		}
		if other, dup := byPath[ipath]; dup {
			// The generated file can import a path under one name only.
			p.errorf(e.val, "import path %q is already imported as %q (other at %d:%d)",
				ipath, other.Alias, other.Pos.Line, other.Pos.Col)
			continue
		}
		byPath[ipath] = imp
		p.m.Imports = append(p.m.Imports, imp)
	}
}

// validImportPath is a sanity check, not the go command's full rules: it
// catches what would break the generated import declaration.
func validImportPath(s string) bool {
	if s == "" || strings.ContainsAny(s, " \t\\\"'`") || strings.HasPrefix(s, "/") || strings.HasSuffix(s, "/") {
		return false
	}
	for elem := range strings.SplitSeq(s, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
	}
	return true
}

// goName returns GoName(name), reporting names that give no usable Go
// identifier (what describes the name for the message).
func (p *parser) goName(n *yaml.Node, what, name string) string {
	g := GoName(name)
	if !validGoName(g) {
		p.errorf(n, "%s %q does not convert to an exported Go name (got %q)", what, name, g)
	}
	return g
}

// checkPathName refuses names that could not be written in a path.
func (p *parser) checkPathName(n *yaml.Node, what, name string) {
	if strings.ContainsAny(name, ".[]* \t") {
		p.errorf(n, "%s %q must not contain '.', '[', ']', '*' or spaces (it is used in paths)", what, name)
	}
}

// typeExpr resolves the type expression in n, or reports why it cannot and
// returns nil.
func (p *parser) typeExpr(n *yaml.Node) *Type {
	s, ok := p.str(n)
	if !ok {
		return nil
	}
	t, err := parseType(s, p.types, p.imports)
	var unknown *unknownError
	switch {
	case errors.As(err, &unknown) && p.unresolved(unknown.scope, unknown.name):
		return nil
	case errors.As(err, &unknown):
		p.reportUnknown(unknown.scope+" "+unknown.expr, p.pos(n), unknown.msg, p.suggestType(unknown))
		return nil
	case err != nil:
		p.errorf(n, "%v", err)
		return nil
	}
	p.importUses = append(p.importUses, importUses(t, p.pos(n))...)
	return t
}

// suggestType returns the suggestion for an unknown type name: declared
// types and builtins, or import aliases.
func (p *parser) suggestType(u *unknownError) string {
	if u.scope == "imports" {
		return didYouMean(u.name, slices.Collect(maps.Keys(p.imports)), func(alias string) string {
			return alias + "." + u.member
		})
	}
	return didYouMean(u.name, slices.Concat(slices.Collect(maps.Keys(p.types)), slices.Collect(maps.Keys(builtins))), nil)
}

// unknownUse is where one unknown name is used.
type unknownUse struct {
	msg, hint string // the message, and the suggestion said last
	at        []Pos
}

// reportUnknown records a use at pos of a name that is declared nowhere
// (key tells the name and its kind apart). A name is reported once, at its
// first use with the others listed (see reportUnknowns): one declaration
// fixes them all, or one misspelling was copied.
func (p *parser) reportUnknown(key string, pos Pos, msg, hint string) {
	u := p.unknown[key]
	if u == nil {
		u = &unknownUse{msg: msg, hint: hint}
		p.unknown[key] = u
	}
	u.at = append(u.at, pos)
}

// reportUnknowns adds the errors that reportUnknown recorded.
func (p *parser) reportUnknowns() {
	for _, key := range slices.Sorted(maps.Keys(p.unknown)) {
		u := p.unknown[key]
		slices.SortFunc(u.at, comparePos)
		var also string
		if len(u.at) > 1 {
			others := make([]string, len(u.at)-1)
			for i, pos := range u.at[1:] {
				others[i] = otherAt(pos, u.at[0])
			}
			also = " (also used at " + AndList(others) + ")"
		}
		p.errs.add(u.at[0], "%s%s%s", u.msg, also, u.hint)
	}
}

func (p *parser) parseTypes(n *yaml.Node) {
	// Declare every name first: fields may refer to types declared below.
	ents := p.section(n, "types")
	for _, e := range ents {
		s := &Struct{Name: e.name, GoName: GoName(e.name), Pos: p.pos(e.key)}
		if problem := identProblem(e.name); problem != "" {
			p.errorf(e.key, "type name %q %s", e.name, problem)
		} else {
			p.goName(e.key, "type", e.name)
		}
		p.types[s.Name] = s
		p.fields[s] = map[string]*Field{}
		p.m.Types = append(p.m.Types, s)
	}
	for i, e := range ents {
		s := p.m.Types[i]
		if !p.isMapping(e.val) {
			p.broken[s] = true
			continue
		}
		keys, unknown := p.keyed(e.val, "fields")
		p.poisonNames(s, misspelt(unknown, "fields"))
		for _, fe := range p.section(keys["fields"].val, s) {
			p.checkPathName(fe.key, "field name", fe.name)
			if strings.ContainsAny(fe.name, ",\"\\'`") {
				// encoding/json would ignore such a tag, and disagree with
				// the generated encoder.
				p.errorf(fe.key, "field name %q must not contain ',', quotes or backslashes (it is the JSON name)", fe.name)
			}
			f := p.structField(fe)
			s.Fields = append(s.Fields, f)
			p.fields[s][f.Name] = f
		}
	}
}

// fieldNames returns the names of the fields of s, in order.
func fieldNames(s *Struct) []string {
	names := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		names[i] = f.Name
	}
	return names
}

// field builds a struct field or a process argument; what is "field" or
// "argument", for messages.
func (p *parser) field(e entry, what string) *Field {
	return &Field{
		Name:   e.name,
		GoName: p.goName(e.key, what, e.name),
		Type:   p.typeExpr(e.val),
		Pos:    p.pos(e.key),
	}
}

// structField builds a field of a declared struct: `name: T`, or in long
// form `name: {type: T, default: V}`.
func (p *parser) structField(fe entry) *Field {
	if fe.val.Kind != yaml.MappingNode {
		return p.field(fe, "field")
	}
	keys, unknown := p.keyed(fe.val, "type", "default")
	te, hasType := keys["type"]
	if !hasType {
		if len(unknown) == 0 {
			p.errorf(fe.val, "a field in long form needs \"type\": {type: string, default: \"none\"}")
		}
		return &Field{Name: fe.name, GoName: p.goName(fe.key, "field", fe.name), Pos: p.pos(fe.key)}
	}
	f := p.field(entry{name: fe.name, key: fe.key, val: te.val}, "field")
	if de, ok := keys["default"]; ok && f.Type != nil {
		if v, ok := p.defaultValue(de.val, f.Type); ok {
			f.Default = &Default{Value: v, Pos: p.pos(de.val)}
		}
	}
	return f
}

// defaultValue checks the literal in n against t, a field's type, and
// returns it as a string, bool, int64, uint64 or float64.
func (p *parser) defaultValue(n *yaml.Node, t *Type) (any, bool) {
	if t.Kind != Builtin {
		p.errorf(n, "defaults are for fields of type string, bool, integer or float, not %s", t.Expr)
		return nil, false
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "a default must be a literal of the field's type (%s)", t.Name)
		return nil, false
	}
	bits := map[string]int{"int8": 8, "int16": 16, "int32": 32, "rune": 32, "uint8": 8, "byte": 8, "uint16": 16, "uint32": 32, "float32": 32}[t.Name]
	if bits == 0 {
		bits = 64
	}
	switch t.Name {
	case "string":
		if n.Tag != "!!str" {
			p.errorf(n, "the default of a string field must be a string: quote it (\"%s\")", n.Value)
			return nil, false
		}
		return n.Value, true
	case "bool":
		var b bool
		if n.Tag != "!!bool" || n.Decode(&b) != nil {
			p.errorf(n, "the default of a bool field must be true or false, not %q", n.Value)
			return nil, false
		}
		return b, true
	case "float32", "float64":
		var f float64
		if (n.Tag != "!!float" && n.Tag != "!!int") || n.Decode(&f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			p.errorf(n, "the default of a %s field must be a finite number, not %q", t.Name, n.Value)
			return nil, false
		}
		if bits == 32 && math.Abs(f) > math.MaxFloat32 {
			p.errorf(n, "default %s overflows float32", n.Value)
			return nil, false
		}
		return f, true
	case "uint", "uint8", "uint16", "uint32", "uint64", "byte":
		var u uint64
		if n.Tag != "!!int" || n.Decode(&u) != nil || u > math.MaxUint64>>(64-bits) {
			p.errorf(n, "the default of a %s field must be an integer from 0 to %d, not %s", t.Name, uint64(math.MaxUint64>>(64-bits)), n.Value)
			return nil, false
		}
		return u, true
	default: // signed integers
		var i int64
		limit := int64(math.MaxInt64 >> (64 - bits))
		if n.Tag != "!!int" || n.Decode(&i) != nil || i > limit || i < -limit-1 {
			p.errorf(n, "the default of a %s field must be an integer from %d to %d, not %s", t.Name, -limit-1, limit, n.Value)
			return nil, false
		}
		return i, true
	}
}

func (p *parser) parseState(n *yaml.Node) {
	if !p.isMapping(n) {
		p.broken[ZoneDomain], p.broken[ZoneGlobal] = true, true
		return
	}
	zones, unknown := p.keyed(n, append(slices.Clone(zoneNames), "invariants")...)
	for _, u := range unknown {
		if u.meant != "invariants" {
			p.poisonZone(u.name, u.val)
		}
	}
	defer p.parseInvariants(zones["invariants"].val) // once the fields are known
	// Domain first, whatever the order in the file, as Model.State promises.
	for _, zone := range []Zone{ZoneDomain, ZoneGlobal} {
		for _, e := range p.section(zones[string(zone)].val, zone) {
			p.checkPathName(e.key, "state field name", e.name)
			f := &StateField{
				Zone:   zone,
				Name:   e.name,
				GoName: p.goName(e.key, "state field", e.name),
				Pos:    p.pos(e.key),
			}
			if e.val.Kind == yaml.MappingNode {
				f.Collection = true
				f.Type = p.collection(e.val, zone)
			} else {
				f.Type = p.typeExpr(e.val)
			}
			if other, dup := p.state[f.Name]; dup {
				// Accessors are flat (snap.User(), in.MaxLoans()), so a name
				// may exist in one zone only. Report at the later one.
				later, earlier := f, other
				if before(f.Pos, other.Pos) {
					later, earlier = other, f
				}
				p.errs.add(later.Pos, "state field %q is declared in both domain and global (other at %d:%d)",
					f.Name, earlier.Pos.Line, earlier.Pos.Col)
				p.poisonName(later.Zone, f.Name)
				continue
			}
			p.state[f.Name] = f
			p.m.State = append(p.m.State, f)
		}
	}
}

var zoneNames = []string{string(ZoneDomain), string(ZoneGlobal)}

// poisonState records the state fields declared under n, a misspelt state
// section, as unresolved.
func (p *parser) poisonState(n *yaml.Node) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.broken[ZoneDomain], p.broken[ZoneGlobal] = true, true
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		p.poisonZone(n.Content[i].Value, n.Content[i+1])
	}
}

// poisonZone records the state fields declared under fields, the value of
// the key name under state, as unresolved in the zone that name names or
// misspells, or in both zones when it is neither.
func (p *parser) poisonZone(name string, fields *yaml.Node) {
	zones := []Zone{ZoneDomain, ZoneGlobal}
	if s := suggest(name, zoneNames); slices.Contains(zoneNames, name) {
		zones = []Zone{Zone(name)}
	} else if len(s) == 1 {
		zones = []Zone{Zone(s[0])}
	}
	for _, z := range zones {
		p.poisonNames(z, fields)
	}
}

// collection parses {map: T, key: K}: a map versioned per entry. Its Type
// is map[K]T; nil when it is broken (reported).
func (p *parser) collection(n *yaml.Node, zone Zone) *Type {
	keys, unknown := p.keyed(n, "map", "key")
	if zone != ZoneDomain {
		p.errorf(n, "collections belong to the domain zone (use a map type for configuration)")
	}
	me, hasMap := keys["map"]
	ke, hasKey := keys["key"]
	if !hasMap || !hasKey {
		if len(unknown) > 0 {
			return nil // the unknown key may be the missing one
		}
		p.errorf(n, "a collection needs both \"map\" (the value type) and \"key\" (the key type): {map: Account, key: string}")
		return nil
	}
	elem, key := p.typeExpr(me.val), p.typeExpr(ke.val)
	if elem == nil || key == nil {
		return nil
	}
	if !isKeyType(key) {
		p.errorf(ke.val, "collection keys are strings or integers, not %s", key.Expr)
		return nil
	}
	return &Type{Kind: Map, Key: key, Elem: elem, Expr: "map[" + key.Expr + "]" + elem.Expr}
}

func before(a, b Pos) bool {
	if a.File != b.File {
		return a.File < b.File // struct tags span files
	}
	return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
}

func (p *parser) parseTopics(n *yaml.Node) {
	for _, e := range p.section(n, "topics") {
		t := &Topic{Name: e.name, GoName: p.goName(e.key, "topic", e.name), Pos: p.pos(e.key)}
		p.topics[t.Name] = t
		p.m.Topics = append(p.m.Topics, t)
		if !p.isMapping(e.val) {
			continue
		}
		keys, unknown := p.keyed(e.val, "payload", "key")
		pe, ok := keys["payload"]
		if !ok {
			if len(unknown) > 0 {
				continue // the unknown key may be the payload
			}
			p.errorf(e.key, "topic %q has no payload (add \"payload: TypeName\")", e.name)
			continue
		}
		typ := p.typeExpr(pe.val)
		if typ == nil {
			continue
		}
		if typ.Kind != Named {
			p.errorf(pe.val, "topic payload must be a type declared under types:, not %q", typ.Expr)
			continue
		}
		t.Payload = typ
		ke, ok := keys["key"]
		if !ok {
			continue
		}
		name, ok := p.str(ke.val)
		if !ok {
			continue
		}
		t.Key = p.topicKey(p.pos(ke.val), typ.Struct, name)
	}
}

// topicKey returns the field name of payload s that keys a topic, or nil
// after reporting why it cannot (key is written at pos).
func (p *parser) topicKey(pos Pos, s *Struct, name string) *Field {
	f := p.fields[s][name]
	switch {
	case f == nil && p.unresolved(s, name):
	case f == nil:
		names := fieldNames(s)
		p.errs.add(pos, "key %q is not a field of payload type %s%s (fields: %s)",
			name, s.Name, didYouMean(name, names, nil), strings.Join(names, ", "))
	case f.Type == nil:
		// Its type is in error, already reported.
	case !isKeyType(f.Type):
		p.errs.add(pos, "key field %q has type %s; a topic key must be a string or an integer", name, f.Type.Expr)
	default:
		return f
	}
	return nil
}

var semantics = []string{string(Pure), string(Effect), string(Guide)}

var processKeys = []string{"doc", "semantic", "args", "inputs", "outputs", "emits", "result", "errors", "rules"}

func (p *parser) parseProcesses(n *yaml.Node) {
	for _, e := range p.entries(n) {
		pr := &Process{
			Name:     e.name,
			GoName:   p.goName(e.key, "process", e.name),
			Semantic: Effect,
			Pos:      p.pos(e.key),
		}
		p.m.Processes = append(p.m.Processes, pr)
		keys, unknown := p.keyed(e.val, processKeys...)
		pr.KeyPos = map[string]Pos{}
		for name, k := range keys {
			pr.KeyPos[name] = p.pos(k.key)
		}
		if misspelt(unknown, "outputs") != nil {
			p.partial[pr] = true
		}

		if k, ok := keys["doc"]; ok {
			if s, ok := p.str(k.val); ok {
				pr.Doc = strings.TrimSpace(s)
			}
		}
		if k, ok := keys["semantic"]; ok {
			if s, ok := p.str(k.val); ok {
				switch sem := Semantic(s); sem {
				case Pure, Effect, Guide:
					pr.Semantic = sem
				default:
					p.errorf(k.val, "%s", unknownChoice("semantic", s, "", semantics))
				}
			}
		}
		for _, ae := range p.entries(keys["args"].val) {
			pr.Args = append(pr.Args, p.field(ae, "argument"))
		}
		if k, ok := keys["inputs"]; ok {
			pr.Inputs, _ = p.paths(k.val, false)
		}
		if k, ok := keys["outputs"]; ok {
			var complete bool
			pr.Outputs, complete = p.paths(k.val, true)
			p.partial[pr] = p.partial[pr] || !complete
			if pr.Semantic == Pure && len(k.val.Content) > 0 {
				p.errorf(k.key, "a pure process cannot have outputs (use semantic: effect)")
			}
		}
		if k, ok := keys["emits"]; ok {
			pr.Emits, p.emitPos[pr] = p.emits(k.val)
			if pr.Semantic == Pure && len(k.val.Content) > 0 {
				p.errorf(k.key, "a pure process cannot emit topics (use semantic: effect)")
			}
		}
		if k, ok := keys["result"]; ok {
			pr.Result = p.typeExpr(k.val)
		}
		if k, ok := keys["errors"]; ok {
			p.parseErrors(pr, k.val)
		}
		if k, ok := keys["rules"]; ok {
			p.parseRules(pr, k.val) // after the outputs it refers to
		}
	}
}

// paths resolves a list of inputs or outputs, and reports whether every
// entry of the list made it into the result.
func (p *parser) paths(n *yaml.Node, outputs bool) ([]*Path, bool) {
	var out []*Path
	items := p.strList(n)
	complete := isNull(n) || n.Kind == yaml.SequenceNode && len(items) == len(n.Content)
	for _, item := range items {
		pa := p.path(item)
		if pa == nil {
			complete = false
			continue
		}
		if outputs && pa.Field.Zone == ZoneGlobal {
			p.errorf(item, "%q cannot be an output: global state is read-only in processes", pa.Text)
			complete = false
			continue
		}
		if other := findOverlap(out, pa, outputs); other != nil {
			if other.Text == pa.Text {
				p.errorf(item, "duplicate path %q (first at %d:%d)", pa.Text, other.Pos.Line, other.Pos.Col)
			} else {
				// Two writes to nested paths would make the commit depend on
				// the order of the Set calls.
				p.errorf(item, "output %q overlaps output %q (other at %d:%d)",
					pa.Text, other.Text, other.Pos.Line, other.Pos.Col)
			}
			complete = false
			continue
		}
		out = append(out, pa)
	}
	return out, complete
}

// findOverlap returns the path in list equal to pa or, when nested is true,
// one that contains pa or is contained by it.
func findOverlap(list []*Path, pa *Path, nested bool) *Path {
	for _, o := range list {
		if o.Text == pa.Text {
			return o
		}
		if nested && (strings.HasPrefix(o.Text, pa.Text+".") || strings.HasPrefix(pa.Text, o.Text+".")) {
			return o
		}
	}
	return nil
}

// path resolves a state path "zone.field[.sub...]" written in n.
func (p *parser) path(n *yaml.Node) *Path {
	text := n.Value
	segs := strings.Split(text, ".")
	for _, s := range segs {
		if s == "" || strings.ContainsAny(s, "[]* \t") {
			p.errorf(n, "invalid path %q (expected zone.field, e.g. domain.user)", text)
			return nil
		}
	}
	zone := Zone(segs[0])
	if zone != ZoneDomain && zone != ZoneGlobal {
		if hint := didYouMean(segs[0], zoneNames, withSegment(segs, 0)); hint != "" {
			p.errorf(n, "unknown zone %q in path %q%s", segs[0], text, hint)
		} else {
			p.errorf(n, "unknown zone %q in path %q (expected domain or global)", segs[0], text)
		}
		return nil
	}
	if len(segs) == 1 {
		p.errorf(n, "path %q must name a state field (%s.FIELD)", text, zone)
		return nil
	}
	f, ok := p.state[segs[1]]
	switch {
	case (!ok || f.Zone != zone) && p.unresolved(zone, segs[1]):
		return nil
	case !ok:
		var names []string
		for _, f := range p.m.State {
			if f.Zone == zone {
				names = append(names, f.Name)
			}
		}
		p.errorf(n, "unknown state field %q in path %q%s", segs[1], text, didYouMean(segs[1], names, withSegment(segs, 1)))
		return nil
	case f.Zone != zone:
		p.errorf(n, "state field %q is in %s, not %s (path %q)", f.Name, f.Zone, zone, text)
		return nil
	}
	pa := &Path{Text: text, Field: f, GoName: f.GoName, Pos: p.pos(n)}
	pa.Sub, pa.Type = p.selectFields(n, text, f.Type, segs[2:])
	if pa.Type == nil {
		return nil // in error, already reported
	}
	for _, sf := range pa.Sub {
		pa.GoName += sf.GoName
	}
	return pa
}

// withSegment returns a func that gives the path segs with segment i
// replaced, for suggestions.
func withSegment(segs []string, i int) func(string) string {
	return func(s string) string {
		return strings.Join(slices.Concat(segs[:i], []string{s}, segs[i+1:]), ".")
	}
}

// emits resolves a list of topic names, and returns where each is written.
func (p *parser) emits(n *yaml.Node) ([]*Topic, []Pos) {
	var out []*Topic
	var pos []Pos
	first := map[string]*yaml.Node{}
	for _, item := range p.strList(n) {
		t, ok := p.topics[item.Value]
		switch f, dup := first[item.Value]; {
		case dup:
			p.errorf(item, "duplicate topic %q (first at %d:%d)", item.Value, f.Line, f.Column)
		case !ok && p.unresolved("topics", item.Value):
		case !ok:
			names := make([]string, len(p.m.Topics))
			for i, t := range p.m.Topics {
				names[i] = t.Name
			}
			p.reportUnknown("topic "+item.Value, p.pos(item), fmt.Sprintf("unknown topic %q", item.Value), didYouMean(item.Value, names, nil))
		default:
			first[item.Value] = item
			out = append(out, t)
			pos = append(pos, p.pos(item))
		}
	}
	return out, pos
}

// checkRecursion refuses structs that contain themselves by value, directly
// or through other structs: such a Go type has infinite size. A slice or a
// map breaks the cycle, so only fields of a Named type are followed.
func (p *parser) checkRecursion() {
	const (
		unvisited = iota
		active
		done
	)
	type edge struct {
		owner *Struct
		field *Field
	}
	state := map[*Struct]int{}
	var stack []edge
	var visit func(s *Struct)
	visit = func(s *Struct) {
		state[s] = active
		for _, f := range s.Fields {
			if f.Type == nil || f.Type.Kind != Named {
				continue
			}
			next := f.Type.Struct
			stack = append(stack, edge{s, f})
			switch state[next] {
			case active:
				// The cycle is the part of the stack that starts at next.
				i := len(stack) - 1
				for stack[i].owner != next {
					i--
				}
				var chain strings.Builder
				for _, e := range stack[i:] {
					fmt.Fprintf(&chain, "%s.%s -> ", e.owner.Name, e.field.Name)
				}
				chain.WriteString(next.Name)
				p.errs.add(stack[i].field.Pos, "type %q contains itself by value (%s); use a slice or a map to break the cycle",
					next.Name, chain.String())
			case unvisited:
				visit(next)
			}
			stack = stack[:len(stack)-1]
		}
		state[s] = done
	}
	for _, s := range p.m.Types {
		if state[s] == unvisited {
			visit(s)
		}
	}
}
