package main

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/theus-go/theus/internal/servicetest"
)

// The kill test: three engine processes transferring without end and one
// relay process delivering into bank_deliveries, on one schema; every
// cycle one of the four, picked at random, is killed with SIGKILL and
// started again, 30 cycles. Then every receipt a caller saw is in the
// history, every commit has its message, and the deliveries, at least
// once each, leave exactly one per commit after dedup by (key, KeySeq).
func TestKillAndRestart(t *testing.T) {
	cfg, pool := testConfig(t)
	cfg.workers = 4
	ctx := context.Background()
	if err := createDeliveries(ctx, pool, cfg.schema); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		receipts []Receipt
	)
	collect := func(r Receipt) {
		mu.Lock()
		receipts = append(receipts, r)
		mu.Unlock()
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(receipts)
	}
	common := []string{"-schema", cfg.schema, "-accounts", strconv.Itoa(cfg.accounts), "-balance", strconv.FormatInt(cfg.balance, 10)}
	// The engines' sessions carry a name of their own, so that the
	// test can wait for the server to be done with them after a kill.
	engines := cfg.schema + "_engine"
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	args := func(i int) []string {
		if i == 3 {
			return append([]string{"relay", "-store", cfg.store}, common...)
		}
		return append(append([]string{"worker", "-store", servicetest.WithParam(cfg.store, "application_name", engines)}, common...), "-workers", strconv.Itoa(cfg.workers), "-transfers", "0", "-seed", strconv.FormatUint(rnd.Uint64(), 10))
	}
	procs := make([]*Proc, 4) // 0-2 engines, 3 the relay
	start := func(i int) {
		t.Helper()
		p, err := Start(exe, nil, args(i), collect, os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		procs[i] = p
		select {
		case <-p.Ready():
		case <-p.Done():
			t.Fatalf("process %d (%v) ended before it was ready: %v", i, args(i)[0], p.Err)
		case <-time.After(30 * time.Second):
			t.Fatalf("process %d not ready after 30s", i)
		}
	}
	defer func() {
		for _, p := range procs {
			if p != nil {
				p.Kill()
			}
		}
	}()
	for i := range procs {
		start(i)
	}
	began := time.Now()
	kills := [4]int{}
	for cycle := range 30 {
		// Let the cluster make progress since the last restart.
		want := count() + 20
		deadline := time.Now().Add(30 * time.Second)
		for count() < want {
			if time.Now().After(deadline) {
				t.Fatalf("cycle %d: no progress (%d receipts)", cycle, count())
			}
			for i, p := range procs {
				select {
				case <-p.Done():
					t.Fatalf("cycle %d: process %d ended on its own: %v", cycle, i, p.Err)
				default:
				}
			}
			time.Sleep(2 * time.Millisecond) // polling the receipt count
		}
		victim := rnd.IntN(len(procs))
		procs[victim].Kill()
		kills[victim]++
		start(victim)
	}
	for i := range 3 {
		procs[i].Kill()
	}
	// A killed engine may have sent a whole commit group (one round trip)
	// that the server still commits: wait until its sessions are gone, so
	// that the history Check reads is final.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, engines).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions of the killed engines still on the server after 30s", n)
		}
		time.Sleep(5 * time.Millisecond) // polling the server's sessions
	}
	rep, err := Check(ctx, cfg, pool, append([]Receipt(nil), receipts...), true, time.Minute)
	if err != nil {
		select {
		case <-procs[3].Done():
			t.Fatalf("%v (the relay ended: %v)", err, procs[3].Err)
		default:
		}
		t.Fatal(err)
	}
	t.Logf("30 kills (engines %d/%d/%d, relay %d) in %v; %d receipts seen; %s",
		kills[0], kills[1], kills[2], kills[3], time.Since(began).Round(time.Millisecond), count(), rep)
}
