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
// as V: the sources are compiled once per key type, and only MapView's
// own methods once per type of view.
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
	// all returns what yields every entry in ascending key order (a
	// collection counts it as reading all of it now).
	all() func(yield func(K, unsafe.Pointer) bool)
}

// NewMapView returns a view of m, whose values must not hold references.
// Generated code calls it; m must never be modified afterwards.
func NewMapView[K cmp.Ordered, T any](m map[K]T) MapView[K, T] {
	return MapView[K, T]{src: plainMap[K, T]{m: m}, view: derefAt[T]}
}

func derefAt[T any](p unsafe.Pointer) T { return *(*T)(p) }

// NewMapViewOf returns a view of m showing each value through view.
func NewMapViewOf[K cmp.Ordered, T, V any](m map[K]T, view func(*T) V) MapView[K, V] {
	return MapView[K, V]{src: plainMap[K, T]{m: m}, view: func(p unsafe.Pointer) V { return view((*T)(p)) }}
}

// Get returns the value stored under k and whether it exists.
func (v MapView[K, V]) Get(k K) (V, bool) {
	if v.src != nil {
		if p := v.src.get(k); p != nil {
			return v.view(p), true
		}
	}
	var zero V
	return zero, false
}

// Len returns the number of entries.
func (v MapView[K, V]) Len() int {
	if v.src == nil {
		return 0
	}
	return v.src.len()
}

// All yields every entry in ascending key order.
func (v MapView[K, V]) All() iter.Seq2[K, V] {
	if v.src == nil {
		return func(func(K, V) bool) {}
	}
	walk := v.src.all()
	return func(yield func(K, V) bool) {
		walk(func(k K, p unsafe.Pointer) bool { return yield(k, v.view(p)) })
	}
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

func (p plainMap[K, T]) all() func(yield func(K, unsafe.Pointer) bool) { return p.walk }

func (p plainMap[K, T]) walk(yield func(K, unsafe.Pointer) bool) {
	keys := make([]K, 0, len(p.m))
	for k := range p.m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		t := p.m[k]
		if !yield(k, unsafe.Pointer(&t)) {
			return
		}
	}
}
