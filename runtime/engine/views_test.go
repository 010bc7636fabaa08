package engine_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
)

// A view of values shows the values themselves, by index, in order and by
// key, and a clone of a slice view shares nothing with it.
func TestViewsOfValues(t *testing.T) {
	s := []string{"a", "b"}
	v := engine.NewSliceView(s)
	var all []string
	for i, x := range v.All() {
		all = append(all, x)
		if x != v.At(i) {
			t.Errorf("All yields %q at %d, At %q", x, i, v.At(i))
		}
	}
	if v.Len() != 2 || v.At(1) != "b" || !slices.Equal(all, s) {
		t.Errorf("slice view: len %d, At(1) %q, All %q", v.Len(), v.At(1), all)
	}
	c := v.Clone()
	c[0] = "z"
	if v.At(0) != "a" {
		t.Errorf("the clone shares the slice")
	}

	m := engine.NewMapView(map[string]int{"x": 1, "y": 2})
	if got, ok := m.Get("y"); !ok || got != 2 || m.Len() != 2 {
		t.Errorf("map view: Get(y) %d %v, len %d", got, ok, m.Len())
	}
	if got := maps.Collect(m.All()); len(got) != 2 || got["x"] != 1 {
		t.Errorf("map view: All %v", got)
	}
}
