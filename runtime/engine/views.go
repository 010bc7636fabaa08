package engine

import (
	"cmp"
	"iter"
	"slices"
	"unsafe"
)

// SliceViewOf is a read-only view of a []T whose elements are shown as V:
// V is T itself for value types (strings, numbers, bools) and a generated
// view type for elements that hold references (structs, slices, maps).
// Nothing obtained from a view can change the snapshot it came from.
type SliceViewOf[T, V any] struct {
	s []T
	// view shows an element as V; nil when V is T (NewSliceView), so that
	// a view of values costs no function value per place that makes one.
	view  func(*T) V
	clone func(T) T
}

// SliceView is the view of a slice of values: At returns copies.
type SliceView[T any] = SliceViewOf[T, T]

// NewSliceView returns a view of s, whose elements must not hold references.
// Generated code calls it; s must never be modified afterwards.
func NewSliceView[T any](s []T) SliceView[T] { return SliceView[T]{s: s} }

// NewSliceViewOf returns a view of s showing each element through view;
// clone deep-copies one element for Clone.
func NewSliceViewOf[T, V any](s []T, view func(*T) V, clone func(T) T) SliceViewOf[T, V] {
	return SliceViewOf[T, V]{s: s, view: view, clone: clone}
}

// Len returns the number of elements.
func (v SliceViewOf[T, V]) Len() int { return len(v.s) }

// At returns the i-th element; it panics if i is out of range, like s[i].
func (v SliceViewOf[T, V]) At(i int) V {
	if v.view == nil {
		return *(*V)(unsafe.Pointer(&v.s[i])) // V is T
	}
	return v.view(&v.s[i])
}

// All yields the index and element of each element in order.
func (v SliceViewOf[T, V]) All() iter.Seq2[int, V] {
	return func(yield func(int, V) bool) {
		for i := range v.s {
			if !yield(i, v.At(i)) {
				return
			}
		}
	}
}

// Clone returns a deep copy that shares nothing with the snapshot; nil for
// a nil slice.
func (v SliceViewOf[T, V]) Clone() []T {
	if v.s == nil {
		return nil
	}
	if v.clone == nil {
		return slices.Clone(v.s)
	}
	out := make([]T, len(v.s))
	for i := range v.s {
		out[i] = v.clone(v.s[i])
	}
	return out
}

// MapView is a read-only view of a map or a collection whose values are
// shown as V. All yields entries in ascending key order, so a process that
// is re-run sees the same order.
//
// Its source hands out untyped pointers to the values, which view shows
// as V: the sources and their iteration are compiled once per key type,
// and per type of view only MapView's three short methods (the compiler
// makes every method of a generic type for each type it is instantiated
// with, and a contract's collections each have their own view type).
type MapView[K cmp.Ordered, V any] struct {
	src  mapSource[K]
	view func(unsafe.Pointer) V
}

// mapSource is what a MapView reads: a plain map or a versioned
// collection. Its pointers point to values of the type the MapView's view
// expects, which must not be modified.
type mapSource[K cmp.Ordered] interface {
	// get returns a pointer to the value under k, nil when there is none.
	get(k K) unsafe.Pointer
	len() int
	// readAll records that the whole source is read (a collection read
	// by a process).
	readAll()
	// sortedKeys returns a plain map's keys in ascending order; a
	// collection is walked as a tree (mapIter.start).
	sortedKeys() []K
}

// mapIter iterates a mapSource in ascending key order, a batch of
// entries at a time: a collection's tree leaf by leaf, a plain map in one
// batch. It is a value, not a function per entry, so that MapView.All
// compiles one loop per type of view and keeps its iterator on the stack.
type mapIter[K cmp.Ordered] struct {
	tree pcursor[K]
	// A plain map's entries, sorted, and their values; the batch is
	// handed out once.
	keys  []K
	vals  []unsafe.Pointer
	plain bool
	// off is the offset of a value from the pointer in a batch: a tree's
	// are its items (itemValue), a plain map's its values.
	off uintptr
}

// start starts it at the first entry of src (nil for none).
func (it *mapIter[K]) start(src mapSource[K]) {
	if c, ok := src.(*collSource[K]); ok {
		it.tree.start(c.t)
		it.off = itemValueOffset
	} else if src != nil {
		it.keys, it.plain = src.sortedKeys(), true
		it.vals = make([]unsafe.Pointer, len(it.keys))
		for i, k := range it.keys {
			it.vals[i] = src.get(k)
		}
	}
}

// next returns the next batch of entries, their keys and (at it.off
// from each pointer) values; no keys after the last.
func (it *mapIter[K]) next() ([]K, []unsafe.Pointer) {
	if it.plain {
		keys, vals := it.keys, it.vals
		it.keys, it.vals = nil, nil
		return keys, vals
	}
	n := it.tree.nextLeaf()
	if n == nil {
		return nil, nil
	}
	return n.keys[:n.n], n.ptrs[:n.n]
}

// NewMapView returns a view of m, whose values must not hold references.
// Generated code calls it; m must never be modified afterwards.
func NewMapView[K cmp.Ordered, T any](m map[K]T) MapView[K, T] {
	return MapView[K, T]{src: plainMap[K, T]{m: m}, view: derefAt[T]}
}

func derefAt[T any](p unsafe.Pointer) T { return *(*T)(p) }

// NewMapViewOf returns a view of m showing each value through view.
func NewMapViewOf[K cmp.Ordered, T, V any](m map[K]T, view func(*T) V) MapView[K, V] {
	// The same function: a *T and an unsafe.Pointer are passed alike, so
	// no adapter (a closure compiled per type of view) is needed.
	return MapView[K, V]{src: plainMap[K, T]{m: m}, view: *(*func(unsafe.Pointer) V)(unsafe.Pointer(&view))}
}

// Get returns the value stored under k and whether it exists.
func (v MapView[K, V]) Get(k K) (V, bool) {
	if p := sourceGet(v.src, k); p != nil {
		return v.view(p), true
	}
	var zero V
	return zero, false
}

// Len returns the number of entries.
func (v MapView[K, V]) Len() int { return sourceLen(v.src) }

// All yields every entry in ascending key order.
func (v MapView[K, V]) All() iter.Seq2[K, V] {
	src, view := sourceAll(v.src), v.view
	return func(yield func(K, V) bool) {
		var it mapIter[K]
		it.start(src)
		for keys, ps := it.next(); len(keys) > 0; keys, ps = it.next() {
			for i, k := range keys {
				if !yield(k, view(unsafe.Add(ps[i], it.off))) {
					return
				}
			}
		}
	}
}

// sourceGet, sourceLen and sourceAll read src, nil for the zero MapView,
// for MapView's methods: compiled once per key type, where the methods
// are compiled once per type of view.
func sourceGet[K cmp.Ordered](src mapSource[K], k K) unsafe.Pointer {
	if src == nil {
		return nil
	}
	return src.get(k)
}

func sourceLen[K cmp.Ordered](src mapSource[K]) int {
	if src == nil {
		return 0
	}
	return src.len()
}

// sourceAll records that src is read whole, now, and returns it.
func sourceAll[K cmp.Ordered](src mapSource[K]) mapSource[K] {
	if src != nil {
		src.readAll()
	}
	return src
}

// plainMap is a map as a mapSource; the pointers it hands out point to
// copies of the values.
type plainMap[K cmp.Ordered, T any] struct {
	m map[K]T
}

func (p plainMap[K, T]) get(k K) unsafe.Pointer {
	t, ok := p.m[k]
	if !ok {
		return nil
	}
	return unsafe.Pointer(&t)
}

func (p plainMap[K, T]) len() int { return len(p.m) }

func (plainMap[K, T]) readAll() {}

func (p plainMap[K, T]) sortedKeys() []K {
	keys := make([]K, 0, len(p.m))
	for k := range p.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
