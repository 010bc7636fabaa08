package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// claimed opens a store of one partition on schema and claims it for a
// relay, as Relay.Run does, so that its acks move the partition's cursor.
func claimed(t *testing.T, schema string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	st := openStore(t, schema, append([]postgres.Option{postgres.WithPartitions(1)}, opts...)...)
	release, err := st.ClaimRelay(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	if st.FleetStats().Leases != 1 {
		t.Fatalf("the claim holds %d partitions, want 1", st.FleetStats().Leases)
	}
	return st
}

func idsOf(msgs []outbox.Message) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	return ids
}

// undelivered reads what the store would deliver now.
func undelivered(t *testing.T, st *postgres.Store) []string {
	t.Helper()
	msgs, err := st.Undelivered(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return idsOf(msgs)
}

// states returns the state of each of ids, as the Inspector reports it.
func states(t *testing.T, st *postgres.Store, ids []string) []string {
	t.Helper()
	ms, err := st.Messages(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.State
		if (m.State == outbox.StateDelivered) != !m.DeliveredAt.IsZero() {
			t.Errorf("%s: state %s, delivered at %v", m.ID, m.State, m.DeliveredAt)
		}
	}
	return out
}

// An ack that leaves a gap (the second message failed, the others were
// confirmed) moves the cursor over the first only: the failed one is read
// again, the acked ones are not, and each reports its state.
func TestCursorStopsAtAGap(t *testing.T) {
	st := claimed(t, freshSchema(t))
	msgs := enqueueKeys(t, st, userPool(t), "a", "b", "c", "d")
	ids := idsOf(msgs)
	if got := undelivered(t, st); !slices.Equal(got, ids) {
		t.Fatalf("read %v, want %v", got, ids)
	}
	if err := st.Ack(context.Background(), []string{ids[0], ids[2]}); err != nil {
		t.Fatal(err)
	}
	if err := st.Ack(context.Background(), []string{ids[3]}); err != nil {
		t.Fatal(err)
	}
	if got := undelivered(t, st); !slices.Equal(got, ids[1:2]) {
		t.Fatalf("read %v after acking all but %s", got, ids[1])
	}
	want := []string{"delivered", "pending", "delivered", "delivered"}
	if got := states(t, st, ids); !slices.Equal(got, want) {
		t.Fatalf("states %v, want %v", got, want)
	}
	s, err := st.Stats(context.Background())
	if err != nil || s.Pending != 1 {
		t.Fatalf("stats %+v, %v; want 1 pending", s, err)
	}
	// The rest acked, a new message is all there is to read, from a
	// Store that claims the partition after this one let it go.
	if err := st.Ack(context.Background(), ids[1:2]); err != nil {
		t.Fatal(err)
	}
	if got := undelivered(t, st); len(got) != 0 {
		t.Fatalf("read %v after acking everything", got)
	}
}

// A partition with a parked message: its key's later messages are not
// read, so the acks of the others must not move the cursor past them.
// After Replay, the parked key's messages all come, in order.
func TestCursorKeepsParkedKeysMessages(t *testing.T) {
	ctx := context.Background()
	st := claimed(t, freshSchema(t))
	pool := userPool(t)
	first := enqueueKeys(t, st, pool, "p", "x")
	if got := undelivered(t, st); !slices.Equal(got, idsOf(first)) {
		t.Fatalf("read %v", got)
	}
	if parked, err := st.Failed(ctx, first[0].ID, "poison", true, 0); !parked || err != nil {
		t.Fatalf("Failed = %v, %v", parked, err)
	}
	if err := st.Ack(ctx, []string{first[1].ID}); err != nil {
		t.Fatal(err)
	}
	held := enqueueKeys(t, st, pool, "p", "y", "p", "z")
	got := undelivered(t, st)
	if want := []string{held[1].ID, held[3].ID}; !slices.Equal(got, want) {
		t.Fatalf("read %v with p parked, want %v", got, want)
	}
	if err := st.Ack(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got := undelivered(t, st); len(got) != 0 {
		t.Fatalf("read %v with p parked and the rest acked", got)
	}
	if n, err := st.Replay(ctx, "t", "p"); n != 1 || err != nil {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	// A read may take less than there is: read and ack until nothing
	// is left.
	got = nil
	for range 10 {
		more := undelivered(t, st)
		if len(more) == 0 {
			break
		}
		got = append(got, more...)
		if err := st.Ack(ctx, more); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{first[0].ID, held[0].ID, held[2].ID}; !slices.Equal(got, want) {
		t.Fatalf("read %v after Replay, want p's three messages %v", got, want)
	}
}

// A relay that lost its lease moves no cursor: what it read is read again
// by the relay that took the partition over.
func TestCursorFenced(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	lease := 300 * time.Millisecond
	a := claimed(t, schema, postgres.WithRelayLease(lease))
	msgs := enqueueKeys(t, a, userPool(t), "a", "b")
	if got := undelivered(t, a); len(got) != 2 {
		t.Fatalf("read %v", got)
	}
	a.PauseLeases(true)
	b := openStore(t, schema, postgres.WithRelayLease(lease))
	release, err := b.ClaimRelay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	waitUntil(t, 10*time.Second, "b takes the partition over", func() bool { return b.FleetStats().Leases == 1 })
	if err := a.Ack(ctx, idsOf(msgs)); err == nil {
		t.Fatal("the fenced relay's ack succeeded")
	}
	if got := undelivered(t, b); !slices.Equal(got, idsOf(msgs)) {
		t.Fatalf("the new holder read %v, want %v", got, idsOf(msgs))
	}
}

// Messages acked through the cursor are pruned once a Prune has seen
// them delivered longer than the retention ago, and not before.
func TestCursorPrune(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	st := claimed(t, freshSchema(t), postgres.WithClock(clock), postgres.WithRetention(time.Hour), postgres.WithPruneBatch(2))
	pool := userPool(t)
	msgs := enqueueKeys(t, st, pool, "a", "b", "c", "d", "e")
	if got := undelivered(t, st); len(got) != 5 {
		t.Fatalf("read %v", got)
	}
	if err := st.Ack(ctx, idsOf(msgs[:3])); err != nil {
		t.Fatal(err)
	}
	if n, err := st.Prune(ctx); n != 0 || err != nil {
		t.Fatalf("Prune at once = %d, %v", n, err)
	}
	advance(30 * time.Minute)
	if err := st.Ack(ctx, idsOf(msgs[3:4])); err != nil {
		t.Fatal(err)
	}
	if n, err := st.Prune(ctx); n != 0 || err != nil {
		t.Fatalf("Prune before the retention = %d, %v", n, err)
	}
	advance(45 * time.Minute)
	if n, err := st.Prune(ctx); n != 3 || err != nil {
		t.Fatalf("Prune 75 minutes after the first acks = %d, %v; want those 3", n, err)
	}
	advance(time.Hour)
	if n, err := st.Prune(ctx); n != 1 || err != nil {
		t.Fatalf("Prune after the retention of the 4th = %d, %v; want 1", n, err)
	}
	if got := undelivered(t, st); !slices.Equal(got, idsOf(msgs[4:])) {
		t.Fatalf("read %v after Prune", got)
	}
	if ms, err := st.Messages(ctx, idsOf(msgs)); err != nil || len(ms) != 1 {
		t.Fatalf("messages left %d, %v; want 1", len(ms), err)
	}
}

// A relay reads its partitions each after its own cursor, a share of
// the read each: every message comes once, each read in commit order,
// each key's messages in KeySeq order, across reads that take less than
// the backlog; a backlog in one partition soon fills whole reads.
func TestCursorManyPartitions(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	st := openStore(t, schema, postgres.WithPartitions(16))
	release, err := st.ClaimRelay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var keys []string
	for i := range 100 {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	pool := userPool(t)
	all := append(enqueueKeys(t, st, pool, keys...), enqueueKeys(t, st, pool, keys...)...)
	hot := make([]string, 200)
	for i := range hot {
		hot[i] = "hot"
	}
	all = append(all, enqueueKeys(t, st, pool, hot...)...)
	seen := map[string]bool{}
	last := map[string]uint64{}
	var sizes []int
	for range 100 {
		msgs, err := st.Undelivered(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		if len(msgs) > 30 {
			t.Fatalf("read %d messages, asked for 30", len(msgs))
		}
		sizes = append(sizes, len(msgs))
		for i, m := range msgs {
			if i > 0 && (m.Version < msgs[i-1].Version || m.Version == msgs[i-1].Version && m.ID <= msgs[i-1].ID) {
				t.Fatalf("read out of commit order: %s after %s", m.ID, msgs[i-1].ID)
			}
			if seen[m.ID] {
				t.Fatalf("%s read twice", m.ID)
			}
			seen[m.ID] = true
			if m.KeySeq != last[m.Key]+1 {
				t.Fatalf("key %s: KeySeq %d after %d", m.Key, m.KeySeq, last[m.Key])
			}
			last[m.Key] = m.KeySeq
		}
		if err := st.Ack(ctx, idsOf(msgs)); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != len(all) {
		t.Fatalf("read %d messages, want %d", len(seen), len(all))
	}
	// The last reads are of the hot key alone: after a read or two to
	// find it out, they are full.
	n := len(sizes)
	if n < 4 || sizes[n-2] != 30 || sizes[n-3] != 30 {
		t.Errorf("read sizes %v: the hot partition's backlog is not read in full reads", sizes)
	}
}

// A read on its way while the lease loop gives one of its partitions
// back (a relay joined) returns none of that partition's messages: the
// new holder reads them, and nothing is sent twice.
func TestReadDropsPartitionGivenBack(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	opts := []postgres.Option{postgres.WithPartitions(2), postgres.WithRelayLease(600 * time.Millisecond)}
	a := openStore(t, schema, opts...)
	releaseA, err := a.ClaimRelay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseA()
	waitUntil(t, 10*time.Second, "a holds both partitions", func() bool { return a.FleetStats().Leases == 2 })
	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	all := idsOf(enqueueKeys(t, a, userPool(t), keys...))

	// a's read runs its statement, then waits while b joins and a gives
	// it a partition.
	ran, goOn := make(chan struct{}), make(chan struct{})
	a.AfterRead(func() {
		close(ran)
		<-goOn
	})
	readA := make(chan []string, 1)
	go func() {
		msgs, err := a.Undelivered(ctx, 100)
		if err != nil {
			t.Error(err)
		}
		readA <- idsOf(msgs)
	}()
	<-ran
	a.AfterRead(nil)
	b := openStore(t, schema, opts...)
	releaseB, err := b.ClaimRelay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseB()
	waitUntil(t, 10*time.Second, "a gives b a partition", func() bool {
		return a.FleetStats().Leases == 1 && b.FleetStats().Leases == 1
	})
	close(goOn)
	gotA := <-readA
	gotB := undelivered(t, b)
	for _, id := range gotA {
		if slices.Contains(gotB, id) {
			t.Errorf("%s read by a, which gave its partition back during the read, and by b, its new holder", id)
		}
	}
	if got := append(gotA, gotB...); len(got) != len(all) {
		t.Errorf("a read %d and b %d messages; want the %d enqueued between them", len(gotA), len(gotB), len(all))
	}
	if len(gotA) == 0 || len(gotB) == 0 {
		t.Errorf("a read %d and b %d messages; want some each (20 keys over 2 partitions)", len(gotA), len(gotB))
	}
}

// A read never returns more than its limit, in commit order, even when
// the shares of its partitions add up to more: here a hot partition's
// share is the whole read, and the drained partitions, which get one
// each, receive messages meanwhile.
func TestReadKeepsItsLimit(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	st := openStore(t, schema, postgres.WithPartitions(16))
	release, err := st.ClaimRelay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	pool := userPool(t)
	hot := make([]string, 300)
	for i := range hot {
		hot[i] = "hot"
	}
	enqueueKeys(t, st, pool, hot...)
	full := false
	for range 10 { // until the hot partition fills a read
		msgs, err := st.Undelivered(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Ack(ctx, idsOf(msgs)); err != nil {
			t.Fatal(err)
		}
		if full = len(msgs) == 30; full {
			break
		}
	}
	if !full {
		t.Fatal("the hot partition never filled a read")
	}
	var keys []string
	for i := range 100 {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	enqueueKeys(t, st, pool, keys...)
	// The read sent with the last ack was before these; the next one
	// goes with this ack.
	msgs, err := st.Undelivered(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Ack(ctx, idsOf(msgs)); err != nil {
		t.Fatal(err)
	}
	msgs, err = st.Undelivered(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 30 {
		t.Fatalf("read %d messages, asked for 30", len(msgs))
	}
	for i, m := range msgs {
		if m.Key != "hot" {
			t.Errorf("read %s of key %s before older messages of the hot key", m.ID, m.Key)
		}
		if i > 0 && m.KeySeq != msgs[i-1].KeySeq+1 {
			t.Errorf("KeySeq %d after %d", m.KeySeq, msgs[i-1].KeySeq)
		}
	}
}
