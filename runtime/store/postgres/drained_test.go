package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// isOpen reports whether the channel c is still open.
func isOpen(c <-chan struct{}) bool {
	select {
	case <-c:
		return false
	default:
		return true
	}
}

// listening returns a Store claimed for a relay whose leases last an hour
// (their renewal wakes the relay) and whose listener is up: nothing but
// a commit closes its Notify channel.
func listening(t *testing.T) *postgres.Store {
	t.Helper()
	st := claimed(t, freshSchema(t), postgres.WithRelayLease(time.Hour))
	heard(t, st.Notify(), "the listener's start")
	return st
}

// heard waits until c closes.
func heard(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s was not heard of", what)
	}
}

// After an ack that settles a read which took all there was, Drained
// hands the relay a channel that stays open until a commit, then closes;
// the next read clears it.
func TestDrainedWaitsForACommit(t *testing.T) {
	ctx := context.Background()
	st := listening(t)
	pool := userPool(t)
	n := st.Notify()
	enqueueKeys(t, st, pool, "a", "b", "c")
	heard(t, n, "the commit")
	msgs, err := st.Undelivered(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("read %d messages, want 3", len(msgs))
	}
	if st.Drained() != nil {
		t.Fatal("drained before the ack")
	}
	if err := st.Ack(ctx, idsOf(msgs[:2])); err != nil {
		t.Fatal(err)
	}
	if st.Drained() != nil {
		t.Fatal("drained with a message of the read not acked")
	}
	if err := st.Ack(ctx, idsOf(msgs[2:])); err != nil {
		t.Fatal(err)
	}
	drained := st.Drained()
	if drained == nil {
		t.Fatal("not drained after the ack of a read that took everything")
	}
	if !isOpen(drained) {
		t.Fatal("the drained channel is closed with no commit since the read")
	}
	m := enqueueOne(t, st, pool, "d", "d")
	heard(t, drained, "the commit after the read")
	if got := undelivered(t, st); len(got) != 1 || got[0] != m.ID {
		t.Fatalf("read %v after the commit, want [%s]", got, m.ID)
	}
	if st.Drained() != nil {
		t.Fatal("still drained after a read")
	}
}

// A commit that lands after a read's statement ran, and is heard of
// before the ack, leaves the relay nothing to wait for: Drained's channel
// is the one taken before the read, which that commit closed.
func TestDrainedSeesACommitDuringTheRead(t *testing.T) {
	ctx := context.Background()
	st := listening(t)
	pool := userPool(t)
	n := st.Notify()
	first := enqueueOne(t, st, pool, "a", "1")
	heard(t, n, "the first commit")
	var late outbox.Message
	st.AfterRead(func() {
		st.AfterRead(nil)
		n := st.Notify()
		late = enqueueOne(t, st, pool, "b", "2")
		heard(t, n, "the late commit")
	})
	msgs, err := st.Undelivered(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got := idsOf(msgs); len(got) != 1 || got[0] != first.ID {
		t.Fatalf("read %v, want [%s] (the late commit came after the statement)", got, first.ID)
	}
	if err := st.Ack(ctx, idsOf(msgs)); err != nil {
		t.Fatal(err)
	}
	if d := st.Drained(); d != nil && isOpen(d) {
		t.Fatal("the relay would wait for a commit, with one not read")
	}
	if got := undelivered(t, st); len(got) != 1 || got[0] != late.ID {
		t.Fatalf("read %v, want [%s]", got, late.ID)
	}
}

// A relay whose poll and leases last an hour delivers a backlog spread
// over 16 partitions, read in many rounds of 50, with no commit after
// the backlog: it never waits on Drained while anything is left.
func TestRelayDrainsWithoutACommit(t *testing.T) {
	schema := freshSchema(t)
	st := openStore(t, schema, postgres.WithPartitions(16), postgres.WithRelayLease(time.Hour))
	pool := userPool(t)
	keys := make([]string, 2000)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i%300)
	}
	msgs := enqueueKeys(t, st, pool, keys...)
	rec := newRecorder()
	runRelay(t, outbox.NewRelay(st, rec.sink(0), outbox.WithBatchSize(50), outbox.WithPollInterval(time.Hour)))
	rec.waitFor(t, idsOf(msgs), 30*time.Second)
	if dups := rec.check(t); len(dups) > 0 {
		t.Errorf("%d duplicates", len(dups))
	}
}
