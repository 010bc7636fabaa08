package contract

import (
	"errors"
	"fmt"
	"go/token"
	"strings"
	"unicode"
	"unicode/utf8"
)

// builtins are the Go basic types a contract may name directly.
var builtins = map[string]bool{
	"bool": true, "string": true, "int": true, "int8": true, "int16": true,
	"int32": true, "int64": true, "uint": true, "uint8": true, "uint16": true,
	"uint32": true, "uint64": true, "float32": true, "float64": true,
	"byte": true, "rune": true,
}

// isKeyType reports whether t can key a map or a topic: a string or an
// integer kind, so that keys have one obvious text form and a total order.
func isKeyType(t *Type) bool {
	return t.Kind == Builtin && t.Name != "bool" && !strings.HasPrefix(t.Name, "float")
}

// typeParser parses one type expression. The grammar is tiny, so it is
// parsed by hand rather than with go/parser: that keeps every refusal (a
// pointer, a channel, an array) a sentence about the contract instead of a Go
// syntax error, and leaves no Go expression kinds half-supported.
type typeParser struct {
	s       string // the whole expression, for messages
	rest    string // what is left to parse
	types   map[string]*Struct
	imports map[string]*Import
}

// parseType resolves the type expression s against the declared types and
// imports. Type.Expr is rebuilt from the parse, so it has no spaces. The
// error is a sentence for the user, reported at the expression.
func parseType(s string, types map[string]*Struct, imports map[string]*Import) (*Type, error) {
	p := &typeParser{s: s, rest: s, types: types, imports: imports}
	p.skipSpace()
	if p.rest == "" {
		return nil, errors.New("expected a type")
	}
	t, err := p.parse()
	if err != nil {
		return nil, err
	}
	if p.skipSpace(); p.rest != "" {
		return nil, p.invalid()
	}
	return t, nil
}

func (p *typeParser) invalid() error {
	return fmt.Errorf("invalid type %q", p.s)
}

func (p *typeParser) skipSpace() { p.rest = strings.TrimLeftFunc(p.rest, unicode.IsSpace) }

// eat consumes tok (after spaces) if it comes next.
func (p *typeParser) eat(tok string) bool {
	p.skipSpace()
	var ok bool
	p.rest, ok = strings.CutPrefix(p.rest, tok)
	return ok
}

// ident consumes an identifier, or returns "".
func (p *typeParser) ident() string {
	p.skipSpace()
	end := 0
	for end < len(p.rest) {
		r, size := utf8.DecodeRuneInString(p.rest[end:])
		if !unicode.IsLetter(r) && r != '_' && !(end > 0 && unicode.IsDigit(r)) {
			break
		}
		end += size
	}
	id := p.rest[:end]
	p.rest = p.rest[end:]
	return id
}

func (p *typeParser) parse() (*Type, error) {
	switch {
	case p.eat("*"):
		return nil, errors.New(refusedPointer)
	case p.eat("<-"):
		return nil, errors.New(refusedChan)
	case p.eat("["):
		if !p.eat("]") {
			return nil, fmt.Errorf("%s (%q)", refusedArray, p.s)
		}
		elem, err := p.parse()
		if err != nil {
			return nil, err
		}
		return &Type{Kind: Slice, Elem: elem, Expr: "[]" + elem.Expr}, nil
	}
	name := p.ident()
	switch name {
	case "":
		return nil, p.invalid()
	case "map":
		return p.parseMap()
	case "chan":
		return nil, errors.New(refusedChan)
	case "func":
		return nil, errors.New(refusedFunc)
	case "any", "interface", "error":
		return nil, errors.New(refusedInterface)
	case "struct":
		return nil, errors.New("anonymous structs are not allowed; declare the struct under types:")
	}
	if p.eat(".") {
		return p.imported(name)
	}
	if builtins[name] {
		return &Type{Kind: Builtin, Name: name, Expr: name}, nil
	}
	if s, ok := p.types[name]; ok {
		return &Type{Kind: Named, Name: name, Struct: s, Expr: name}, nil
	}
	return nil, &unknownError{scope: "types", name: name, expr: name, msg: fmt.Sprintf("unknown type %q", name)}
}

// unknownError is a name not found in scope ("types" or "imports"). The
// parser drops it when the name may be declared in a part of the contract
// that is in error.
type unknownError struct {
	scope  string
	name   string // the type's name, or the import alias
	member string // for an alias, the type's name in the package
	expr   string // the type as written: the name or alias.Name
	msg    string
}

func (e *unknownError) Error() string { return e.msg }

func (p *typeParser) parseMap() (*Type, error) {
	if !p.eat("[") {
		return nil, p.invalid()
	}
	key, err := p.parse()
	if err != nil {
		return nil, err
	}
	if !p.eat("]") {
		return nil, p.invalid()
	}
	elem, err := p.parse()
	if err != nil {
		return nil, err
	}
	if !isKeyType(key) {
		return nil, fmt.Errorf("invalid map key type %q: use string or an integer type", key.Expr)
	}
	return &Type{Kind: Map, Key: key, Elem: elem, Expr: "map[" + key.Expr + "]" + elem.Expr}, nil
}

func (p *typeParser) imported(alias string) (*Type, error) {
	name := p.ident()
	if name == "" {
		return nil, p.invalid()
	}
	expr := alias + "." + name
	imp, ok := p.imports[alias]
	if !ok {
		return nil, &unknownError{scope: "imports", name: alias, member: name, expr: expr,
			msg: fmt.Sprintf("unknown type %q: no import alias %q under imports:", expr, alias)}
	}
	if !token.IsExported(name) {
		return nil, fmt.Errorf("type %q is not exported by %q", expr, imp.Path)
	}
	return &Type{Kind: Imported, Name: name, Import: imp, Expr: expr}, nil
}
