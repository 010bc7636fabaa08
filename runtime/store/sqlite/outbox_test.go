package sqlite_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// transfers commits n transfers from acc-000, each emitting a message
// keyed acc-000.
func transfers(t *testing.T, eng *bank.Engine, n int) {
	t.Helper()
	for range n {
		if _, err := eng.Transfer(context.Background(), bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

// Counted attempts and parked messages are in the database: they survive
// a restart, and a parked key stays held back.
func TestAttemptsSurviveRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bank.db")
	st := open(t, path)
	eng := newBank(t, st, accounts(2, 100))
	transfers(t, eng, 3)
	first := undelivered(t, st)[0]
	for range 2 {
		if parked, err := st.Failed(ctx, first.ID, "timeout", false, 3); parked || err != nil {
			t.Fatalf("Failed = %v, %v; want counted, not parked", parked, err)
		}
	}
	eng.Close()
	st.Close()

	st2 := open(t, path)
	if parked, err := st2.Failed(ctx, first.ID, "timeout again", false, 3); !parked || err != nil {
		t.Fatalf("third failure after a restart: parked %v, %v; want parked", parked, err)
	}
	ps, err := st2.Parked(ctx)
	if err != nil || len(ps) != 1 || ps[0].ID != first.ID || ps[0].Attempts != 3 || ps[0].LastError != "timeout again" {
		t.Fatalf("Parked = %+v, %v", ps, err)
	}
	if n := len(undelivered(t, st2)); n != 0 {
		t.Fatalf("%d messages of a parked key offered for delivery", n)
	}
	st2.Close()

	st3 := open(t, path)
	if n, err := st3.Replay(ctx, first.Topic, first.Key); n != 1 || err != nil {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	msgs := undelivered(t, st3)
	if len(msgs) != 3 || msgs[0].ID != first.ID {
		t.Fatalf("after replay: %d messages, first %s; want 3 from %s", len(msgs), msgs[0].ID, first.ID)
	}
}

// Delivered messages are deleted after the retention, in batches; pending
// and parked ones never; KeySeqs are not reused after their messages are
// gone.
func TestPruneAfterRetention(t *testing.T) {
	ctx := context.Background()
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	path := filepath.Join(t.TempDir(), "bank.db")
	st := open(t, path, sqlite.WithRetention(time.Hour), sqlite.WithPruneBatch(7), sqlite.WithClock(clock))
	eng := newBank(t, st, accounts(2, 100))
	transfers(t, eng, 30)
	msgs := undelivered(t, st)
	var ids []string
	for _, m := range msgs[:25] {
		ids = append(ids, m.ID)
	}
	if err := st.Ack(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Failed(ctx, msgs[25].ID, "poison", true, 0); err != nil {
		t.Fatal(err)
	}
	if n, err := st.Prune(ctx); n != 0 || err != nil {
		t.Fatalf("Prune before the retention: %d, %v", n, err)
	}
	now.Add(int64(time.Hour + time.Second))
	if n, err := st.Prune(ctx); n != 25 || err != nil {
		t.Fatalf("Prune after the retention: %d, %v; want 25", n, err)
	}
	if ps, _ := st.Parked(ctx); len(ps) != 1 {
		t.Fatalf("the parked message was pruned: %+v", ps)
	}
	if _, err := st.Replay(ctx, "transfer.completed", "acc-000"); err != nil {
		t.Fatal(err)
	}
	if n := len(undelivered(t, st)); n != 5 {
		t.Fatalf("%d undelivered after pruning, want 5", n)
	}
	eng.Close()
	st.Close()

	st2 := open(t, path)
	eng2 := newBank(t, st2, bank.State{})
	transfers(t, eng2, 1)
	after := undelivered(t, st2)
	if last := after[len(after)-1]; last.KeySeq != 31 {
		t.Fatalf("KeySeq after pruning and reopening: %d, want 31", last.KeySeq)
	}
}

func TestOpenRefusesBadPaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "a?mode=ro", filepath.Join(t.TempDir(), "x#y")} {
		if st, err := sqlite.Open(context.Background(), p); err == nil {
			st.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
	if _, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "a.db"), sqlite.WithSynchronous("OFF")); err == nil {
		t.Error("synchronous=OFF accepted")
	}
	if _, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "missing", "dir", "a.db")); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
}
