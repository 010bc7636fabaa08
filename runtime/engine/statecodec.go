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
	info FieldInfo
	// codec is a *valueCodec or a *collCodec. They are types rather than
	// closures so that the compiler makes their code once per type of
	// value, not once per field of a state (a contract may have
	// hundreds).
	codec fieldCodec[S]
}

// fieldCodec encodes and decodes one field of a state S; a plain field
// implements encode and decode, a collection the others.
type fieldCodec[S any] interface {
	encode(c Codec, dst []byte, s *S) ([]byte, error)
	decode(c Codec, s *S, data []byte) error
	entry(c Codec, dst []byte, s *S, key string) ([]byte, bool, error)
	entries(c Codec, s *S, yield func(string, []byte) error) error
	// builder starts collecting the decoded entries of the field, at
	// path; workers bounds the goroutines that decode them (see
	// collBuilder).
	builder(c Codec, path string, workers chan struct{}) entryBuilder[S]
	// lookup returns a pointer to the field's value in s (as a P), or to
	// the entry under key of a collection (as a *V), for invariants;
	// valueType is the type it points to, and keyOf the typed key.
	lookup(s *S, key string) (any, bool)
	valueType() reflect.Type
	keyOf(key string) any
	// apply applies a value another engine's commit at version v left
	// (RemoteValue) to the field in s, a copy of a state whose nested
	// values it must not modify.
	apply(c Codec, s *S, key string, data []byte, v uint64) error
}

// entryBuilder collects the entries of one collection and stores the
// collection into a state at the end (finish), or fails there with the
// first entry that did not decode.
type entryBuilder[S any] interface {
	entry(key string, data []byte) error
	finish(s *S) error
}

// ValueField describes the plain state field at path, of a type with
// fingerprint typ, that get locates in a state. appendJSON, if given (the
// generator gives it), appends a value as encoding/json would, byte for
// byte, without reflection; it is used unless the engine has WithCodec.
//
// P is the pointer type of the field's values: the compiler makes one
// valueCodec per state type for all of them, not one per type of value.
func ValueField[S, P any](path, typ string, get func(*S) P, appendJSON ...func([]byte, P) ([]byte, error)) StateField[S] {
	return StateField[S]{info: FieldInfo{Path: path, Type: typ}, codec: &valueCodec[S, P]{get: get, appendJSON: appendJSON}}
}

type valueCodec[S, P any] struct {
	get        func(*S) P
	appendJSON []func([]byte, P) ([]byte, error)
}

func (f *valueCodec[S, P]) encode(c Codec, dst []byte, s *S) ([]byte, error) {
	return appendValue(c, f.appendJSON, dst, f.get(s))
}

func (f *valueCodec[S, P]) decode(c Codec, s *S, data []byte) error {
	return c.Unmarshal(data, f.get(s))
}

func (f *valueCodec[S, P]) apply(c Codec, s *S, _ string, data []byte, _ uint64) error {
	// Into a zero value: decoding into the field as it is would write into
	// the slices and maps it shares with earlier snapshots. P is a pointer
	// type, which the type parameter cannot say: reflection zeroes what it
	// points to (another engine's commit is the only caller).
	p := f.get(s)
	reflect.ValueOf(p).Elem().SetZero()
	return c.Unmarshal(data, p)
}

func (f *valueCodec[S, P]) lookup(s *S, _ string) (any, bool) { return f.get(s), true }
func (f *valueCodec[S, P]) valueType() reflect.Type           { return reflect.TypeFor[P]().Elem() }
func (f *valueCodec[S, P]) keyOf(string) any                  { return nil }

// A plain field is never asked for entries (stateCodec.field checks).
func (*valueCodec[S, P]) entry(Codec, []byte, *S, string) ([]byte, bool, error) { panic("unreachable") }
func (*valueCodec[S, P]) entries(Codec, *S, func(string, []byte) error) error   { panic("unreachable") }
func (*valueCodec[S, P]) builder(Codec, string, chan struct{}) entryBuilder[S]  { panic("unreachable") }

// CollectionField describes the collection at path, of a type with
// fingerprint typ, that get locates in a state. appendJSON is as for
// ValueField, for the entries' values.
func CollectionField[S any, K cmp.Ordered, V any](path, typ string, get func(*S) *Collection[K, V], appendJSON ...func([]byte, *V) ([]byte, error)) StateField[S] {
	return StateField[S]{
		info:  FieldInfo{Path: path, Type: typ, Collection: true},
		codec: &collCodec[S, K, V]{get: get, appendJSON: appendJSON, flat: newFlatDecoder(reflect.TypeFor[V]())},
	}
}

type collCodec[S any, K cmp.Ordered, V any] struct {
	get        func(*S) *Collection[K, V]
	appendJSON []func([]byte, *V) ([]byte, error)
	// flat decodes the entries' JSON without reflection, nil when V is
	// not a flat struct (flatDecoder).
	flat *flatDecoder
}

// unmarshal decodes data, an entry's value, into v, a zero value.
func (f *collCodec[S, K, V]) unmarshal(c Codec, data []byte, v *V) error {
	if f.flat != nil {
		if _, ok := c.(jsonCodec); ok {
			if f.flat.decode(data, unsafe.Pointer(v)) {
				return nil
			}
			var zero V
			*v = zero
		}
	}
	return c.Unmarshal(data, v)
}

// A collection is never encoded whole (stateCodec.field checks).
func (*collCodec[S, K, V]) encode(Codec, []byte, *S) ([]byte, error) { panic("unreachable") }
func (*collCodec[S, K, V]) decode(Codec, *S, []byte) error           { panic("unreachable") }

func (f *collCodec[S, K, V]) entry(c Codec, dst []byte, s *S, key string) ([]byte, bool, error) {
	k, err := parseKey[K](key)
	if err != nil {
		return dst, false, err
	}
	v, ok := f.get(s).Get(k)
	if !ok {
		return dst, false, nil
	}
	b, err := appendValue(c, f.appendJSON, dst, v)
	return b, true, err
}

func (f *collCodec[S, K, V]) lookup(s *S, key string) (any, bool) {
	k, err := parseKey[K](key)
	if err != nil {
		return nil, false
	}
	v, ok := f.get(s).Get(k)
	return v, ok
}

func (f *collCodec[S, K, V]) valueType() reflect.Type { return reflect.TypeFor[V]() }

func (f *collCodec[S, K, V]) keyOf(key string) any {
	k, _ := parseKey[K](key)
	return k
}

func (f *collCodec[S, K, V]) entries(c Codec, s *S, yield func(string, []byte) error) error {
	var buf []byte
	for k, v := range f.get(s).All() {
		var err error
		if buf, err = appendValue(c, f.appendJSON, buf[:0], v); err != nil {
			return err
		}
		if err := yield(keyString(k), buf); err != nil {
			return err
		}
	}
	return nil
}

func (f *collCodec[S, K, V]) apply(c Codec, s *S, key string, data []byte, v uint64) error {
	k, err := parseKey[K](key)
	if err != nil {
		return err
	}
	w := Pending[K, V]{Key: k}
	if data != nil {
		w.Value = new(V)
		if err := f.unmarshal(c, data, w.Value); err != nil {
			return err
		}
	}
	*f.get(s) = f.get(s).Apply(v, []Pending[K, V]{w})
	return nil
}

func (f *collCodec[S, K, V]) builder(c Codec, path string, workers chan struct{}) entryBuilder[S] {
	return &collBuilder[S, K, V]{codec: c, coll: f, path: path, get: f.get, workers: workers}
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
	b, err := c.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// stateCodec is the StateCodec of a state type S.
type stateCodec[S any] struct {
	fields []StateField[S]
	infos  []FieldInfo
	byPath map[string]int
	codec  Codec
	format string
	// migrations are WithMigrations', by path (see Migrator).
	migrations map[string]Migration
}

// newStateCodec returns the StateCodec of fields, encoding values with c
// (JSON when c is nil).
func newStateCodec[S any](fields []StateField[S], c Codec) *stateCodec[S] {
	sc := &stateCodec[S]{fields: fields, byPath: make(map[string]int, len(fields)), codec: c, format: "json"}
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

func (c *stateCodec[S]) Fields() []FieldInfo { return c.infos }
func (c *stateCodec[S]) Format() string      { return c.format }

func (c *stateCodec[S]) Field(path string) int {
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
func (c *stateCodec[S]) state(v any) (*S, error) {
	s, ok := v.(*S)
	if !ok {
		return nil, fmt.Errorf("theus: state codec: got a state of type %T, want %T", v, s)
	}
	return s, nil
}

func (c *stateCodec[S]) field(i int, collection bool) (*StateField[S], error) {
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
func (c *stateCodec[S]) lookup(state any, i int, collection bool) (*S, *StateField[S], error) {
	s, err := c.state(state)
	if err != nil {
		return nil, nil, err
	}
	f, err := c.field(i, collection)
	return s, f, err
}

func (c *stateCodec[S]) AppendField(dst []byte, state any, i int) ([]byte, error) {
	s, f, err := c.lookup(state, i, false)
	if err != nil {
		return dst, err
	}
	b, err := f.codec.encode(c.codec, dst, s)
	if err != nil {
		return dst, fmt.Errorf("theus: encode %s: %w", f.info.Path, err)
	}
	return b, nil
}

func (c *stateCodec[S]) AppendEntry(dst []byte, state any, i int, key string) ([]byte, bool, error) {
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

func (c *stateCodec[S]) EncodeEntries(state any, i int, yield func(key string, data []byte) error) error {
	s, f, err := c.lookup(state, i, true)
	if err != nil {
		return err
	}
	return f.codec.entries(c.codec, s, yield)
}

func (c *stateCodec[S]) Decoder() StateDecoder {
	return &stateDecoder[S]{c: c, s: new(S), colls: make(map[int]entryBuilder[S]),
		workers: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

type stateDecoder[S any] struct {
	c     *stateCodec[S]
	s     *S
	colls map[int]entryBuilder[S]
	// workers bounds the goroutines decoding entries, of all collections
	// (collBuilder).
	workers chan struct{}
}

func (d *stateDecoder[S]) Field(i int, data []byte) error {
	f, err := d.c.field(i, false)
	if err != nil {
		return err
	}
	if err := f.codec.decode(d.c.codec, d.s, data); err != nil {
		return fmt.Errorf("theus: decode %s: %w", f.info.Path, err)
	}
	return nil
}

func (d *stateDecoder[S]) Entry(i int, key string, data []byte) error {
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
func (d *stateDecoder[S]) State() (any, error) {
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
	return d.s, nil
}

// applyRemote applies rv, a value another engine's commit at version v
// left, to s, a copy of a state (see SharedStore).
func (c *stateCodec[S]) applyRemote(s *S, rv RemoteValue, v uint64) error {
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
