package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// collector collects delivered messages; done is closed once it has want
// of them or, if until is set, once until holds for one.
type collector struct {
	mu     sync.Mutex
	msgs   []outbox.Message
	want   int
	until  func(outbox.Message) bool
	done   chan struct{}
	closed bool
}

func newCollector(want int) *collector { return &collector{want: want, done: make(chan struct{})} }

func (c *collector) receive(_ context.Context, m outbox.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
	if !c.closed && (c.until == nil && len(c.msgs) == c.want || c.until != nil && c.until(m)) {
		c.closed = true
		close(c.done)
	}
	return nil
}

// received returns a copy of what was delivered so far.
func (c *collector) received() []outbox.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]outbox.Message(nil), c.msgs...)
}

func (c *collector) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("delivered %d messages, want %d", len(c.msgs), c.want)
	}
}

// runRelay runs r until the returned stop is called.
func runRelay(t *testing.T, r *outbox.Relay) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("relay: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// A relay on one instance delivers what an engine on another commits, at
// once: the commit's NOTIFY wakes it (its poll interval is an hour). A
// second relay on the same Store is refused while the first runs (a Store
// runs one relay; relays share a schema through Stores of their own).
func TestRelayOnAnotherInstance(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	a, b := openStore(t, schema), openStore(t, schema)
	eng := newBank(t, a, accounts(2, 100))
	c := newCollector(3)
	stop := runRelay(t, outbox.NewRelay(b, sink.Func(c.receive), outbox.WithPollInterval(time.Hour)))
	// The relay is up once it has delivered the first transfer.
	if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-001", To: "acc-000", Amount: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	c.wait(t)
	for i, m := range c.received()[:3] {
		if m.Version != uint64(i+1) {
			t.Fatalf("message %d has version %d", i, m.Version)
		}
	}

	third := openStore(t, schema)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := outbox.NewRelay(b, sink.Func(func(context.Context, outbox.Message) error { return nil })).Run(rctx)
	if !errors.Is(err, outbox.ErrRelayRunning) {
		t.Fatalf("a second relay on the Store: Run = %v, want ErrRelayRunning", err)
	}
	stop()
	// Released: the third one runs now.
	if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	// Stopping the first relay may cut its last ack short (at least
	// once): the next one may send those messages again, before version 4.
	next := &collector{done: make(chan struct{}), until: func(m outbox.Message) bool { return m.Version == 4 }}
	runRelay(t, outbox.NewRelay(third, sink.Func(next.receive)))
	next.wait(t)
	got := next.received()
	for i, m := range got {
		if m.Version == 4 {
			break
		}
		if m.Version > 4 || i > 0 && m.Version <= got[i-1].Version {
			t.Fatalf("the next relay delivered versions %v before version 4", versions(got))
		}
	}
}

func versions(msgs []outbox.Message) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Version
	}
	return out
}

// Prune deletes the messages delivered longer ago than the retention,
// and the log rows older than the history retention but the head's.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	st := openStore(t, freshSchema(t), postgres.WithClock(clock), postgres.WithRetention(time.Hour),
		postgres.WithHistoryRetention(2*time.Hour), postgres.WithPruneBatch(2))
	eng := newBank(t, st, accounts(2, 100))
	for range 5 {
		if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := st.Undelivered(ctx, 10)
	if err != nil || len(msgs) != 5 {
		t.Fatalf("undelivered %d, %v", len(msgs), err)
	}
	if err := st.Ack(ctx, []string{msgs[0].ID, msgs[1].ID, msgs[2].ID}); err != nil {
		t.Fatal(err)
	}
	if n, err := st.Prune(ctx); n != 0 || err != nil {
		t.Fatalf("Prune before the retention = %d, %v", n, err)
	}
	advance(90 * time.Minute)
	if n, err := st.Prune(ctx); n != 3 || err != nil {
		t.Fatalf("Prune after the retention = %d, %v; want the 3 delivered", n, err)
	}
	if left, err := st.Undelivered(ctx, 10); err != nil || len(left) != 2 {
		t.Fatalf("undelivered after Prune: %d, %v", len(left), err)
	}
	if h, err := st.History(ctx, 1, 5); err != nil || len(h) != 5 {
		t.Fatalf("history before its retention: %d commits, %v", len(h), err)
	}
	// The log's times are the engine's clock: move the store's clock past
	// them.
	advance(24 * time.Hour)
	if _, err := st.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := st.History(ctx, 1, 5)
	if err != nil || len(h) != 1 || h[0].Version != 5 {
		t.Fatalf("history after its retention: %+v, %v; want the head's commit only", h, err)
	}
	// KeySeqs survive pruning: the next message of acc-000 is its 6th.
	r, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	left, err := st.Undelivered(ctx, 10)
	if err != nil || len(left) != 3 || left[2].ID != r.MessageIDs[0] || left[2].KeySeq != 6 {
		t.Fatalf("undelivered %+v, %v", left, err)
	}
}

// Stats counts the pending messages, the parked ones and their keys.
func TestStats(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, freshSchema(t))
	eng := newBank(t, st, accounts(3, 100))
	for _, from := range []string{"acc-000", "acc-000", "acc-001"} {
		if _, err := eng.Transfer(ctx, bank.TransferArgs{From: from, To: "acc-002", Amount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := st.Undelivered(ctx, 10)
	if err != nil || len(msgs) != 3 {
		t.Fatalf("undelivered %d, %v", len(msgs), err)
	}
	if parked, err := st.Failed(ctx, msgs[0].ID, "refused", true, 0); !parked || err != nil {
		t.Fatalf("Failed = %v, %v", parked, err)
	}
	s, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Pending != 2 || s.Parked != 1 || s.ParkedKeys != 1 || !s.OldestPending.Equal(msgs[1].CreatedAt) {
		t.Fatalf("stats %+v; want 2 pending since %v, 1 parked", s, msgs[1].CreatedAt)
	}
	// The parked key holds back its later message only.
	left, err := st.Undelivered(ctx, 10)
	if err != nil || len(left) != 1 || left[0].Key != "acc-001" {
		t.Fatalf("undelivered with acc-000 parked: %+v, %v", left, err)
	}
}
