package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
)

type cfgState struct {
	N     int
	Limit int
}

func cfgSchema() *engine.Schema[cfgState] {
	return &engine.Schema[cfgState]{
		Paths: []string{"domain.n", "global.limit"},
		Clone: func(s *cfgState) cfgState { return *s },
		State: []engine.StateField[cfgState]{
			engine.ValueField("domain.n", "int", func(s *cfgState) *int { return &s.N }),
			engine.ValueField("global.limit", "int", func(s *cfgState) *int { return &s.Limit }),
		},
	}
}

// Two instances starting at once with the same configuration make one
// commit, not two; a third with other values makes one more.
func TestWithGlobalsTwoInstancesAtOnce(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	start := func(limit int) (*engine.Engine[cfgState], error) {
		return engine.New(ctx, cfgSchema(), cfgState{Limit: 1}, engine.WithStore(openStore(t, schema)),
			engine.WithGlobals(func(s *cfgState) { s.Limit = limit }))
	}
	for round, limit := range []int{5, 7} {
		engines := make([]*engine.Engine[cfgState], 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range engines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				engines[i], errs[i] = start(limit)
			}()
		}
		wg.Wait()
		for i, e := range engines {
			if errs[i] != nil {
				t.Fatalf("round %d, instance %d: %v", round, i, errs[i])
			}
			if err := e.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if v, s := e.Snapshot(); v != uint64(round+1) || s.Limit != limit {
				t.Fatalf("round %d, instance %d: version %d, limit %d; want %d, %d", round, i, v, s.Limit, round+1, limit)
			}
			e.Close()
		}
	}
}
