package engine

import (
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"unsafe"
)

// StateCodec lets a durable store persist a state whose Go type it does not
// know. The engine builds one from the generated Schema (Schema.State) and
// hands it to Store.Recover; a store keeps it to encode what later commits
// write.
//
// A state is seen as its top-level fields (domain.user, domain.accounts,
// global.max_email_len): a plain field is encoded whole, a collection entry
// by entry. A Record's Write of a nested path (domain.user.email) is
// persisted by re-encoding the top-level field that holds it (Field finds
// it).
type StateCodec interface {
	// Fields describes the top-level fields of both zones, in contract
	// order; the other methods refer to a field by its index here.
	Fields() []FieldInfo
	// Field returns the index of the top-level field that path is or lies
	// below ("domain.user.email" -> the index of "domain.user"), or -1.
	Field(path string) int
	// Format names the encoding of values ("json", or the type of the
	// codec given with WithCodec); a store refuses to decode values
	// written in another format.
	Format() string
	// AppendField appends the encoding of plain field i of state, a
	// Record.State, to dst. (Stores encode into buffers they reuse: an
	// encoding allocated per value would be garbage at once.)
	AppendField(dst []byte, state any, i int) ([]byte, error)
	// AppendEntry appends the encoding of the entry under key (as in
	// Write.Key) of collection field i of state to dst; ok is false, and
	// dst returned as is, when there is no such entry (it was deleted).
	AppendEntry(dst []byte, state any, i int, key string) (data []byte, ok bool, err error)
	// EncodeEntries calls yield with every entry of collection field i of
	// state, in ascending key order, until yield returns an error, which it
	// returns. data is valid only until yield returns: its buffer is
	// reused for the next entry.
	EncodeEntries(state any, i int, yield func(key string, data []byte) error) error
	// Decoder starts rebuilding a state from encoded fields and entries.
	Decoder() StateDecoder
}

// FieldInfo describes a top-level state field to a store.
type FieldInfo struct {
	// Path is the field's dotted path, e.g. "domain.user".
	Path string
	// Type fingerprints the field's type, structurally, from the contract
	// (e.g. "User{id string, email string, tags []string}"). A store
	// compares it with the one it recorded to detect schema drift.
	Type string
	// Collection is set for a collection: it is stored entry by entry.
	Collection bool
}

// StateDecoder rebuilds a state. Fields it is not given keep their zero
// value; a collection is built once, in State, from every entry given.
// Its methods are called from one goroutine; it decodes collection entries
// on others, as many as GOMAXPROCS, while the store reads on.
type StateDecoder interface {
	// Field decodes the value of plain field i.
	Field(i int, data []byte) error
	// Entry takes the entry under key of collection field i; data nil
	// deletes the entry (when changes are replayed). A later call for the
	// same key replaces the value. Entry copies data, which the caller may
	// reuse at once, and decodes it later: an entry that does not decode
	// fails State. Entries in ascending key
	// order build their collection fastest.
	Entry(i int, key string, data []byte) error
	// State waits for the entries to be decoded and returns the rebuilt
	// state, a *S of the engine's state type. A decoder whose State is not
	// called still ends its goroutines once they have decoded what they
	// were given.
	State() (any, error)
}

// StateField describes one top-level field of a state S for durable stores.
// Generated code declares one per state field in Schema.State, built with
// ValueField or CollectionField.
type StateField[S any] struct {
	f stateField
}

// stateField is a StateField with its state type erased (see stateFields).
type stateField struct {
	info FieldInfo
	// codec is a *valueCodec or a *collCodec. They are types rather than
	// closures so that the compiler makes their code once per type of
	// value, not once per field of a state (a contract may have
	// hundreds).
	codec fieldCodec
}

// fieldCodec encodes and decodes one field of a state (an S, seen as an
// unsafe pointer); a plain field
// implements encode and decode, a collection the others.
type fieldCodec interface {
	encode(c Codec, dst []byte, s unsafe.Pointer) ([]byte, error)
	decode(c Codec, s unsafe.Pointer, data []byte) error
	entry(c Codec, dst []byte, s unsafe.Pointer, key string) ([]byte, bool, error)
	entries(c Codec, s unsafe.Pointer, yield func(string, []byte) error) error
	// builder starts collecting the decoded entries of the field, at
	// path; workers bounds the goroutines that decode them (see
	// collBuilder).
	builder(c Codec, path string, workers chan struct{}) entryBuilder
	// lookup returns a pointer to the field's value in s (as a P), or to
	// the entry under key of a collection (as a *V), for invariants;
	// valueType is the type it points to, and keyOf the typed key.
	lookup(s unsafe.Pointer, key string) (any, bool)
	valueType() reflect.Type
	keyOf(key string) any
	// apply applies a value another engine's commit at version v left
	// (RemoteValue) to the field in s, a copy of a state whose nested
	// values it must not modify.
	apply(c Codec, s unsafe.Pointer, key string, data []byte, v uint64) error
	// check returns the error encoding p, a pointer to a value of the
	// field (or of an entry), with c gives, or encoding/json when c is
	// nil; set and put write a Patch's value or entry into s (patch.go).
	check(c Codec, p any) error
	// version returns the version that last wrote the entry under key of
	// a collection in s, and whether it exists (CollectionSpec.Version).
	version(s unsafe.Pointer, key string) (uint64, bool)
	set(s unsafe.Pointer, p any)
	put(s unsafe.Pointer, k, p any, v, edit uint64)
}

// entryBuilder collects the entries of one collection and stores the
// collection into a state at the end (finish), or fails there with the
// first entry that did not decode.
type entryBuilder interface {
	entry(key string, data []byte) error
	finish(s unsafe.Pointer) error
}

// ValueField describes the plain state field at path, of a type with
// fingerprint typ, that get locates in a state. appendJSON, if given (the
// generator gives it), appends a value as encoding/json would, byte for
// byte, without reflection; it is used unless the engine has WithCodec.
//
// P is the pointer type of the field's values. ValueField only adapts get
// and appendJSON to a valueCodec of states seen as unsafe pointers and
// values seen as any: the compiler makes the codec once, in this package,
// not once per state type or per type of value (a contract may have
// hundreds).
func ValueField[S, P any](path, typ string, get func(*S) P, appendJSON ...func([]byte, P) ([]byte, error)) StateField[S] {
	f := &valueCodec{get: func(s unsafe.Pointer) any { return get((*S)(s)) }, typ: reflect.TypeFor[P]().Elem()}
	if len(appendJSON) > 0 && appendJSON[0] != nil {
		aj := appendJSON[0]
		f.appendJSON = func(b []byte, v any) ([]byte, error) { return aj(b, v.(P)) }
	}
	return StateField[S]{stateField{info: FieldInfo{Path: path, Type: typ}, codec: f}}
}

type valueCodec struct {
	// get returns a pointer to the field in a state, as any.
	get        func(unsafe.Pointer) any
	typ        reflect.Type // what get's pointers point to
	appendJSON func([]byte, any) ([]byte, error)
}

func (f *valueCodec) encode(c Codec, dst []byte, s unsafe.Pointer) ([]byte, error) {
	v := f.get(s)
	if f.appendJSON != nil {
		if _, ok := c.(jsonCodec); ok {
			return f.appendJSON(dst, v)
		}
	}
	return appendMarshal(c, dst, v)
}

func (f *valueCodec) decode(c Codec, s unsafe.Pointer, data []byte) error {
	return c.Unmarshal(data, f.get(s))
}

func (f *valueCodec) apply(c Codec, s unsafe.Pointer, _ string, data []byte, _ uint64) error {
	// Into a zero value: decoding into the field as it is would write into
	// the slices and maps it shares with earlier snapshots. Reflection
	// zeroes what p points to (another engine's commit is the only
	// caller).
	p := f.get(s)
	reflect.ValueOf(p).Elem().SetZero()
	return c.Unmarshal(data, p)
}

func (f *valueCodec) lookup(s unsafe.Pointer, _ string) (any, bool) { return f.get(s), true }
func (f *valueCodec) valueType() reflect.Type                       { return f.typ }
func (f *valueCodec) keyOf(string) any                              { return nil }

// A plain field is never asked for entries (stateCodec.field checks).
func (*valueCodec) entry(Codec, []byte, unsafe.Pointer, string) ([]byte, bool, error) {
	panic("unreachable")
}
func (*valueCodec) entries(Codec, unsafe.Pointer, func(string, []byte) error) error {
	panic("unreachable")
}
func (*valueCodec) builder(Codec, string, chan struct{}) entryBuilder { panic("unreachable") }

// CollectionField describes the collection at path, of a type with
// fingerprint typ, that get locates in a state. appendJSON is as for
// ValueField, for the entries' values.
//
// CollectionField only adapts get and appendJSON to a collCodec of
// untyped items (see ptree): the compiler makes the codec, and the
// decoding of entries, once per key type, not once per state type or per
// type of value. get must return the address of a field of the state it
// is given (within it, not through a pointer): it is called once, here, to
// learn where the collection lies in a state.
func CollectionField[S any, K cmp.Ordered, V any](path, typ string, get func(*S) *Collection[K, V], appendJSON ...func([]byte, *V) ([]byte, error)) StateField[S] {
	var aj func([]byte, unsafe.Pointer) ([]byte, error)
	if len(appendJSON) > 0 && appendJSON[0] != nil {
		// The same function: a *V and an unsafe.Pointer are passed alike.
		aj = *(*func([]byte, unsafe.Pointer) ([]byte, error))(unsafe.Pointer(&appendJSON[0]))
	}
	s := new(S)
	off := uintptr(unsafe.Pointer(get(s))) - uintptr(unsafe.Pointer(s))
	if off > unsafe.Sizeof(*s)-unsafe.Sizeof(Collection[K, V]{}) {
		panic("theus: CollectionField " + path + ": get does not return a field of its state")
	}
	// reflect.TypeOf rather than reflect.TypeFor, which is itself
	// instantiated for every type of value.
	return StateField[S]{collectionField[K](path, typ, off, reflect.TypeOf((*pitem[V])(nil)).Elem(), aj)}
}

// collectionField is CollectionField for the collection at offset off in
// a state, of items of type item (a pitem[V]).
func collectionField[K cmp.Ordered](path, typ string, off uintptr, item reflect.Type, appendJSON func([]byte, unsafe.Pointer) ([]byte, error)) stateField {
	v := item.Field(1).Type
	e := &elemType{typ: v, item: item, flat: newFlatDecoder(v), appendJSON: appendJSON}
	return stateField{
		info: FieldInfo{Path: path, Type: typ, Collection: true},
		// A Collection[K, V] is its ptree[K].
		codec: &collCodec[K]{get: func(s unsafe.Pointer) *ptree[K] { return (*ptree[K])(unsafe.Add(s, off)) }, elem: e},
	}
}

// elemType describes the values of a collection to the untyped code: an
// item is a *pitem[V] whose value is at itemValue.
type elemType struct {
	typ  reflect.Type // V
	item reflect.Type // pitem[V]
	// appendJSON appends the JSON of the *V it is given, nil when the
	// generator gave none.
	appendJSON func([]byte, unsafe.Pointer) ([]byte, error)
	// flat decodes the entries' JSON without reflection, nil when V is
	// not a flat struct (flatDecoder).
	flat *flatDecoder
}

// itemValue returns a pointer to the value of the *pitem[V] it, whatever
// V: ver is a uint64 and no type is aligned beyond 8 bytes, so the value
// always follows it at offset 8.
func itemValue(it unsafe.Pointer) unsafe.Pointer { return unsafe.Add(it, itemValueOffset) }

const itemValueOffset = 8

// value returns the value at p, a *V, as an any holding a *V.
func (e *elemType) value(p unsafe.Pointer) any { return reflect.NewAt(e.typ, p).Interface() }

// newItems returns n zero items, in one allocation, and their size.
func (e *elemType) newItems(n int) (unsafe.Pointer, uintptr) {
	return reflect.MakeSlice(reflect.SliceOf(e.item), n, n).UnsafePointer(), e.item.Size()
}

// append appends the encoding of the value at p to dst.
func (e *elemType) append(c Codec, dst []byte, p unsafe.Pointer) ([]byte, error) {
	if e.appendJSON != nil {
		if _, ok := c.(jsonCodec); ok {
			return e.appendJSON(dst, p)
		}
	}
	return appendMarshal(c, dst, e.value(p))
}

// unmarshal decodes data, an entry's value, into the value at p, a zero
// value.
func (e *elemType) unmarshal(c Codec, data []byte, p unsafe.Pointer) error {
	if e.flat != nil {
		if _, ok := c.(jsonCodec); ok {
			if e.flat.decode(data, p) {
				return nil
			}
			reflect.NewAt(e.typ, p).Elem().SetZero()
		}
	}
	return c.Unmarshal(data, e.value(p))
}

type collCodec[K cmp.Ordered] struct {
	get  func(unsafe.Pointer) *ptree[K]
	elem *elemType
}

// A collection is never encoded whole (stateCodec.field checks).
func (*collCodec[K]) encode(Codec, []byte, unsafe.Pointer) ([]byte, error) { panic("unreachable") }
func (*collCodec[K]) decode(Codec, unsafe.Pointer, []byte) error           { panic("unreachable") }

func (f *collCodec[K]) entry(c Codec, dst []byte, s unsafe.Pointer, key string) ([]byte, bool, error) {
	k, err := parseKey[K](key)
	if err != nil {
		return dst, false, err
	}
	it := f.get(s).get(k)
	if it == nil {
		return dst, false, nil
	}
	b, err := f.elem.append(c, dst, itemValue(it))
	return b, true, err
}

func (f *collCodec[K]) lookup(s unsafe.Pointer, key string) (any, bool) {
	k, err := parseKey[K](key)
	if err != nil {
		return nil, false
	}
	it := f.get(s).get(k)
	if it == nil {
		return nil, false
	}
	return f.elem.value(itemValue(it)), true
}

func (f *collCodec[K]) valueType() reflect.Type { return f.elem.typ }

func (f *collCodec[K]) version(s unsafe.Pointer, key string) (uint64, bool) {
	k, err := parseKey[K](key)
	if err != nil {
		return 0, false
	}
	return f.get(s).version(k)
}

func (*valueCodec) version(unsafe.Pointer, string) (uint64, bool) { panic("unreachable") }

func (f *collCodec[K]) keyOf(key string) any {
	k, _ := parseKey[K](key)
	return k
}

func (f *collCodec[K]) entries(c Codec, s unsafe.Pointer, yield func(string, []byte) error) error {
	var buf []byte
	var err error
	f.get(s).walk(func(k K, it unsafe.Pointer) bool {
		if buf, err = f.elem.append(c, buf[:0], itemValue(it)); err != nil {
			return false
		}
		err = yield(keyString(k), buf)
		return err == nil
	})
	return err
}

func (f *collCodec[K]) apply(c Codec, s unsafe.Pointer, key string, data []byte, v uint64) error {
	k, err := parseKey[K](key)
	if err != nil {
		return err
	}
	t := f.get(s)
	if data == nil {
		*t = t.del(k)
		return nil
	}
	it, _ := f.elem.newItems(1)
	if err := f.elem.unmarshal(c, data, itemValue(it)); err != nil {
		return err
	}
	*(*uint64)(it) = v
	*t = t.set(k, it, newEdit())
	return nil
}

func (f *collCodec[K]) builder(c Codec, path string, workers chan struct{}) entryBuilder {
	return &collBuilder[K]{codec: c, elem: f.elem, path: path, get: f.get, workers: workers}
}

// parseKey is the inverse of keyString for a key type K.
func parseKey[K cmp.Ordered](s string) (K, error) {
	var k K
	var err error
	switch p := any(&k).(type) {
	case *string:
		*p = s
	case *int:
		var n int64
		n, err = strconv.ParseInt(s, 10, strconv.IntSize)
		*p = int(n)
	case *int8:
		var n int64
		n, err = strconv.ParseInt(s, 10, 8)
		*p = int8(n)
	case *int16:
		var n int64
		n, err = strconv.ParseInt(s, 10, 16)
		*p = int16(n)
	case *int32:
		var n int64
		n, err = strconv.ParseInt(s, 10, 32)
		*p = int32(n)
	case *int64:
		*p, err = strconv.ParseInt(s, 10, 64)
	case *uint:
		var n uint64
		n, err = strconv.ParseUint(s, 10, strconv.IntSize)
		*p = uint(n)
	case *uint8:
		var n uint64
		n, err = strconv.ParseUint(s, 10, 8)
		*p = uint8(n)
	case *uint16:
		var n uint64
		n, err = strconv.ParseUint(s, 10, 16)
		*p = uint16(n)
	case *uint32:
		var n uint64
		n, err = strconv.ParseUint(s, 10, 32)
		*p = uint32(n)
	case *uint64:
		*p, err = strconv.ParseUint(s, 10, 64)
	case *uintptr:
		var n uint64
		n, err = strconv.ParseUint(s, 10, strconv.IntSize)
		*p = uintptr(n)
	default:
		return k, fmt.Errorf("theus: collection key type %T is neither a string nor an integer", k)
	}
	if err != nil {
		return k, fmt.Errorf("theus: collection key %q: %w", s, err)
	}
	return k, nil
}

// jsonCodec is the default codec of state values: encoding/json, with the
// json tags generated from the contract's field names.
type jsonCodec struct{}

// appendValue appends the encoding of v to dst: with appendJSON, when
// generated code gave one and c is the default JSON codec, else with c.
func appendValue[P any](c Codec, appendJSON []func([]byte, P) ([]byte, error), dst []byte, v P) ([]byte, error) {
	if len(appendJSON) > 0 && appendJSON[0] != nil {
		if _, ok := c.(jsonCodec); ok {
			return appendJSON[0](dst, v)
		}
	}
	return appendMarshal(c, dst, v)
}

// appendMarshal appends the encoding of v with c to dst.
func appendMarshal(c Codec, dst []byte, v any) ([]byte, error) {
	b, err := c.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// stateCodec is the StateCodec of a state type S, which it reaches
// through ops.
type stateCodec struct {
	ops    *stateOps
	fields []stateField
	infos  []FieldInfo
	byPath map[string]int
	codec  Codec
	format string
	// migrations are WithMigrations', by path (see Migrator).
	migrations map[string]Migration
}

// newStateCodec returns the StateCodec of fields, encoding values with c
// (JSON when c is nil).
func newStateCodec(fields []stateField, ops *stateOps, c Codec) *stateCodec {
	sc := &stateCodec{ops: ops, fields: fields, byPath: make(map[string]int, len(fields)), codec: c, format: "json"}
	if c == nil {
		sc.codec = jsonCodec{}
	} else {
		sc.format = fmt.Sprintf("%T", c)
	}
	for i, f := range fields {
		sc.infos = append(sc.infos, f.info)
		sc.byPath[f.info.Path] = i
	}
	return sc
}

func (c *stateCodec) Fields() []FieldInfo { return c.infos }
func (c *stateCodec) Format() string      { return c.format }

func (c *stateCodec) Field(path string) int {
	// A top-level path is zone.field: cut after the second dot.
	if i := strings.IndexByte(path, '.'); i >= 0 {
		if j := strings.IndexByte(path[i+1:], '.'); j >= 0 {
			path = path[:i+1+j]
		}
	}
	if i, ok := c.byPath[path]; ok {
		return i
	}
	return -1
}

// state returns the *S in a Record.State.
func (c *stateCodec) state(v any) (unsafe.Pointer, error) {
	s := c.ops.unbox(v)
	if s == nil {
		return nil, fmt.Errorf("theus: state codec: got a state of type %T, want %v", v, c.ops.ptrType)
	}
	return s, nil
}

func (c *stateCodec) field(i int, collection bool) (*stateField, error) {
	if i < 0 || i >= len(c.fields) {
		return nil, fmt.Errorf("theus: state codec: no field %d", i)
	}
	f := &c.fields[i]
	if f.info.Collection != collection {
		if collection {
			return nil, fmt.Errorf("theus: state codec: %s is not a collection", f.info.Path)
		}
		return nil, fmt.Errorf("theus: state codec: %s is a collection", f.info.Path)
	}
	return f, nil
}

// lookup returns the *S in state and its field i, which must be a
// collection or not as said.
func (c *stateCodec) lookup(state any, i int, collection bool) (unsafe.Pointer, *stateField, error) {
	s, err := c.state(state)
	if err != nil {
		return nil, nil, err
	}
	f, err := c.field(i, collection)
	return s, f, err
}

func (c *stateCodec) AppendField(dst []byte, state any, i int) ([]byte, error) {
	s, err := c.state(state)
	if err != nil {
		return dst, err
	}
	return c.appendField(dst, s, i)
}

// appendField is AppendField of the state at s.
func (c *stateCodec) appendField(dst []byte, s unsafe.Pointer, i int) ([]byte, error) {
	f, err := c.field(i, false)
	if err != nil {
		return dst, err
	}
	b, err := f.codec.encode(c.codec, dst, s)
	if err != nil {
		return dst, fmt.Errorf("theus: encode %s: %w", f.info.Path, err)
	}
	return b, nil
}

func (c *stateCodec) AppendEntry(dst []byte, state any, i int, key string) ([]byte, bool, error) {
	s, f, err := c.lookup(state, i, true)
	if err != nil {
		return dst, false, err
	}
	b, ok, err := f.codec.entry(c.codec, dst, s, key)
	if err != nil {
		return dst, false, fmt.Errorf("theus: encode %s[%s]: %w", f.info.Path, key, err)
	}
	return b, ok, nil
}

func (c *stateCodec) EncodeEntries(state any, i int, yield func(key string, data []byte) error) error {
	s, f, err := c.lookup(state, i, true)
	if err != nil {
		return err
	}
	return f.codec.entries(c.codec, s, yield)
}

func (c *stateCodec) Decoder() StateDecoder {
	return &stateDecoder{c: c, s: c.ops.newState(), colls: make(map[int]entryBuilder),
		workers: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

type stateDecoder struct {
	c     *stateCodec
	s     unsafe.Pointer
	colls map[int]entryBuilder
	// workers bounds the goroutines decoding entries, of all collections
	// (collBuilder).
	workers chan struct{}
}

func (d *stateDecoder) Field(i int, data []byte) error {
	f, err := d.c.field(i, false)
	if err != nil {
		return err
	}
	if err := f.codec.decode(d.c.codec, d.s, data); err != nil {
		return fmt.Errorf("theus: decode %s: %w", f.info.Path, err)
	}
	return nil
}

func (d *stateDecoder) Entry(i int, key string, data []byte) error {
	f, err := d.c.field(i, true)
	if err != nil {
		return err
	}
	b := d.colls[i]
	if b == nil {
		b = f.codec.builder(d.c.codec, f.info.Path, d.workers)
		d.colls[i] = b
	}
	if err := b.entry(key, data); err != nil {
		return fmt.Errorf("theus: decode %s[%s]: %w", f.info.Path, key, err)
	}
	return nil
}

// State waits for the entries to be decoded and builds the collections.
// An entry that did not decode fails it (Entry only copies them).
func (d *stateDecoder) State() (any, error) {
	var first error
	for i := range len(d.c.fields) { // in field order: the same error every time
		if b := d.colls[i]; b != nil {
			if err := b.finish(d.s); err != nil && first == nil {
				first = err
			}
		}
	}
	clear(d.colls)
	if first != nil {
		return nil, first
	}
	return d.c.ops.box(d.s), nil
}

// applyRemote applies rv, a value another engine's commit at version v
// left, to s, a copy of a state (see SharedStore).
func (c *stateCodec) applyRemote(s unsafe.Pointer, rv RemoteValue, v uint64) error {
	if rv.Field < 0 || rv.Field >= len(c.fields) {
		return fmt.Errorf("no state field %d", rv.Field)
	}
	f := &c.fields[rv.Field]
	if !f.info.Collection && rv.Data == nil {
		return fmt.Errorf("%s: no value", f.info.Path)
	}
	if err := f.codec.apply(c.codec, s, rv.Key, rv.Data, v); err != nil {
		return fmt.Errorf("%s: %w", f.info.Path, err)
	}
	return nil
}
