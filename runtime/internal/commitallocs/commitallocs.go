// Package commitallocs measures the allocations of one commit, so that the
// tests of a hook on the commit path (metrics, headers) can show it adds
// none: they compare an engine with the hook against one without.
package commitallocs

import (
	"context"
	"fmt"
	"testing"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
)

// Transfer returns the average allocations of a committed bank transfer
// (two collection entries written, one message emitted) on an engine with
// opts and a memory store, after its pools are warm.
func Transfer(t testing.TB, opts ...engine.Option) float64 {
	t.Helper()
	ctx := context.Background()
	eng, err := bank.NewEngine(ctx, bank.State{}, bank.Bank{}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for _, id := range []string{"a", "b"} {
		if _, err := eng.OpenAccount(ctx, bank.OpenAccountArgs{ID: id, Initial: 1 << 40}); err != nil {
			t.Fatal(err)
		}
	}
	transfer := func() {
		if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "a", To: "b", Amount: 1}); err != nil {
			panic(fmt.Sprint("transfer: ", err))
		}
	}
	for range 100 {
		transfer()
	}
	return testing.AllocsPerRun(500, transfer)
}
