package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/memory"
)

type cfgState struct {
	N     int
	Limit int
	Name  string
}

func cfgSchema() *engine.Schema[cfgState] {
	return &engine.Schema[cfgState]{
		Paths: []string{"domain.n", "global.limit", "global.name"},
		Clone: func(s *cfgState) cfgState { return *s },
		State: []engine.StateField[cfgState]{
			engine.ValueField("domain.n", "int", func(s *cfgState) *int { return &s.N }),
			engine.ValueField("global.limit", "int", func(s *cfgState) *int { return &s.Limit }),
			engine.ValueField("global.name", "string", func(s *cfgState) *string { return &s.Name }),
		},
	}
}

func TestWithGlobals(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	start := func(set func(*cfgState)) *engine.Engine[cfgState] {
		t.Helper()
		e, err := engine.New(ctx, cfgSchema(), cfgState{N: 1, Limit: 1, Name: "a"}, engine.WithStore(st), engine.WithGlobals(set))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}

	// Changed: one commit (examples/quickstart checks its history on
	// SQLite).
	e := start(func(s *cfgState) { s.Limit = 5; s.Name = "a" })
	v, s := e.Snapshot()
	if v != 1 || s.Limit != 5 || s.Name != "a" || s.N != 1 {
		t.Fatalf("version %d, state %+v", v, *s)
	}
	e.Close()

	// Unchanged: no commit.
	e = start(func(s *cfgState) { s.Limit = 5 })
	if v, s := e.Snapshot(); v != 1 || s.Limit != 5 {
		t.Fatalf("version %d, state %+v", v, *s)
	}
	e.Close()

	// Two fields: one commit again.
	e = start(func(s *cfgState) { s.Limit = 6; s.Name = "b" })
	if v, s := e.Snapshot(); v != 2 || s.Limit != 6 || s.Name != "b" {
		t.Fatalf("version %d, state %+v", v, *s)
	}
	e.Close()

	// Domain state is not configuration.
	_, err := engine.New(ctx, cfgSchema(), cfgState{}, engine.WithStore(st), engine.WithGlobals(func(s *cfgState) { s.N = 9 }))
	if err == nil || !strings.Contains(err.Error(), "WithGlobals changes domain.n: it sets global values only") {
		t.Fatalf("err = %v", err)
	}
	// A func of another state type.
	_, err = engine.New(ctx, cfgSchema(), cfgState{}, engine.WithStore(st), engine.WithGlobals(func(*int) {}))
	if err == nil || !strings.Contains(err.Error(), "WithGlobals: got a func(*int)") {
		t.Fatalf("err = %v", err)
	}
}
