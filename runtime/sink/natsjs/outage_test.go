package natsjs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/natsjs"
	"github.com/theus-go/theus/runtime/store/memory"
)

// lossy passes batches to the sink and, while on, reports none of them
// delivered: the broker stored them but the acks were lost.
type lossy struct {
	sink   outbox.Sink
	on     atomic.Bool
	passed atomic.Int64 // messages the sink acked while on
}

func (l *lossy) Send(ctx context.Context, batch []outbox.Message) (int, error) {
	n, err := l.sink.Send(ctx, batch)
	if l.on.Load() {
		l.passed.Add(int64(n))
		return 0, outbox.Unavailable(context.DeadlineExceeded)
	}
	return n, err
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}

// The broker's dedup window (2s) is shorter than an outage (6s) during
// which commits go on and acks are lost: the stream ends up with raw
// duplicates, and a consumer with outbox.Dedup still sees every message
// once, in per-key order.
func TestOutageDedupWindowPassed(t *testing.T) {
	if testing.Short() {
		t.Skip("outage test takes ~7s")
	}
	dir := t.TempDir()
	srv := startServer(t, dir, -1)
	p := port(srv)
	defer func() { stopServer(srv) }()

	_, js := connect(t, srv.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	createStream(t, js, jetstream.StreamConfig{
		Name: "OUT", Subjects: []string{"out.>"}, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Second,
	})
	sink := &lossy{sink: newSink(t, js, natsjs.WithAckTimeout(200*time.Millisecond), natsjs.WithSubjectTemplate("out.{key}"))}

	st := memory.New()
	var prod producer
	keys := []string{"a", "b", "c", "d"}
	committed := 0
	commit := func(n int) {
		t.Helper()
		var recs []*engine.Record
		for range n {
			m := prod.next("ev", keys[committed%len(keys)])
			committed++
			recs = append(recs, &engine.Record{Version: m.Version, State: new(int), Messages: []outbox.Message{m}})
		}
		if err := st.Commit(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	relay := outbox.NewRelay(st, sink, outbox.WithBatchSize(32), outbox.WithRelayBackoff(10*time.Millisecond, 100*time.Millisecond),
		outbox.WithPollInterval(50*time.Millisecond), outbox.WithMaxAttempts(1000))
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	// Normal operation.
	commit(50)
	waitFor(t, 10*time.Second, "the first 50 delivered", func() bool { return st.Len() == 0 })

	// Acks lost, then the broker goes down.
	sink.on.Store(true)
	commit(20)
	waitFor(t, 10*time.Second, "20 stored with lost acks", func() bool { return sink.passed.Load() >= 20 })
	stopServer(srv)
	sink.on.Store(false)

	// 6s outage, commits go on.
	outage := time.NewTimer(6 * time.Second)
	pace := time.NewTicker(50 * time.Millisecond)
	for down := true; down; {
		select {
		case <-outage.C:
			down = false
		case <-pace.C:
			commit(1)
		}
	}
	pace.Stop()
	undeliveredAtRestart := st.Len()

	srv = startServer(t, dir, p)
	commit(30)
	waitFor(t, 30*time.Second, "every message delivered", func() bool { return st.Len() == 0 })

	got := consumeAll(t, js, "OUT")
	d := outbox.NewDedup()
	seen := make(map[string]bool)
	raw := 0
	for _, m := range got {
		om := decode(t, m)
		fresh, gap := d.Observe(om)
		if gap != 0 {
			t.Errorf("key %q: gap of %d before KeySeq %d", om.Key, gap, om.KeySeq)
		}
		if !fresh {
			raw++
			continue
		}
		if seen[om.ID] {
			t.Errorf("message %s passed Dedup twice", om.ID)
		}
		seen[om.ID] = true
	}
	t.Logf("committed %d (%d undelivered at restart), stream holds %d, raw duplicates at the broker %d, relay %+v",
		committed, undeliveredAtRestart, len(got), raw, relay.Stats())
	if len(seen) != committed {
		t.Errorf("consumer saw %d distinct messages, want %d", len(seen), committed)
	}
	for i, k := range keys {
		want := uint64(committed / len(keys))
		if i < committed%len(keys) {
			want++
		}
		if g := d.Last("ev", k); g != want {
			t.Errorf("key %s: last KeySeq %d, want %d", k, g, want)
		}
	}
	if raw == 0 {
		t.Error("no raw duplicates at the broker: the test did not get past the dedup window")
	}
}
