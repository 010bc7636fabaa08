package engine

import (
	"fmt"
	"slices"
	"testing"
)

type mvRec struct {
	N    int
	Tags []string
}

// mvView is a struct view as the generator declares them.
type mvView struct{ p *mvRec }

func showRec(p *mvRec) mvView { return mvView{p} }

// A view of a collection shows its values through the view function, in
// key order however deep the tree, as often as All is ranged over, and
// records in the process's Tx what it read: one entry for Get, the whole
// collection for Len and All.
func TestCollectionViewReadsAndWalks(t *testing.T) {
	m := map[string]mvRec{}
	for i := range 1000 {
		m[fmt.Sprintf("k%04d", i)] = mvRec{N: i}
	}
	c := NewCollection(m, nil)
	tx := new(Tx)
	v := CollectionView(c, tx, 3, showRec)
	if got, ok := v.Get("k0500"); !ok || got.p.N != 500 {
		t.Fatalf("Get(k0500) = %v, %v", got.p, ok)
	}
	if _, ok := v.Get("nope"); ok {
		t.Fatalf("Get(nope) found an entry")
	}
	if want := []collKey{{3, "k0500"}, {3, "nope"}}; !slices.Equal(tx.reads, want) || len(tx.readAlls) != 0 {
		t.Fatalf("after Get: reads %v, whole %v; want %v and none", tx.reads, tx.readAlls, want)
	}
	all := v.All()
	if !slices.Equal(tx.readAlls, []int{3}) {
		t.Fatalf("All did not record reading the whole collection: %v", tx.readAlls)
	}
	for round := range 2 {
		n := 0
		for k, r := range all {
			if want := fmt.Sprintf("k%04d", n); k != want || r.p.N != n {
				t.Fatalf("round %d: entry %d is %s=%d, want %s=%d", round, n, k, r.p.N, want, n)
			}
			n++
		}
		if n != 1000 {
			t.Fatalf("round %d: All yielded %d entries", round, n)
		}
	}
	for k := range all {
		if k != "k0000" {
			t.Fatalf("All went on after yield returned false, at %s", k)
		}
		break
	}
	if v.Len() != 1000 {
		t.Fatalf("Len = %d", v.Len())
	}
	// The same path in the same Tx reuses its source.
	CollectionView(c, tx, 3, showRec)
	if len(tx.sources) != 1 {
		t.Fatalf("%d sources for one path", len(tx.sources))
	}

	tx2 := new(Tx)
	CollectionView(c, tx2, 4, showRec).Len()
	if !slices.Equal(tx2.readAlls, []int{4}) {
		t.Fatalf("Len did not record reading the whole collection: %v", tx2.readAlls)
	}
}

// The zero MapView is empty, and a view of a plain map shows its values
// through the view function in key order.
func TestMapViewOfPlainMap(t *testing.T) {
	var zero MapView[string, mvView]
	if _, ok := zero.Get("a"); ok || zero.Len() != 0 {
		t.Fatalf("zero view: Get found an entry or Len %d", zero.Len())
	}
	for k := range zero.All() {
		t.Fatalf("zero view yields %s", k)
	}
	v := NewMapViewOf(map[int]mvRec{3: {N: 30}, 1: {N: 10}, 2: {N: 20}}, showRec)
	if got, ok := v.Get(2); !ok || got.p.N != 20 || v.Len() != 3 {
		t.Fatalf("Get(2) = %v, %v; Len %d", got.p, ok, v.Len())
	}
	var keys []int
	for k, r := range v.All() {
		if r.p.N != 10*k {
			t.Fatalf("%d shows %d", k, r.p.N)
		}
		keys = append(keys, k)
	}
	if !slices.Equal(keys, []int{1, 2, 3}) {
		t.Fatalf("keys %v", keys)
	}
}

// CollectionField refuses a getter that does not locate the collection
// in the state it is given.
func TestCollectionFieldGetterOutsideState(t *testing.T) {
	type st struct {
		N int
		C Collection[string, int]
	}
	CollectionField("domain.c", "collection[string]int", func(s *st) *Collection[string, int] { return &s.C })
	var elsewhere Collection[string, int]
	defer func() {
		if recover() == nil {
			t.Error("a getter returning a collection outside the state was accepted")
		}
	}()
	CollectionField("domain.c", "collection[string]int", func(*st) *Collection[string, int] { return &elsewhere })
}
