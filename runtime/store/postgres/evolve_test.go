package postgres_test

import (
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/evolvetest"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// The table of contract changes shared by the durable stores: compatible
// ones recover, breaking ones are refused with the path and the reason,
// migrations run once.
func TestContractEvolution(t *testing.T) {
	evolvetest.Run(t, func(t *testing.T) evolvetest.Opener {
		schema := freshSchema(t)
		return func(t *testing.T) (engine.Store, func()) {
			st, err := postgres.Open(t.Context(), testDSN(), postgres.WithSchema(schema))
			if err != nil {
				t.Fatal(err)
			}
			return st, func() { st.Close() }
		}
	})
}
