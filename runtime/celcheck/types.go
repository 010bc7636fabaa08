package celcheck

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"
)

// Kind classifies a Type.
type Kind uint8

const (
	Bool Kind = iota
	Int
	Uint
	Double
	String
	Timestamp
	Duration
	List
	Map
	Object
)

// Type describes to CEL a value that a check reads: theusgen builds it from
// the contract to type-check expressions, the runtime from the Go types the
// contract generated (TypeOf), so that both see the same names and kinds.
type Type struct {
	Kind Kind
	// Name names an Object in messages ("Event", "money.Amount").
	Name string
	// Elem is the element type of a List or a Map; Key the key type of a Map.
	Elem, Key *Type
	// Fields are an Object's fields, by their contract (JSON) names.
	Fields []Field

	index  map[string]int // Fields by name
	goType reflect.Type   // set by TypeOf
}

// Field is a field of an Object.
type Field struct {
	Name string
	Type *Type
	// goIndex locates the field in its Go struct (TypeOf only).
	goIndex int
}

// Field returns the field called name, or nil. A Type is read by
// evaluations running at once: its index is built by Compile (newProvider
// indexes every Type it reaches), not here, unless nothing built it yet.
func (t *Type) Field(name string) *Field {
	if t.index == nil {
		t.buildIndex()
	}
	if i, ok := t.index[name]; ok {
		return &t.Fields[i]
	}
	return nil
}

func (t *Type) buildIndex() {
	t.index = make(map[string]int, len(t.Fields))
	for i, f := range t.Fields {
		t.index[f.Name] = i
	}
}

// cel returns the CEL type of t.
func (t *Type) cel() *types.Type {
	switch t.Kind {
	case Bool:
		return types.BoolType
	case Int:
		return types.IntType
	case Uint:
		return types.UintType
	case Double:
		return types.DoubleType
	case String:
		return types.StringType
	case Timestamp:
		return types.TimestampType
	case Duration:
		return types.DurationType
	case List:
		return types.NewListType(t.Elem.cel())
	case Map:
		return types.NewMapType(t.Key.cel(), t.Elem.cel())
	}
	return types.NewObjectType(t.Name)
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[time.Duration]()
)

// TypeOf describes the Go type t as CEL sees it: structs are objects whose
// fields are named as encoding/json names them, as the contract does.
func TypeOf(t reflect.Type) (*Type, error) {
	return typeOf(t, map[reflect.Type]*Type{})
}

func typeOf(t reflect.Type, seen map[reflect.Type]*Type) (*Type, error) {
	switch t {
	case timeType:
		return &Type{Kind: Timestamp}, nil
	case durationType:
		return &Type{Kind: Duration}, nil
	}
	if d, ok := seen[t]; ok {
		return d, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return &Type{Kind: Bool}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &Type{Kind: Int}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &Type{Kind: Uint}, nil
	case reflect.Float32, reflect.Float64:
		return &Type{Kind: Double}, nil
	case reflect.String:
		return &Type{Kind: String}, nil
	case reflect.Slice:
		e, err := typeOf(t.Elem(), seen)
		if err != nil {
			return nil, err
		}
		return &Type{Kind: List, Elem: e, goType: t}, nil
	case reflect.Map:
		k, err := typeOf(t.Key(), seen)
		if err != nil {
			return nil, err
		}
		e, err := typeOf(t.Elem(), seen)
		if err != nil {
			return nil, err
		}
		return &Type{Kind: Map, Key: k, Elem: e, goType: t}, nil
	case reflect.Struct:
		d := &Type{Kind: Object, Name: goTypeName(t), goType: t}
		seen[t] = d
		for i := range t.NumField() {
			f := t.Field(i)
			name, skip := jsonName(f)
			if skip {
				continue
			}
			ft, err := typeOf(f.Type, seen)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.Name, err)
			}
			d.Fields = append(d.Fields, Field{Name: name, Type: ft, goIndex: i})
		}
		return d, nil
	}
	return nil, fmt.Errorf("type %s cannot be checked with CEL", t)
}

// goTypeName names a struct to CEL: qualified by its package's name
// ("golden.Event", "money.Amount"), so that two types of one name in
// different packages stay two objects.
func goTypeName(t reflect.Type) string {
	if t.Name() == "" {
		return "object"
	}
	return t.String()
}

// jsonName is the name encoding/json gives f, and whether it skips f.
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", true
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", true
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, false
}
