package engine_test

import (
	"slices"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
)

// A deep copy shares nothing: changing the copy's elements leaves the
// original alone, and nil stays nil.
func TestCloneSliceAndMapShareNothing(t *testing.T) {
	cloneInts := func(p *[]int) []int { return slices.Clone(*p) }
	s := [][]int{{1, 2}, nil}
	c := engine.CloneSlice(s, cloneInts)
	c[0][0] = 9
	if s[0][0] != 1 || c[1] != nil || len(c) != 2 {
		t.Fatalf("original %v, copy %v", s, c)
	}
	m := map[string][]int{"a": {1}}
	cm := engine.CloneMap(m, cloneInts)
	cm["a"][0] = 9
	if m["a"][0] != 1 || len(cm) != 1 {
		t.Fatalf("original %v, copy %v", m, cm)
	}
	if engine.CloneSlice([][]int(nil), cloneInts) != nil || engine.CloneMap(map[string][]int(nil), cloneInts) != nil {
		t.Fatal("nil did not stay nil")
	}
}
