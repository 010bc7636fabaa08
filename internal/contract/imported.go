package contract

import (
	"fmt"
	"go/token"
	"go/types"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"golang.org/x/tools/go/packages"
)

// Types of other packages. A durable store keeps an imported value as
// encoding/json writes it and compares a fingerprint of its type to detect
// schema drift, so the compiler reads the type with go/types: to refuse
// what SPEC §8 refuses in state (a func, an interface, a channel, a
// pointer, a struct with fields that would not be stored), at any depth,
// and to describe in Type.Under what is stored, for the fingerprint.

// Why a kind of type cannot be state: the same sentences for YAML type
// expressions, struct tags and the types of other packages.
const (
	refusedPointer   = "pointers are not allowed in state; use values"
	refusedChan      = "channels are not allowed"
	refusedFunc      = "func types are not allowed"
	refusedInterface = "interface types are not allowed; use a concrete type"
	refusedArray     = "arrays are not supported; use a slice"
)

// refusedKind says why the Go type u (an underlying type) cannot be
// state, or returns "" when its kind can be.
func refusedKind(u types.Type) string {
	switch u := u.(type) {
	case *types.Basic:
		if !builtins[u.Name()] {
			return fmt.Sprintf("type %s is not supported", u.Name())
		}
	case *types.Array:
		return refusedArray
	case *types.Pointer:
		return refusedPointer
	case *types.Chan:
		return refusedChan
	case *types.Signature:
		return refusedFunc
	case *types.Interface:
		return refusedInterface
	}
	return ""
}

// isTimeLeaf reports whether obj is time.Time or time.Duration, which are
// stored as they encode themselves and fingerprinted by name.
func isTimeLeaf(obj *types.TypeName) bool {
	return obj.Pkg() != nil && obj.Pkg().Path() == "time" && (obj.Name() == "Time" || obj.Name() == "Duration")
}

// importedReader reads named types of other packages, each once: a type
// may be met many times, and inside itself.
type importedReader struct {
	read map[string]*importedType // by the type's name with its package path
}

type importedType struct {
	typ *Type // Kind Imported; Under is set once the type is read
	// problem says why the type cannot be state, "" when it can.
	problem string
}

func newImportedReader() *importedReader {
	return &importedReader{read: map[string]*importedType{}}
}

// named returns the Type of n, a named type of another package, and why
// it cannot be state ("" when it can). Top-level types, as a contract
// names them, must be structs, slices, maps or basic kinds.
func (r *importedReader) named(n *types.Named) (*Type, string) {
	t, problem := r.nested(n)
	if problem == "" && t.Under != nil {
		if _, ok := n.Underlying().(*types.Struct); !ok && t.Under.Kind != Builtin && t.Under.Kind != Slice && t.Under.Kind != Map {
			problem = "an imported type must be a struct, a slice, a map or a basic type"
		}
	}
	return t, problem
}

// nested is named for a type met inside another.
func (r *importedReader) nested(n *types.Named) (*Type, string) {
	key := types.TypeString(n, nil)
	if it, ok := r.read[key]; ok {
		return it.typ, it.problem // for a type met inside itself, Under is not set yet
	}
	obj := n.Obj()
	pkg := obj.Pkg()
	it := &importedType{typ: &Type{
		Kind:   Imported,
		Name:   obj.Name(),
		Import: &Import{Alias: pkg.Name(), Path: pkg.Path()},
		Expr:   pkg.Name() + "." + obj.Name(),
	}}
	r.read[key] = it
	switch {
	case isTimeLeaf(obj):
	case n.TypeArgs().Len() > 0 || n.TypeParams().Len() > 0:
		it.problem = "generic types are not supported"
	default:
		it.typ.Under, it.problem = r.convert(n.Underlying())
	}
	return it.typ, it.problem
}

// convert describes the Go type u, met inside an imported type, as it is
// stored; or says why it cannot be state.
func (r *importedReader) convert(u types.Type) (*Type, string) {
	if problem := refusedKind(u); problem != "" {
		return nil, problem
	}
	switch u := types.Unalias(u).(type) {
	case *types.Basic:
		return &Type{Kind: Builtin, Name: u.Name(), Expr: u.Name()}, ""
	case *types.Named:
		t, problem := r.nested(u)
		if problem != "" {
			return nil, t.Expr + ": " + problem
		}
		return t, ""
	case *types.Slice:
		elem, problem := r.convert(u.Elem())
		if problem != "" {
			return nil, problem
		}
		return &Type{Kind: Slice, Elem: elem, Expr: "[]" + elem.Expr}, ""
	case *types.Map:
		if b, ok := u.Key().Underlying().(*types.Basic); !ok || !isKeyType(&Type{Kind: Builtin, Name: b.Name()}) {
			return nil, fmt.Sprintf("invalid map key type %s: use string or an integer type", types.TypeString(u.Key(), packageName))
		}
		key, problem := r.convert(u.Key())
		if problem != "" {
			return nil, problem
		}
		elem, problem := r.convert(u.Elem())
		if problem != "" {
			return nil, problem
		}
		return &Type{Kind: Map, Key: key, Elem: elem, Expr: "map[" + key.Expr + "]" + elem.Expr}, ""
	case *types.Struct:
		return r.structOf(u)
	}
	return nil, fmt.Sprintf("type %s is not supported", types.TypeString(u, packageName))
}

// structOf describes struct st by the fields encoding/json writes, under
// the names it writes them with. A field it would not write, or would
// write under the name of another, would be lost by a durable store: it is
// refused, like a field it would flatten.
func (r *importedReader) structOf(st *types.Struct) (*Type, string) {
	s := &Struct{}
	byName := map[string]*Field{}
	for i := range st.NumFields() {
		v := st.Field(i)
		switch {
		case v.Name() == "_":
			continue // holds nothing that can be read or written
		case v.Embedded():
			return nil, fmt.Sprintf("field %s is embedded, which encoding/json would flatten; an imported struct must name its fields", v.Name())
		case !v.Exported():
			return nil, fmt.Sprintf("field %s is unexported; an imported struct must have only exported fields (time.Time excepted)", v.Name())
		}
		name := v.Name()
		if tag, ok := reflect.StructTag(st.Tag(i)).Lookup("json"); ok {
			if tag == "-" {
				return nil, fmt.Sprintf("field %s is tagged json:\"-\", so a durable store would not keep it", v.Name())
			}
			if n, _, _ := strings.Cut(tag, ","); ValidJSONName(n) {
				name = n
			}
		}
		if other := byName[name]; other != nil {
			return nil, fmt.Sprintf("fields %s and %s are both encoded as %q, so encoding/json would drop one", other.GoName, v.Name(), name)
		}
		typ, problem := r.convert(v.Type())
		if inner, ok := strings.CutPrefix(problem, "field "); ok {
			return nil, "field " + v.Name() + "." + inner // field Meta.Body: ...
		} else if problem != "" {
			return nil, "field " + v.Name() + ": " + problem
		}
		f := &Field{Name: name, GoName: v.Name(), Type: typ}
		byName[name] = f
		s.Fields = append(s.Fields, f)
	}
	return &Type{Kind: ImportedStruct, Struct: s, Expr: "struct{...}"}, ""
}

// packageName qualifies a type by its package's name, as Go code names it.
func packageName(p *types.Package) string { return p.Name() }

// importUse is a type expression of the contract that names an imported
// type, and where it is written.
type importUse struct {
	typ *Type
	pos Pos
}

// resolveImports reads the imported types that the contract's type
// expressions name, from the packages as the module holding the contract
// sees them, and reports those that cannot be state at their expressions.
func (p *parser) resolveImports() {
	// Only the imports that are not in error are loaded: the others are
	// reported already.
	var used []*Import
	for _, u := range p.importUses {
		if imp := u.typ.Import; slices.Contains(p.m.Imports, imp) && !slices.Contains(used, imp) {
			used = append(used, imp)
		}
	}
	if len(used) == 0 {
		return
	}
	paths := make([]string, len(used))
	for i, imp := range used {
		paths[i] = imp.Path
	}
	cfg := &packages.Config{Mode: packages.NeedName | packages.NeedTypes, Dir: filepath.Dir(p.file)}
	pkgs, err := packages.Load(cfg, paths...)
	if err != nil {
		for _, imp := range used {
			p.errs.add(imp.Pos, "cannot load package %q: %s", imp.Path, loadError(err.Error()))
		}
		return
	}
	byPath := map[string]*packages.Package{}
	for _, pkg := range pkgs {
		byPath[pkg.PkgPath] = pkg
	}
	for _, imp := range used {
		switch pkg := byPath[imp.Path]; {
		case pkg == nil:
			p.errs.add(imp.Pos, "cannot load package %q", imp.Path)
		case len(pkg.Errors) > 0:
			p.errs.add(imp.Pos, "cannot load package %q: %s", imp.Path, loadError(pkg.Errors[0].Msg))
			delete(byPath, imp.Path)
		}
	}
	r := newImportedReader()
	for _, u := range p.importUses {
		pkg := byPath[u.typ.Import.Path]
		if pkg == nil || !slices.Contains(used, u.typ.Import) {
			continue // reported at the import
		}
		tn, ok := pkg.Types.Scope().Lookup(u.typ.Name).(*types.TypeName)
		if !ok {
			var names []string
			for _, name := range pkg.Types.Scope().Names() {
				if _, isType := pkg.Types.Scope().Lookup(name).(*types.TypeName); isType && token.IsExported(name) {
					names = append(names, name)
				}
			}
			alias := u.typ.Import.Alias
			p.errs.add(u.pos, "package %q declares no type %s%s", u.typ.Import.Path, u.typ.Name,
				didYouMean(u.typ.Name, names, func(name string) string { return alias + "." + name }))
			continue
		}
		var problem string
		if n, ok := types.Unalias(tn.Type()).(*types.Named); ok {
			var t *Type
			t, problem = r.named(n)
			u.typ.Under = t.Under
		} else {
			// An alias of a type literal: described as it is.
			u.typ.Under, problem = r.convert(tn.Type())
		}
		if problem != "" {
			p.errs.add(u.pos, "imported type %s: %s", u.typ.Expr, problem)
		}
	}
}

// importUses returns the imported types that t names.
func importUses(t *Type, pos Pos) []importUse {
	switch t.Kind {
	case Imported:
		return []importUse{{t, pos}}
	case Slice:
		return importUses(t.Elem, pos)
	case Map:
		return append(importUses(t.Key, pos), importUses(t.Elem, pos)...)
	}
	return nil
}

// loadError is the first line of an error of the go command, without the
// advice that follows it ("; to add it:", then a go get command line).
func loadError(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	line, _, _ = strings.Cut(line, "; to add it:")
	return line
}
