package engine

import (
	"cmp"
	"iter"
	"maps"
	"slices"
	"strconv"
	"testing"
	"unsafe"

	"pgregory.net/rapid"
)

// TestPmapMatchesMap runs random sets and deletes against a Go map and
// checks every version of the persistent map ever made, including old ones
// that later updates must not have changed. Each version is made by a batch
// of operations under one edit, as a commit makes it, so sets change the
// nodes of their own batch in place and must leave every earlier version
// alone.
func TestPmapMatchesMap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		type version struct {
			m     pmap[int, string]
			model map[int]string
		}
		keys := rapid.IntRange(0, rapid.IntRange(1, 3000).Draw(t, "keyspace"))
		cur := version{model: map[int]string{}}
		var versions []version
		for i := range rapid.IntRange(0, 300).Draw(t, "batches") {
			next := version{m: cur.m, model: maps.Clone(cur.model)}
			edit := newEdit()
			for range rapid.IntRange(1, 4).Draw(t, "ops") {
				k := keys.Draw(t, "k")
				if rapid.IntRange(0, 3).Draw(t, "del") == 0 {
					next.m = next.m.del(k)
					delete(next.model, k)
				} else {
					v := rapid.StringN(0, 3, 3).Draw(t, "v")
					next.m = next.m.set(k, &pitem[string]{ver: uint64(i), val: v}, edit)
					next.model[k] = v
				}
			}
			versions = append(versions, cur)
			cur = next
		}
		versions = append(versions, cur)
		for vi, v := range versions {
			if v.m.len() != len(v.model) {
				t.Fatalf("version %d: len %d, want %d", vi, v.m.len(), len(v.model))
			}
			var got []int
			for k, it := range v.m.all() {
				got = append(got, k)
				if want, ok := v.model[k]; !ok || it.val != want {
					t.Fatalf("version %d: all yields %d=%q, model has %q (%v)", vi, k, it.val, want, ok)
				}
			}
			want := slices.Sorted(maps.Keys(v.model))
			if !slices.Equal(got, want) {
				t.Fatalf("version %d: keys %v, want %v", vi, got, want)
			}
			var c pcursor[int]
			c.start(v.m.t)
			var cursor []int
			for n := c.nextLeaf(); n != nil; n = c.nextLeaf() {
				if n.n == 0 {
					t.Fatalf("version %d: an empty leaf", vi)
				}
				for i, k := range n.keys[:n.n] {
					if got := (*pitem[string])(n.val(i)).val; got != v.model[k] {
						t.Fatalf("version %d: the cursor yields %d=%q, model has %q", vi, k, got, v.model[k])
					}
					cursor = append(cursor, k)
				}
			}
			if !slices.Equal(cursor, want) {
				t.Fatalf("version %d: cursor keys %v, want %v", vi, cursor, want)
			}
			for k := -1; k <= 3001; k += 97 {
				it := v.m.get(k)
				mv, ok := v.model[k]
				if (it != nil) != ok || (ok && it.val != mv) {
					t.Fatalf("version %d: get(%d) = %v, model (%q, %v)", vi, k, it, mv, ok)
				}
			}
			for k := range v.model {
				if it := v.m.get(k); it == nil || it.val != v.model[k] {
					t.Fatalf("version %d: get(%d) = %v, want %q", vi, k, it, v.model[k])
				}
			}
		}
	})
}

func TestPmapStringKeysInOrder(t *testing.T) {
	var m pmap[string, int]
	for i := range 5000 {
		k := string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		m = m.set(k, &pitem[int]{val: i}, newEdit())
	}
	prev := ""
	n := 0
	for k := range m.all() {
		if k <= prev && n > 0 {
			t.Fatalf("%q after %q", k, prev)
		}
		prev = k
		n++
	}
	if n != m.len() || n != 5000 {
		t.Fatalf("walked %d, len %d", n, m.len())
	}
}

// A map built in bulk holds the same entries as one built by set, and can
// be updated afterwards.
func TestBuildPmap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		keys := rapid.SliceOfNDistinct(rapid.IntRange(0, 100000), 0, 2000, rapid.ID[int]).Draw(t, "keys")
		slices.Sort(keys)
		items := make([]*pitem[string], len(keys))
		var want pmap[int, string]
		for i, k := range keys {
			items[i] = &pitem[string]{val: strconv.Itoa(k)}
			want = want.set(k, items[i], newEdit())
		}
		got := buildPmap(keys, items)
		if got.len() != want.len() {
			t.Fatalf("len %d, want %d", got.len(), want.len())
		}
		var gk []int
		for k, it := range got.all() {
			if it.val != strconv.Itoa(k) {
				t.Fatalf("%d -> %q", k, it.val)
			}
			gk = append(gk, k)
		}
		if !slices.Equal(gk, keys) {
			t.Fatalf("keys differ")
		}
		got = got.set(-1, &pitem[string]{val: "-1"}, newEdit())
		for _, k := range keys[len(keys)/2:] {
			got = got.del(k)
		}
		if got.len() != len(keys)/2+1 || got.get(-1) == nil {
			t.Fatalf("after updates: len %d, want %d", got.len(), len(keys)/2+1)
		}
		for i, k := range keys {
			if (got.get(k) != nil) != (i < len(keys)/2) {
				t.Fatalf("get(%d) after deleting the upper half", k)
			}
		}
	})
}

// The untyped code finds an item's value at offset 8 (itemValue) and its
// version at 0 (itemVersion), whatever the value's type.
func TestItemLayout(t *testing.T) {
	check := func(name string, off uintptr, it, val unsafe.Pointer, ver uint64) {
		t.Helper()
		if off != 8 || itemValue(it) != val || itemVersion(it) != ver {
			t.Errorf("%s: value at offset %d, version %d", name, off, itemVersion(it))
		}
	}
	a := &pitem[struct{}]{ver: 1}
	check("struct{}", unsafe.Offsetof(a.val), unsafe.Pointer(a), unsafe.Pointer(&a.val), 1)
	b := &pitem[byte]{ver: 2}
	check("byte", unsafe.Offsetof(b.val), unsafe.Pointer(b), unsafe.Pointer(&b.val), 2)
	c := &pitem[struct {
		x int64
		s string
	}]{ver: 3}
	check("struct", unsafe.Offsetof(c.val), unsafe.Pointer(c), unsafe.Pointer(&c.val), 3)
	d := &pitem[complex128]{ver: 4}
	check("complex128", unsafe.Offsetof(d.val), unsafe.Pointer(d), unsafe.Pointer(&d.val), 4)
}

// pmap is a ptree of items of one type, for the tests.
type pmap[K cmp.Ordered, V any] struct {
	t ptree[K]
}

// buildPmap builds a map from sorted, distinct keys and their items.
func buildPmap[K cmp.Ordered, V any](keys []K, items []*pitem[V]) pmap[K, V] {
	return pmap[K, V]{t: ptree[K]{root: buildTreeFunc(len(keys), func(j int) K { return keys[j] }, func(j int) unsafe.Pointer { return unsafe.Pointer(items[j]) })}}
}

func (m pmap[K, V]) len() int { return m.t.len() }

// get returns the item under k, or nil.
func (m pmap[K, V]) get(k K) *pitem[V] { return (*pitem[V])(m.t.get(k)) }

// set returns a map with k set to it (see ptree.set).
func (m pmap[K, V]) set(k K, it *pitem[V], edit uint64) pmap[K, V] {
	return pmap[K, V]{t: m.t.set(k, unsafe.Pointer(it), edit)}
}

// del returns a map without k (see ptree.del).
func (m pmap[K, V]) del(k K) pmap[K, V] { return pmap[K, V]{t: m.t.del(k)} }

// all yields every entry in ascending key order.
func (m pmap[K, V]) all() iter.Seq2[K, *pitem[V]] {
	return func(yield func(K, *pitem[V]) bool) {
		m.t.walk(func(k K, it unsafe.Pointer) bool { return yield(k, (*pitem[V])(it)) })
	}
}
