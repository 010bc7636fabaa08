package watermill_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"go.uber.org/goleak"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/sinktest"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/watermill"
	"github.com/theus-go/theus/runtime/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// store commits messages to a memory store through engine.Record, the way
// the engine does: KeySeq counted per (topic, key).
type store struct {
	st      *memory.Store
	version uint64
	seq     map[outbox.TopicKey]uint64
}

func newStore() *store { return &store{st: memory.New(), seq: map[outbox.TopicKey]uint64{}} }

func (p *store) commit(t *testing.T, topic string, keys ...string) {
	t.Helper()
	p.version++
	rec := &engine.Record{Version: p.version, State: new(int)}
	for i, k := range keys {
		tk := outbox.TopicKey{Topic: topic, Key: k}
		p.seq[tk]++
		rec.Messages = append(rec.Messages, outbox.Message{
			ID: outbox.MessageID(0x19ae1c3f2a0, p.version, i), Topic: topic, Key: k, KeySeq: p.seq[tk], Version: p.version,
			Payload:   fmt.Appendf(nil, "%s#%d", k, p.seq[tk]),
			Headers:   map[string]string{"traceparent": fmt.Sprintf("00-%032x-%016x-01", p.version, i+1), "Theus-Key": "forged"},
			CreatedAt: time.Unix(1767225600, int64(p.version)).UTC(),
		})
	}
	if err := p.st.Commit(context.Background(), []*engine.Record{rec}); err != nil {
		t.Fatal(err)
	}
}

// consumer subscribes to topic on a GoChannel that blocks Publish until
// the subscriber acks: Publish returning nil means the consumer has it.
type consumer struct {
	mu   sync.Mutex
	got  []*message.Message
	done chan struct{}
}

func subscribe(t *testing.T, topic string) (*gochannel.GoChannel, *consumer) {
	t.Helper()
	gc := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := gc.Subscribe(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	c := &consumer{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for m := range ch {
			c.mu.Lock()
			c.got = append(c.got, m)
			c.mu.Unlock()
			m.Ack()
		}
	}()
	t.Cleanup(func() {
		cancel()
		gc.Close()
		<-c.done
	})
	return gc, c
}

func (c *consumer) messages() []*message.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*message.Message(nil), c.got...)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond) // polled with a deadline
	}
}

func newSink(t testing.TB, pub message.Publisher, opts ...watermill.Option) *watermill.Sink {
	t.Helper()
	s, err := watermill.New(pub, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// check decodes what the consumer received and checks that outbox.Dedup
// lets each of total messages through once, in per-key order, with
// payload, headers and metadata intact. It returns the raw duplicates.
func check(t *testing.T, got []*message.Message, total int) (dups int) {
	t.Helper()
	d := outbox.NewDedup()
	fresh := map[string]int{}
	for _, wm := range got {
		m, err := watermill.Decode(wm)
		if err != nil {
			t.Fatal(err)
		}
		if wm.UUID != m.ID || m.Headers["traceparent"] == "" || len(m.Headers) != 1 ||
			string(m.Payload) != fmt.Sprintf("%s#%d", m.Key, m.KeySeq) || m.CreatedAt.IsZero() || m.Version == 0 {
			t.Fatalf("message %s: uuid %s headers %v payload %q decoded %+v", m.ID, wm.UUID, m.Headers, m.Payload, m)
		}
		ok, gap := d.Observe(m)
		if gap != 0 {
			t.Fatalf("key %s: gap of %d before KeySeq %d", m.Key, gap, m.KeySeq)
		}
		if ok {
			fresh[m.ID]++
		} else {
			dups++
		}
	}
	if len(fresh) != total {
		t.Fatalf("consumer saw %d distinct messages, want %d", len(fresh), total)
	}
	return dups
}

// A relay over 64 keys: every message reaches the subscriber once, in
// per-key order, with its metadata.
func TestRelayOrderAndMetadata(t *testing.T) {
	for _, runs := range []bool{false, true} {
		t.Run(fmt.Sprint("runs=", runs), func(t *testing.T) {
			gc, c := subscribe(t, "events")
			p := newStore()
			for i := range 500 {
				p.commit(t, "events", fmt.Sprint("k", i%64), fmt.Sprint("k", (i*5+3)%64))
			}
			var opts []watermill.Option
			if runs {
				opts = append(opts, watermill.WithPublishRuns())
			}
			r := outbox.NewRelay(p.st, newSink(t, gc, opts...), outbox.WithBatchSize(100))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			waitFor(t, 30*time.Second, "everything delivered", func() bool { return p.st.Len() == 0 })
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			got := c.messages()
			if len(got) != 1000 {
				t.Fatalf("consumer got %d, want 1000", len(got))
			}
			if dups := check(t, got, 1000); dups != 0 {
				t.Fatalf("%d duplicates without a failure", dups)
			}
			md := got[0].Metadata
			if md.Get(watermill.MetaKey) != "k0" || md.Get(watermill.MetaKeySeq) != "1" || md.Get(watermill.MetaTopic) != "events" ||
				md.Get(watermill.MetaID) != got[0].UUID || md.Get(watermill.MetaCreated) != "2026-01-01T00:00:00.000000001Z" {
				t.Fatalf("metadata %v", md)
			}
		})
	}
}

// A relay stopped mid-batch and a new one on the same store: nothing is
// lost, and Dedup drops the duplicates.
func TestRelayRestartMidBatchLosesNothing(t *testing.T) {
	gc, c := subscribe(t, "events")
	p := newStore()
	for i := range 120 {
		p.commit(t, "events", fmt.Sprint("k", i%64), fmt.Sprint("k", (i*3+1)%64))
	}
	real := newSink(t, gc)
	ctx1, cancel1 := context.WithCancel(context.Background())
	defer cancel1()
	cut := sinktest.NewInterrupt(real, 17, 9, false, cancel1)
	r1 := outbox.NewRelay(p.st, cut, outbox.WithBatchSize(50))
	done1 := make(chan error, 1)
	go func() { done1 <- r1.Run(ctx1) }()
	<-cut.Hit
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	r2 := outbox.NewRelay(p.st, real, outbox.WithBatchSize(50))
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan error, 1)
	go func() { done2 <- r2.Run(ctx2) }()
	waitFor(t, 30*time.Second, "everything delivered", func() bool { return p.st.Len() == 0 })
	cancel2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	if dups := check(t, c.messages(), 240); dups != cut.Extra {
		t.Fatalf("%d duplicates, want %d", dups, cut.Extra)
	}
}

// fake is a publisher whose Publish fails as told.
type fake struct {
	calls [][]string // the message UUIDs of each call
	fail  func(call int) error
}

func (f *fake) Publish(topic string, msgs ...*message.Message) error {
	var ids []string
	for _, m := range msgs {
		ids = append(ids, topic+"/"+m.UUID)
	}
	f.calls = append(f.calls, ids)
	if f.fail != nil {
		if err := f.fail(len(f.calls)); err != nil {
			return err
		}
	}
	return nil
}

func (f *fake) Close() error { return nil }

func batch(topics ...string) []outbox.Message {
	var b []outbox.Message
	for i, tp := range topics {
		b = append(b, outbox.Message{ID: fmt.Sprint("m", i), Topic: tp, Key: "k", KeySeq: uint64(i + 1), Version: uint64(i + 1)})
	}
	return b
}

func TestErrorsAndRuns(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	f := &fake{fail: func(call int) error {
		if call == 3 {
			return boom
		}
		return nil
	}}
	n, err := newSink(t, f).Send(ctx, batch("a", "a", "b", "b"))
	if n != 2 || !errors.Is(err, boom) || outbox.IsUnavailable(err) || outbox.IsPermanent(err) {
		t.Fatalf("Send = %d, %v; want 2, plain boom", n, err)
	}

	// Runs: one call per run of a topic; a failed run counts none of it.
	f = &fake{fail: func(call int) error {
		if call == 2 {
			return boom
		}
		return nil
	}}
	n, err = newSink(t, f, watermill.WithPublishRuns()).Send(ctx, batch("a", "a", "b", "b", "a"))
	if n != 2 || !errors.Is(err, boom) {
		t.Fatalf("Send with runs = %d, %v; want 2, boom", n, err)
	}
	if fmt.Sprint(f.calls) != "[[a/m0 a/m1] [b/m2 b/m3]]" {
		t.Fatalf("calls %v", f.calls)
	}

	// A network error is Unavailable; WithErrorClass classes the rest.
	f = &fake{fail: func(int) error { return &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")} }}
	if n, err := newSink(t, f).Send(ctx, batch("a")); n != 0 || !outbox.IsUnavailable(err) {
		t.Fatalf("net error: Send = %d, %v; want Unavailable", n, err)
	}
	f = &fake{fail: func(int) error { return boom }}
	cls := watermill.WithErrorClass(func(err error) error {
		if errors.Is(err, boom) {
			return outbox.Permanent(err)
		}
		return err
	})
	if n, err := newSink(t, f, cls).Send(ctx, batch("a")); n != 0 || !outbox.IsPermanent(err) {
		t.Fatalf("classed: Send = %d, %v; want Permanent", n, err)
	}

	// A panicking publisher is an error of the message; an empty topic is
	// permanent; a cancelled context stops the batch.
	pf := &fake{fail: func(int) error { panic("publisher bug") }}
	if n, err := newSink(t, pf).Send(ctx, batch("a")); n != 0 || err == nil || !strings.Contains(err.Error(), "publisher bug") {
		t.Fatalf("panic: Send = %d, %v", n, err)
	}
	if n, err := newSink(t, &fake{}).Send(ctx, batch("a", "")); n != 1 || !outbox.IsPermanent(err) {
		t.Fatalf("empty topic: Send = %d, %v; want 1, Permanent", n, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if n, err := newSink(t, &fake{}).Send(cctx, batch("a")); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: Send = %d, %v", n, err)
	}
	// WithTopic sends everything to one topic.
	f = &fake{}
	if n, err := newSink(t, f, watermill.WithTopic("all")).Send(ctx, batch("a", "b")); n != 2 || err != nil || fmt.Sprint(f.calls) != "[[all/m0] [all/m1]]" {
		t.Fatalf("WithTopic: Send = %d, %v, calls %v", n, err, f.calls)
	}
	if _, err := watermill.New(nil); err == nil {
		t.Fatal("New(nil) accepted")
	}
}
