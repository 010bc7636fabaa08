package memory_test

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/memory"
	"pgregory.net/rapid"
)

func commit(t *testing.T, st *memory.Store, from, to uint64) {
	t.Helper()
	var recs []*engine.Record
	for v := from; v <= to; v++ {
		recs = append(recs, &engine.Record{Version: v, State: new(int), Messages: []outbox.Message{
			{ID: outbox.MessageID(0, v, 0), Topic: "t", Key: "k", KeySeq: v, Version: v},
		}})
	}
	if err := st.Commit(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// Acks in any order, across the store's internal chunks, leave exactly the
// unacked messages, in commit order.
func TestAckAcrossChunks(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	const n = 5000
	commit(t, st, 1, n)
	var ids []string
	for v := uint64(1); v <= n; v++ {
		if v%3 != 0 || v < 2500 {
			ids = append(ids, outbox.MessageID(0, v, 0))
		}
	}
	ids = append(ids, outbox.MessageID(0, n+1, 0), "not-an-id") // unknown IDs are ignored
	if err := st.Ack(ctx, ids[len(ids)/2:]); err != nil {
		t.Fatal(err)
	}
	if err := st.Ack(ctx, ids[:len(ids)/2]); err != nil {
		t.Fatal(err)
	}
	msgs, err := st.Undelivered(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for v := uint64(2500); v <= n; v++ {
		if v%3 == 0 {
			want = append(want, outbox.MessageID(0, v, 0))
		}
	}
	if len(msgs) != len(want) || st.Len() != len(want) {
		t.Fatalf("%d undelivered (Len %d), want %d", len(msgs), st.Len(), len(want))
	}
	for i, m := range msgs {
		if m.ID != want[i] {
			t.Fatalf("undelivered[%d] = %s, want %s", i, m.ID, want[i])
		}
	}
	if msgs, _ := st.Undelivered(ctx, 3); len(msgs) != 3 || msgs[0].ID != want[0] {
		t.Fatalf("limit 3: %d messages", len(msgs))
	}
	// Acking again is harmless.
	if err := st.Ack(ctx, ids); err != nil || st.Len() != len(want) {
		t.Fatalf("re-ack: %v, Len %d", err, st.Len())
	}
}

func TestCommitIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	commit(t, st, 1, 2)
	st.FailNextCommit(errors.New("injected"))
	err := st.Commit(ctx, []*engine.Record{{Version: 3, State: new(int)}})
	if err == nil {
		t.Fatal("want the injected error")
	}
	// Out of order: refused, nothing kept.
	if err := st.Commit(ctx, []*engine.Record{{Version: 3, State: new(int)}, {Version: 5, State: new(int)}}); err == nil {
		t.Fatal("a gap in versions must be refused")
	}
	rec, err := st.Recover(ctx, nil)
	if err != nil || rec.Version != 2 || rec.KeySeqs[outbox.TopicKey{Topic: "t", Key: "k"}] != 2 {
		t.Fatalf("Recover = %+v, %v; want version 2, KeySeq 2", rec, err)
	}
	if st.Len() != 2 {
		t.Fatalf("Len = %d, want 2", st.Len())
	}
}

func TestNotifyClosesOnCommitWithMessages(t *testing.T) {
	st := memory.New()
	ch := st.Notify()
	select {
	case <-ch:
		t.Fatal("closed before any commit")
	default:
	}
	commit(t, st, 1, 1)
	select {
	case <-ch:
	default:
		t.Fatal("not closed by a commit with messages")
	}
}

// KeySeqs survive the messages that carried them being acked and dropped.
func TestRecoverKeySeqsAfterAcks(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	commit(t, st, 1, 3)
	if err := st.Ack(ctx, []string{outbox.MessageID(0, 1, 0), outbox.MessageID(0, 2, 0), outbox.MessageID(0, 3, 0)}); err != nil {
		t.Fatal(err)
	}
	commit(t, st, 4, 4)
	if err := st.Ack(ctx, []string{outbox.MessageID(0, 4, 0)}); err != nil {
		t.Fatal(err)
	}
	rec, err := st.Recover(ctx, nil)
	if err != nil || rec.KeySeqs[outbox.TopicKey{Topic: "t", Key: "k"}] != 4 {
		t.Fatalf("Recover = %+v, %v; want KeySeq 4", rec, err)
	}
}

// A queue that is emptied and filled again reuses its memory: committing
// as many messages as it held before allocates nothing, and the messages
// read back are the new ones, whole.
func TestEmptiedChunksAreReused(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	const n = 3 * 1024 // three chunks: within what the store keeps for reuse
	recs := func(from uint64) []*engine.Record {
		out := make([]*engine.Record, n)
		for i := range out {
			v := from + uint64(i)
			out[i] = &engine.Record{Version: v, State: new(int), Messages: []outbox.Message{
				{ID: outbox.MessageID(0, v, 0), Topic: "t", Key: "k", KeySeq: v, Version: v, Payload: []byte{byte(v)}},
			}}
		}
		return out
	}
	drain := func(wantFirst uint64) {
		t.Helper()
		msgs, err := st.Undelivered(ctx, 2*n)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != n {
			t.Fatalf("%d undelivered, want %d", len(msgs), n)
		}
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			v := wantFirst + uint64(i)
			if m.Version != v || m.ID != outbox.MessageID(0, v, 0) || len(m.Payload) != 1 || m.Payload[0] != byte(v) {
				t.Fatalf("message %d = %+v, want version %d", i, m, v)
			}
			ids[i] = m.ID
		}
		if err := st.Ack(ctx, ids); err != nil {
			t.Fatal(err)
		}
	}
	first, second := recs(1), recs(n+1)
	if err := st.Commit(ctx, first); err != nil {
		t.Fatal(err)
	}
	drain(1)
	// As testing.AllocsPerRun counts, for a function that can run once.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := st.Commit(ctx, second)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if allocs := after.Mallocs - before.Mallocs; allocs != 0 {
		t.Errorf("committing %d messages into an emptied queue allocated %v times, want 0", n, allocs)
	}
	drain(n + 1)
}

// Whatever the order of the acks, and with IDs repeated, unknown or
// already acked among them, what is left undelivered is exactly the
// messages never acked, in commit order. Relays ack in commit order, which
// the store looks for first; this checks every other order too.
func TestAckAnyOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		st := memory.New()
		n := rapid.IntRange(1, 3000).Draw(t, "messages")
		var recs []*engine.Record
		for v := uint64(1); v <= uint64(n); v++ {
			recs = append(recs, &engine.Record{Version: v, State: new(int), Messages: []outbox.Message{
				{ID: outbox.MessageID(0, v, 0), Topic: "t", Key: "k", KeySeq: v, Version: v},
			}})
		}
		if err := st.Commit(ctx, recs); err != nil {
			t.Fatal(err)
		}
		acked := make([]bool, n+2)
		for range rapid.IntRange(1, 6).Draw(t, "batches") {
			from := rapid.IntRange(0, n+1).Draw(t, "from")
			to := rapid.IntRange(from, n+1).Draw(t, "to")
			var ids []string
			for v := from; v <= to; v++ { // 0 and n+1 are not in the store
				if rapid.Bool().Draw(t, "pick") {
					ids = append(ids, outbox.MessageID(0, uint64(v), 0))
					acked[v] = true
				}
			}
			switch rapid.IntRange(0, 2).Draw(t, "order") {
			case 1:
				slices.Reverse(ids)
			case 2:
				ids = rapid.Permutation(ids).Draw(t, "perm")
			}
			if len(ids) > 0 && rapid.Bool().Draw(t, "repeat") {
				ids = append(ids, ids[rapid.IntRange(0, len(ids)-1).Draw(t, "dup")])
			}
			if err := st.Ack(ctx, ids); err != nil {
				t.Fatal(err)
			}
		}
		var want []string
		for v := 1; v <= n; v++ {
			if !acked[v] {
				want = append(want, outbox.MessageID(0, uint64(v), 0))
			}
		}
		msgs, err := st.Undelivered(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]string, len(msgs))
		for i, m := range msgs {
			got[i] = m.ID
		}
		if !slices.Equal(got, want) || st.Len() != len(want) {
			t.Fatalf("undelivered %d messages (Len %d), want %d:\n got %v\nwant %v", len(got), st.Len(), len(want), got, want)
		}
	})
}

// BenchmarkAck acks a queue the way a relay does: batches of 100 (the
// relay's default), in commit order. It reports ns per acked message.
func BenchmarkAck(b *testing.B) {
	ctx := context.Background()
	st := memory.New()
	const queue, batch = 4096, 100
	ids := make([]string, 0, queue)
	v := uint64(0)
	fill := func() {
		recs := make([]*engine.Record, queue)
		ids = ids[:0]
		for i := range recs {
			v++
			id := outbox.MessageID(0, v, 0)
			recs[i] = &engine.Record{Version: v, State: new(int), Messages: []outbox.Message{
				{ID: id, Topic: "t", Key: "k", KeySeq: v, Version: v, Payload: []byte(`{"id":"u-1"}`)},
			}}
			ids = append(ids, id)
		}
		if err := st.Commit(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	done := 0
	for b.Loop() {
		if done == len(ids) {
			b.StopTimer()
			fill()
			done = 0
			b.StartTimer()
		}
		end := min(done+batch, len(ids))
		if err := st.Ack(ctx, ids[done:end]); err != nil {
			b.Fatal(err)
		}
		done = end
	}
	if st.Len() != len(ids)-done {
		b.Fatalf("Len %d after acking %d of %d", st.Len(), done, len(ids))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/msg")
}
