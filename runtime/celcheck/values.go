package celcheck

import (
	"fmt"
	"reflect"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// provider declares the Objects of a check's variables to CEL and, at run
// time, reads their fields from the Go values by reflection, without
// copying them: an object is a pointer into the value checked.
type provider struct {
	*types.Registry
	objects map[string]*Type
	byGo    map[reflect.Type]*Type
}

func newProvider(roots ...*Type) (*provider, error) {
	reg, err := types.NewRegistry()
	if err != nil {
		return nil, err
	}
	p := &provider{Registry: reg, objects: map[string]*Type{}, byGo: map[reflect.Type]*Type{}}
	for _, t := range roots {
		if t != nil {
			p.add(t)
		}
	}
	return p, nil
}

func (p *provider) add(t *Type) {
	switch t.Kind {
	case List:
		p.add(t.Elem)
	case Map:
		p.add(t.Key)
		p.add(t.Elem)
	case Object:
		if _, seen := p.objects[t.Name]; seen {
			return
		}
		p.objects[t.Name] = t
		t.buildIndex()
		if t.goType != nil {
			p.byGo[t.goType] = t
		}
		for _, f := range t.Fields {
			p.add(f.Type)
		}
	}
}

func (p *provider) FindStructType(name string) (*types.Type, bool) {
	if _, ok := p.objects[name]; ok {
		return types.NewTypeTypeWithParam(types.NewObjectType(name)), true
	}
	return p.Registry.FindStructType(name)
}

func (p *provider) FindStructFieldNames(name string) ([]string, bool) {
	t, ok := p.objects[name]
	if !ok {
		return p.Registry.FindStructFieldNames(name)
	}
	names := make([]string, len(t.Fields))
	for i, f := range t.Fields {
		names[i] = f.Name
	}
	return names, true
}

func (p *provider) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	t, ok := p.objects[name]
	if !ok {
		return p.Registry.FindStructFieldType(name, field)
	}
	f := t.Field(field)
	if f == nil {
		return nil, false
	}
	get := func(target any) (any, error) {
		o, ok := target.(*object)
		if !ok {
			return nil, fmt.Errorf("celcheck: field %s of %T", field, target)
		}
		return p.value(o.v.Field(f.goIndex), f.Type), nil
	}
	return &types.FieldType{Type: f.Type.cel(), IsSet: func(any) bool { return true }, GetFrom: get}, true
}

func (p *provider) NewValue(name string, _ map[string]ref.Val) ref.Val {
	return types.NewErr("celcheck: cannot create a %s in a check", name)
}

// NativeToValue adapts the elements of lists and maps of structs.
func (p *provider) NativeToValue(v any) ref.Val {
	if val, ok := v.(ref.Val); ok { // a field read by FindStructFieldType
		return val
	}
	rv := reflect.ValueOf(v)
	if t, ok := p.byGo[rv.Type()]; ok {
		ptr := reflect.New(rv.Type())
		ptr.Elem().Set(rv)
		return &object{v: ptr.Elem(), t: t, p: p}
	}
	return p.Registry.NativeToValue(v)
}

// value returns the CEL value of v, which has type t. v is addressable
// (it lies in the value a pointer was given to), so nothing is copied.
func (p *provider) value(v reflect.Value, t *Type) ref.Val {
	switch t.Kind {
	case Bool:
		return types.Bool(v.Bool())
	case Int:
		return types.Int(v.Int())
	case Uint:
		return types.Uint(v.Uint())
	case Double:
		return types.Double(v.Float())
	case String:
		return types.String(v.String())
	case Timestamp:
		return types.Timestamp{Time: *v.Addr().Interface().(*time.Time)}
	case Duration:
		return types.Duration{Duration: time.Duration(v.Int())}
	case List:
		return types.NewDynamicList(p, v.Interface())
	case Map:
		return types.NewDynamicMap(p, v.Interface())
	}
	return &object{v: v, t: t, p: p}
}

// object is a Go struct seen by CEL.
type object struct {
	v reflect.Value
	t *Type
	p *provider
}

var _ traits.Indexer = (*object)(nil)

func (o *object) ConvertToNative(typeDesc reflect.Type) (any, error) {
	if o.v.Type() == typeDesc {
		return o.v.Interface(), nil
	}
	if reflect.PointerTo(o.v.Type()) == typeDesc && o.v.CanAddr() {
		return o.v.Addr().Interface(), nil
	}
	return nil, fmt.Errorf("celcheck: cannot convert %s to %v", o.t.Name, typeDesc)
}

func (o *object) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.TypeType:
		return types.NewObjectType(o.t.Name)
	}
	if t.TypeName() == o.t.Name {
		return o
	}
	return types.NewErr("celcheck: cannot convert %s to %s", o.t.Name, t.TypeName())
}

func (o *object) Equal(other ref.Val) ref.Val {
	x, ok := other.(*object)
	if !ok || x.t != o.t {
		return types.False
	}
	return types.Bool(reflect.DeepEqual(o.v.Interface(), x.v.Interface()))
}

func (o *object) Type() ref.Type { return types.NewObjectType(o.t.Name) }

// Value returns the object itself: field selections planned with the
// provider's FieldType read it back (see FindStructFieldType).
func (o *object) Value() any { return o }

func (o *object) Get(index ref.Val) ref.Val {
	name, ok := index.(types.String)
	if !ok {
		return types.NewErr("celcheck: no field %v in %s", index, o.t.Name)
	}
	f := o.t.Field(string(name))
	if f == nil {
		return types.NewErr("celcheck: no field %s in %s", name, o.t.Name)
	}
	return o.p.value(o.v.Field(f.goIndex), f.Type)
}
