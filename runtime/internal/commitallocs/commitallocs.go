// Package commitallocs measures the allocations of one commit, so that the
// tests of a hook on the commit path (metrics, headers) can show it adds
// none: they compare an engine with the hook against one without.
package commitallocs

import (
	"context"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
)

// Transfer returns the average allocations of a committed bank transfer
// (two collection entries written, one message emitted) on an engine with
// opts and a memory store, after its pools are warm, over 5,000 transfers.
// It is an average, not a whole number: the slabs that payloads and IDs
// are cut from take an allocation every few dozen commits, and more often
// under the race detector, which makes sync.Pool drop a quarter of what is
// put back (a dropped call takes a new slab with it).
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
			t.Fatal("transfer: ", err)
		}
	}
	for range 100 {
		transfer()
	}
	// As testing.AllocsPerRun measures, but without rounding down, and
	// with no collection during the count: a collection empties the
	// engine's pools, and how many land in the count varied enough, under
	// the race detector, to pass Noise between two equal engines.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	const n = 5000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		transfer()
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / n
}

// Noise is how far apart Transfer's averages for two engines may be when
// the engines allocate the same per commit: a hook that allocates on every
// commit adds 1.
const Noise = 0.5
