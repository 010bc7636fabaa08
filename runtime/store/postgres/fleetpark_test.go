package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
)

// A parked key blocks only itself across a fleet of two relays, whichever
// holds its partition; Replay and Skip from a Store that runs no relay (an
// operator's process) let the key flow again, and its NOTIFY wakes the
// relay that holds it (their poll interval is an hour).
func TestFleetParkingPerKey(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	pool := userPool(t)
	rec := newRecorder()
	var accept atomic.Bool
	poisoned := func(i int) outbox.Sink {
		return sinkFunc(func(ctx context.Context, batch []outbox.Message) (int, error) {
			for n, m := range batch {
				if string(m.Payload) == "poison" && !accept.Load() {
					rec.record(i, batch[:n])
					return n, outbox.Permanent(errors.New("poison"))
				}
			}
			rec.record(i, batch)
			return len(batch), nil
		})
	}
	a, b := openStore(t, schema, fleetOpts(time.Second)...), openStore(t, schema, fleetOpts(time.Second)...)
	operator := openStore(t, schema)
	runRelay(t, outbox.NewRelay(a, poisoned(0), outbox.WithPollInterval(time.Hour)))
	runRelay(t, outbox.NewRelay(b, poisoned(1), outbox.WithPollInterval(time.Hour)))
	waitUntil(t, 10*time.Second, "two relays hold 4 partitions each", func() bool {
		return a.FleetStats().Leases == 4 && b.FleetStats().Leases == 4
	})

	var others []string
	var pIDs, qIDs []string
	for i := range 3 {
		for _, key := range []string{"p", "q"} {
			payload := fmt.Sprintf("%s%d", key, i)
			if i == 0 {
				payload = "poison"
			}
			out := enqueueOne(t, operator, pool, key, payload)
			if key == "p" {
				pIDs = append(pIDs, out.ID)
			} else {
				qIDs = append(qIDs, out.ID)
			}
		}
		for k := range 20 {
			others = append(others, enqueueOne(t, operator, pool, fmt.Sprintf("o%d", k), "ok").ID)
		}
	}
	rec.waitFor(t, others, 20*time.Second)
	waitUntil(t, 10*time.Second, "p and q parked", func() bool {
		parked, err := operator.Parked(ctx)
		return err == nil && len(parked) == 2
	})
	rec.mu.Lock()
	for _, id := range slices.Concat(pIDs, qIDs) {
		if rec.ids[id] != 0 {
			t.Errorf("%s delivered behind a parked message", id)
		}
	}
	rec.mu.Unlock()

	accept.Store(true)
	if n, err := operator.Replay(ctx, "t", "p"); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	if err := operator.Skip(ctx, qIDs[0]); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, slices.Concat(pIDs, qIDs[1:]), 20*time.Second)
	rec.mu.Lock()
	if rec.ids[qIDs[0]] != 0 {
		t.Errorf("the skipped message was delivered")
	}
	rec.mu.Unlock()
	// Each key in KeySeq order, once; q's KeySeq 1 was skipped.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	last := map[string]uint64{}
	for _, d := range rec.log {
		if d.m.KeySeq <= last[d.m.Key] {
			t.Errorf("key %s: KeySeq %d after %d", d.m.Key, d.m.KeySeq, last[d.m.Key])
		}
		last[d.m.Key] = d.m.KeySeq
	}
	if last["p"] != 3 || last["q"] != 3 {
		t.Errorf("last KeySeqs p %d, q %d; want 3", last["p"], last["q"])
	}
}
