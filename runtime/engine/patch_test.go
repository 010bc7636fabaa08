package engine_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
)

// pstate is a state written with an engine.Patch, as generated Patch
// setters write it.
type pstate struct {
	N int
	F float64
	M engine.Collection[string, int]
}

const (
	ppathN = iota
	ppathF
	ppathM
)

var pschema = &engine.Schema[pstate]{
	Paths: []string{"domain.n", "domain.f", "domain.m"},
	Clone: func(s *pstate) pstate { return *s },
	Collections: []engine.CollectionSpec[pstate]{{
		Path:    ppathM,
		Version: func(s *pstate, k string) (uint64, bool) { return engine.CollectionVersion(s.M, k) },
	}},
	State: []engine.StateField[pstate]{
		engine.ValueField("domain.n", "int", func(s *pstate) *int { return &s.N }),
		engine.ValueField("domain.f", "float64", func(s *pstate) *float64 { return &s.F }),
		engine.CollectionField("domain.m", "collection[string]int", func(s *pstate) *engine.Collection[string, int] { return &s.M }),
	},
}

func newPatchEngine(t *testing.T, opts ...engine.Option) (*engine.Engine[pstate], *recorder) {
	t.Helper()
	st := newRecorder()
	e, err := engine.New(context.Background(), pschema, pstate{}, append([]engine.Option{engine.WithStore(st)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, st
}

// A Patch commits its values (the last Set of a path wins) and its entries
// in the order put and deleted, and records what it wrote: the values in
// the order first set, then the entries.
func TestPatchAppliesAndRecords(t *testing.T) {
	e, st := newPatchEngine(t)
	var p engine.Patch
	p.Put(ppathM, "a", new(5))
	p.Set(ppathN, new(1))
	p.Put(ppathM, "b", new(6))
	p.Set(ppathN, new(2))
	p.Delete(ppathM, "a")
	v, err := e.CompareAndSwapPatch(context.Background(), 0, &p)
	if err != nil {
		t.Fatal(err)
	}
	_, s := e.Snapshot()
	if _, ok := engine.CollectionGet(s.M, "a"); ok || s.N != 2 || engine.CollectionLen(s.M) != 1 {
		t.Fatalf("after the patch: n=%d, %d entries (a deleted: %v)", s.N, engine.CollectionLen(s.M), !ok)
	}
	if b, _ := engine.CollectionGet(s.M, "b"); *b != 6 {
		t.Fatalf("b = %d, want 6", *b)
	}
	if ver, ok := engine.CollectionVersion(s.M, "b"); !ok || ver != v {
		t.Fatalf("b written at version %d, want %d", ver, v)
	}
	var got []string
	for _, r := range st.history() {
		for _, w := range r.Writes {
			got = append(got, fmt.Sprintf("%s[%s] deleted=%v", w.Path, w.Key, w.Deleted))
		}
	}
	want := []string{"domain.n[] deleted=false", "domain.m[a] deleted=false", "domain.m[b] deleted=false", "domain.m[a] deleted=true"}
	if !slices.Equal(got, want) {
		t.Fatalf("recorded %q, want %q", got, want)
	}
}

// A value that cannot be encoded is refused before anything commits, with
// an error naming its path (and key): by the engine's codec when it has
// one, else as encoding/json would refuse it.
func TestPatchRefusesWhatCannotBeEncoded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []engine.Option
		patch func(*engine.Patch)
		want  string
	}{
		{"json: NaN", nil, func(p *engine.Patch) { p.Set(ppathN, new(1)); p.Set(ppathF, new(math.NaN())) },
			"theus: encode domain.f: json: unsupported value: NaN"},
		{"codec: value", []engine.Option{engine.WithCodec(refuser{})}, func(p *engine.Patch) { p.Set(ppathN, new(-1)) },
			"theus: encode domain.n: refuser: negative"},
		{"codec: entry", []engine.Option{engine.WithCodec(refuser{})}, func(p *engine.Patch) {
			p.Put(ppathM, "x", new(1))
			p.Delete(ppathM, "y")
			p.Put(ppathM, "z", new(-3))
		}, "theus: encode domain.m[z]: refuser: negative"},
	} {
		e, _ := newPatchEngine(t, tc.opts...)
		var p engine.Patch
		tc.patch(&p)
		_, err := e.CompareAndSwapPatch(context.Background(), 0, &p)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if v, _ := e.Snapshot(); v != 0 {
			t.Errorf("%s: version %d after a refused patch", tc.name, v)
		}
	}
}
