package engine

import (
	"cmp"
	"iter"
	"slices"
	"strconv"
	"unsafe"
)

// Collection is a state field declared as a collection ({map: T, key: K}):
// a map whose entries are versioned one by one. A commit that writes one
// entry shares every other entry with the snapshot before it (the map is a
// persistent B+tree), and only the entries a call actually read or wrote
// take part in its conflict check.
//
// A Collection is an immutable value: generated code holds one per
// collection field in the engine's state and replaces it on commit.
//
// It is a ptree of untyped items, so that a contract's collections share
// the compiled tree, codec and decoder, and it has no methods: the
// compiler makes every method of a generic type for each type it is
// instantiated with, used or not, and a contract's collections each have
// their own type of value. CollectionGet, CollectionLen, CollectionAll and
// CollectionApply read and write it.
type Collection[K cmp.Ordered, V any] struct {
	t ptree[K]
}

// NewCollection returns a collection holding a copy of m, every entry at
// version 0. clone deep-copies a value (nil when values hold no references).
func NewCollection[K cmp.Ordered, V any](m map[K]V, clone func(*V) V) Collection[K, V] {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	items := make([]pitem[V], len(keys))
	for i, k := range keys {
		v := m[k]
		if clone != nil {
			v = clone(&v)
		}
		items[i].val = v
	}
	return Collection[K, V]{t: ptree[K]{root: buildTree(keys, unsafe.Pointer(unsafe.SliceData(items)), unsafe.Sizeof(pitem[V]{}))}}
}

// CollectionLen returns the number of entries of c.
func CollectionLen[K cmp.Ordered, V any](c Collection[K, V]) int { return c.t.len() }

// CollectionGet returns a pointer to the value under k in c, which must
// not be modified, and whether it exists.
func CollectionGet[K cmp.Ordered, V any](c Collection[K, V], k K) (*V, bool) {
	if it := c.t.get(k); it != nil {
		return (*V)(itemValue(it)), true
	}
	return nil, false
}

// CollectionAll yields every entry of c in ascending key order; the values
// must not be modified.
func CollectionAll[K cmp.Ordered, V any](c Collection[K, V]) iter.Seq2[K, *V] {
	return func(yield func(K, *V) bool) {
		c.t.walk(func(k K, it unsafe.Pointer) bool { return yield(k, (*V)(itemValue(it))) })
	}
}

// CollectionMap returns the entries of c as a new map, each value
// deep-copied with clone (nil when values hold no references).
func CollectionMap[K cmp.Ordered, V any](c Collection[K, V], clone func(*V) V) map[K]V {
	out := make(map[K]V, c.t.len())
	for k, v := range CollectionAll(c) {
		if clone != nil {
			out[k] = clone(v)
		} else {
			out[k] = *v
		}
	}
	return out
}

// version returns the version that last wrote k, and whether k exists.
func (t ptree[K]) version(k K) (uint64, bool) {
	if it := t.get(k); it != nil {
		return itemVersion(it), true
	}
	return 0, false
}

// CollectionView returns a read-only view of c showing each value through
// view. When tx is not nil (a process is reading), the view records the
// entries the process reads in tx, for the conflict check; Len and All
// count as reading the whole collection. Generated code calls it.
//
// It is a line per type of view: the source it reads is the same for
// every type of value, and the view is given to the MapView as the
// function of an untyped pointer it is (see NewMapViewOf).
func CollectionView[K cmp.Ordered, V, W any](c Collection[K, V], tx *Tx, path int, view func(*V) W) MapView[K, W] {
	return MapView[K, W]{src: collectionSource(c.t, tx, path), view: *(*func(unsafe.Pointer) W)(unsafe.Pointer(&view))}
}

// collectionSource returns the source of a view of the collection t at
// path, read by the process of tx (nil for none).
func collectionSource[K cmp.Ordered](t ptree[K], tx *Tx, path int) *collSource[K] {
	if tx == nil {
		return &collSource[K]{t: t, path: path}
	}
	// A process's sources are kept in its Tx, which generated code
	// reuses from call to call, so reading a collection allocates
	// nothing.
	for _, x := range tx.sources {
		if s, ok := x.(*collSource[K]); ok && s.path == path {
			s.t = t
			return s
		}
	}
	s := &collSource[K]{t: t, tx: tx, path: path}
	tx.sources = append(tx.sources, s)
	return s
}

// collSource is a collection as a mapSource; the pointers it hands out
// are the values of its items.
type collSource[K cmp.Ordered] struct {
	t    ptree[K]
	tx   *Tx
	path int
}

func (s *collSource[K]) get(k K) unsafe.Pointer {
	if s.tx != nil {
		s.tx.readKey(s.path, keyText(k))
	}
	if it := s.t.get(k); it != nil {
		return itemValue(it)
	}
	return nil
}

func (s *collSource[K]) len() int {
	s.readAll()
	return s.t.len()
}

func (s *collSource[K]) readAll() {
	if s.tx != nil {
		s.tx.readAll(s.path)
	}
}

func (*collSource[K]) sortedKeys() []K { panic("unreachable") }

// Pending is one write of a call to a collection: Value is nil for a
// delete.
type Pending[K cmp.Ordered, V any] struct {
	Key   K
	Value *V
}

// CollectionWriter is what a process writes a collection with
// (out.Accounts()). Writes become visible only when the call commits. Like
// the Out it came from, it is valid only during the call: using it
// afterwards panics.
type CollectionWriter[K cmp.Ordered, V any] struct {
	tx      *Tx
	path    int
	pending *[]Pending[K, V]
	clone   func(*V) V
	gen     *uint64
	want    uint64
}

// NewCollectionWriter returns a writer that appends to pending and records
// the written keys in tx; it stays usable while *gen == want. Generated
// code calls it.
func NewCollectionWriter[K cmp.Ordered, V any](tx *Tx, path int, pending *[]Pending[K, V], clone func(*V) V, gen *uint64, want uint64) CollectionWriter[K, V] {
	return CollectionWriter[K, V]{tx: tx, path: path, pending: pending, clone: clone, gen: gen, want: want}
}

// writerLive panics unless a writer made for the run want of a call whose
// current run is *gen is still live. It is not a method: a generic type's
// methods are compiled per type of value.
func writerLive(gen *uint64, want uint64) {
	if gen == nil || *gen != want {
		panic("theus: collection writer used after its call returned")
	}
}

// Put sets the entry under k to a copy of v.
func (w CollectionWriter[K, V]) Put(k K, v V) {
	writerLive(w.gen, w.want)
	if w.clone != nil {
		v = w.clone(&v)
	}
	*w.pending = append(*w.pending, Pending[K, V]{Key: k, Value: &v})
	w.tx.writeKey(w.path, keyText(k), false)
}

// Delete removes the entry under k (nothing happens if there is none).
func (w CollectionWriter[K, V]) Delete(k K) {
	writerLive(w.gen, w.want)
	*w.pending = append(*w.pending, Pending[K, V]{Key: k})
	w.tx.writeKey(w.path, keyText(k), true)
}

// CollectionApply returns c with the pending writes applied at version
// v; when a key is written several times the last write wins. The writes
// are applied in order, each in O(log n): the engine's lock is held.
func CollectionApply[K cmp.Ordered, V any](c Collection[K, V], v uint64, pending []Pending[K, V]) Collection[K, V] {
	edit := newEdit()
	for _, p := range pending {
		if p.Value == nil {
			c.t = c.t.del(p.Key)
		} else {
			c.t = c.t.set(p.Key, unsafe.Pointer(&pitem[V]{ver: v, val: *p.Value}), edit)
		}
	}
	return c
}

// CollectionSpec tells the engine how to find a collection in the state,
// for conflict checks on its entries.
type CollectionSpec[S any] struct {
	// Path is the collection's index in Schema.Paths.
	Path int
	// Version returns the version that last wrote the entry whose key has
	// the text key (see Write.Key) in s, and whether the entry exists.
	Version func(s *S, key string) (uint64, bool)
}

// CollectionVersion adapts a collection to CollectionSpec.Version.
func CollectionVersion[K cmp.Ordered, V any](c Collection[K, V], key string) (uint64, bool) {
	k, err := parseKey[K](key)
	if err != nil {
		return 0, false
	}
	return c.t.version(k)
}

// keyText formats a collection key as Write.Key does: strings as they are,
// integers in decimal. It does not allocate for string keys.
func keyText[K cmp.Ordered](k K) string {
	if s, ok := any(k).(string); ok {
		return s
	}
	return keyString(k)
}

// keyString formats a collection key for Record.Write: strings as they
// are, integers in decimal.
func keyString(k any) string {
	switch k := k.(type) {
	case string:
		return k
	case int:
		return strconv.Itoa(k)
	case int8:
		return strconv.FormatInt(int64(k), 10)
	case int16:
		return strconv.FormatInt(int64(k), 10)
	case int32:
		return strconv.FormatInt(int64(k), 10)
	case int64:
		return strconv.FormatInt(k, 10)
	case uint:
		return strconv.FormatUint(uint64(k), 10)
	case uint8:
		return strconv.FormatUint(uint64(k), 10)
	case uint16:
		return strconv.FormatUint(uint64(k), 10)
	case uint32:
		return strconv.FormatUint(uint64(k), 10)
	case uint64:
		return strconv.FormatUint(k, 10)
	case uintptr:
		return strconv.FormatUint(uint64(k), 10)
	}
	panic("theus: collection keys are strings or integers")
}
