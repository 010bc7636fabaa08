package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// Random histories of a fleet of up to three relays, which start, stop,
// pause past their leases and resume, while transactions enqueue to a few
// keys: every message is delivered, the first deliveries of each key come
// in KeySeq order without gaps, and a message is delivered twice only if
// one of its deliveries was by a relay that was paused or stopped at some
// point (a relay stopped in the middle of a batch leaves it unacked;
// rebalancing alone delivers nothing twice).
func TestPropertyFleet(t *testing.T) {
	fewerChecks(t, 4)
	pool := userPool(t)
	rapid.Check(t, func(rt *rapid.T) {
		schema := freshSchema(t)
		const lease = 300 * time.Millisecond
		rec := newRecorder()
		var stores [3]*postgres.Store
		var stops [3]func()
		paused := map[int]bool{}
		everPaused := map[int]bool{} // or stopped
		for i := range stores {
			stores[i] = openStore(t, schema, fleetOpts(lease)...)
		}
		defer func() {
			for i, stop := range stops {
				if stop != nil {
					stop()
					stops[i] = nil
				}
			}
			for _, st := range stores {
				st.Close()
			}
		}()
		var ids []string
		steps := rapid.IntRange(5, 20).Draw(rt, "steps")
		for range steps {
			i := rapid.IntRange(0, 2).Draw(rt, "relay")
			switch op := rapid.SampledFrom([]string{"enqueue", "enqueue", "start", "stop", "pause", "resume"}).Draw(rt, "op"); op {
			case "enqueue":
				n := rapid.IntRange(1, 6).Draw(rt, "n")
				keys := make([]string, n)
				for j := range keys {
					keys[j] = fmt.Sprintf("k%d", rapid.IntRange(0, 5).Draw(rt, "key"))
				}
				for _, m := range enqueueKeys(t, stores[i], pool, keys...) {
					ids = append(ids, m.ID)
				}
			case "start":
				if stops[i] == nil {
					stops[i] = runRelay(t, outbox.NewRelay(stores[i], rec.sink(i), outbox.WithPollInterval(time.Hour), outbox.WithBatchSize(3)))
				}
			case "stop":
				if stops[i] != nil {
					stops[i]()
					stops[i] = nil
					everPaused[i] = true
				}
			case "pause":
				stores[i].PauseLeases(true)
				paused[i], everPaused[i] = true, true
			case "resume":
				stores[i].PauseLeases(false)
				paused[i] = false
			}
		}
		// Resume everything, and make sure a relay runs.
		for i := range stores {
			stores[i].PauseLeases(false)
		}
		if stops[0] == nil && stops[1] == nil && stops[2] == nil {
			stops[0] = runRelay(t, outbox.NewRelay(stores[0], rec.sink(0), outbox.WithPollInterval(time.Hour), outbox.WithBatchSize(3)))
		}
		rec.waitFor(t, ids, 30*time.Second)
		for _, d := range rec.check(t) {
			rec.mu.Lock()
			first := -1
			for _, x := range rec.log {
				if x.m.ID == d.m.ID {
					first = x.relay
					break
				}
			}
			rec.mu.Unlock()
			// One of the two sends is by a relay that lost the
			// partition: it sends the batch it had read after the
			// take-over, or before it and without acking.
			if !everPaused[first] && !everPaused[d.relay] {
				rt.Errorf("%s delivered twice (by relay %d), first by relay %d, never paused or stopped", d.m.ID, d.relay, first)
			}
		}
	})
}
