package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"pgregory.net/rapid"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink"
	"github.com/theus-go/theus/runtime/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// producer commits messages to a memory store the way the engine does:
// one record per version, KeySeq counted per (topic, key).
type producer struct {
	st      *memory.Store
	version uint64
	seq     map[outbox.TopicKey]uint64
}

func newProducer() *producer {
	return &producer{st: memory.New(), seq: map[outbox.TopicKey]uint64{}}
}

// commit commits one version holding a message per key.
func (p *producer) commit(t *testing.T, keys ...string) {
	t.Helper()
	p.version++
	rec := &engine.Record{Version: p.version, State: new(int)}
	for i, k := range keys {
		tk := outbox.TopicKey{Topic: "t", Key: k}
		p.seq[tk]++
		rec.Messages = append(rec.Messages, outbox.Message{
			ID: outbox.MessageID(0, p.version, i), Topic: "t", Key: k, KeySeq: p.seq[tk], Version: p.version,
			Payload: []byte(fmt.Sprintf("%s#%d", k, p.seq[tk])),
		})
	}
	if err := p.st.Commit(context.Background(), []*engine.Record{rec}); err != nil {
		t.Fatal(err)
	}
}

// collector is a sink that records deliveries and signals when it has
// seen want distinct messages.
type collector struct {
	mu    sync.Mutex
	got   []outbox.Message
	dedup *outbox.Dedup
	fresh int
	want  int
	done  chan struct{}
	fail  func(m outbox.Message) error // nil: always succeed
}

func newCollector(want int) *collector {
	return &collector{dedup: outbox.NewDedup(), want: want, done: make(chan struct{})}
}

func (c *collector) receive(_ context.Context, m outbox.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		if err := c.fail(m); err != nil {
			return err
		}
	}
	c.got = append(c.got, m)
	if fresh, _ := c.dedup.Observe(m); fresh {
		c.fresh++
		if c.fresh == c.want {
			close(c.done)
		}
	}
	return nil
}

func (c *collector) messages() []outbox.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]outbox.Message(nil), c.got...)
}

// runRelay starts r and returns a function that stops it and checks that
// Run returned nil.
func runRelay(t *testing.T, r *outbox.Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after cancel, want nil", err)
		}
	}
}

func waitFor(t *testing.T, c *collector) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the sink saw %d of %d messages", c.fresh, c.want)
	}
}

// checkPerKeyOrder checks that, per key, the first delivery of each KeySeq
// comes in ascending order without gaps.
func checkPerKeyOrder(t *testing.T, msgs []outbox.Message) {
	t.Helper()
	next := map[string]uint64{}
	for _, m := range msgs {
		if m.KeySeq <= next[m.Key] {
			continue // a redelivery
		}
		if m.KeySeq != next[m.Key]+1 {
			t.Fatalf("key %s: KeySeq %d delivered after %d", m.Key, m.KeySeq, next[m.Key])
		}
		next[m.Key] = m.KeySeq
	}
}

func TestRelayDeliversInCommitOrderAndAcks(t *testing.T) {
	p := newProducer()
	for i := range 50 {
		p.commit(t, fmt.Sprint("k", i%3), fmt.Sprint("k", (i+1)%3))
	}
	c := newCollector(100)
	stop := runRelay(t, outbox.NewRelay(p.st, sink.Func(c.receive), outbox.WithBatchSize(7)))
	waitFor(t, c)
	stop()
	got := c.messages()
	for i := 1; i < len(got); i++ {
		if got[i-1].ID >= got[i].ID {
			t.Fatalf("delivery %d (%s) came after %s: want commit order", i, got[i].ID, got[i-1].ID)
		}
	}
	if n := p.st.Len(); n != 0 {
		t.Fatalf("%d messages still undelivered after the sink confirmed all", n)
	}
}

// A key whose message keeps failing holds back only its own later
// messages; other keys flow, and the failed key's order is kept.
func TestRelayFailureBlocksOnlyItsKey(t *testing.T) {
	p := newProducer()
	for range 10 {
		p.commit(t, "bad", "good")
	}
	c := newCollector(20)
	var failures int
	var goodWhileBlocked int
	c.fail = func(m outbox.Message) error {
		if m.Key == "bad" && failures < 5 {
			failures++
			return errors.New("broker says no")
		}
		if m.Key == "good" && failures > 0 && failures < 5 {
			goodWhileBlocked++
		}
		return nil
	}
	r := outbox.NewRelay(p.st, sink.Func(c.receive), outbox.WithRelayBackoff(time.Millisecond, 2*time.Millisecond))
	stop := runRelay(t, r)
	waitFor(t, c)
	stop()
	got := c.messages()
	checkPerKeyOrder(t, got)
	if goodWhileBlocked == 0 {
		t.Fatal("no message of key good was delivered while key bad was failing")
	}
	if s := r.Stats(); s.Failures != 5 || s.Delivered != 20 {
		t.Fatalf("stats = %+v, want 5 failures and 20 delivered", s)
	}
}

// A commit wakes an idle relay at once: with polling set to an hour, the
// message can only arrive through the wake-up.
func TestRelayWakesOnCommit(t *testing.T) {
	p := newProducer()
	c := newCollector(1)
	arrived := make(chan struct{})
	idle := make(chan struct{})
	st := &watchedStore{Store: p.st, idle: idle}
	stop := runRelay(t, outbox.NewRelay(st, sink.Func(func(ctx context.Context, m outbox.Message) error {
		defer close(arrived)
		return c.receive(ctx, m)
	}), outbox.WithPollInterval(time.Hour)))
	defer stop()
	<-idle // the relay found nothing and is waiting
	p.commit(t, "k")
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay did not wake up on commit")
	}
}

// watchedStore signals the first time the relay finds nothing to deliver.
type watchedStore struct {
	*memory.Store
	idle chan struct{}
	once sync.Once
}

func (w *watchedStore) Undelivered(ctx context.Context, limit int) ([]outbox.Message, error) {
	msgs, err := w.Store.Undelivered(ctx, limit)
	if len(msgs) == 0 {
		w.once.Do(func() { close(w.idle) })
	}
	return msgs, err
}

// An ack that fails leaves the message undelivered: it is sent again, and
// the consumer's Dedup drops the copy.
func TestRelayRedeliversWhenAckFails(t *testing.T) {
	p := newProducer()
	p.commit(t, "k")
	p.commit(t, "k")
	st := &flakyAck{Store: p.st, fails: 1, acked: make(chan struct{})}
	c := newCollector(2)
	stop := runRelay(t, outbox.NewRelay(st, sink.Func(c.receive), outbox.WithRelayBackoff(time.Millisecond, time.Millisecond)))
	waitFor(t, c)
	select {
	case <-st.acked:
	case <-time.After(10 * time.Second):
		t.Fatal("no ack succeeded")
	}
	stop()
	got := c.messages()
	if len(got) < 3 {
		t.Fatalf("%d deliveries, want the first message twice (its ack failed)", len(got))
	}
	checkPerKeyOrder(t, got)
}

type flakyAck struct {
	*memory.Store
	mu    sync.Mutex
	fails int
	acked chan struct{} // closed at the first successful ack
	once  sync.Once
}

func (f *flakyAck) Ack(ctx context.Context, ids []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return errors.New("ack lost")
	}
	if err := f.Store.Ack(ctx, ids); err != nil {
		return err
	}
	f.once.Do(func() { close(f.acked) })
	return nil
}

func TestDedup(t *testing.T) {
	d := outbox.NewDedup()
	m := func(key string, seq uint64) outbox.Message { return outbox.Message{Topic: "t", Key: key, KeySeq: seq} }
	steps := []struct {
		m     outbox.Message
		fresh bool
		gap   uint64
	}{
		{m("a", 1), true, 0},
		{m("a", 1), false, 0},
		{m("b", 1), true, 0},
		{m("a", 2), true, 0},
		{m("a", 5), true, 2},
		{m("a", 3), false, 0},
	}
	for i, s := range steps {
		fresh, gap := d.Observe(s.m)
		if fresh != s.fresh || gap != s.gap {
			t.Fatalf("step %d (%s#%d): fresh %v gap %d, want %v %d", i, s.m.Key, s.m.KeySeq, fresh, gap, s.fresh, s.gap)
		}
	}
	if d.Last("t", "a") != 5 {
		t.Fatalf("Last = %d, want 5", d.Last("t", "a"))
	}
}

func TestMessageIDRoundTrip(t *testing.T) {
	id := outbox.MessageID(0, 42, 3)
	if id != "000000000000002a-0003" {
		t.Fatalf("MessageID(42, 3) = %s", id)
	}
	inc, v, i, ok := outbox.ParseMessageID(id)
	if !ok || inc != 0 || v != 42 || i != 3 {
		t.Fatalf("ParseMessageID(%s) = %d, %d, %d, %v", id, inc, v, i, ok)
	}
	id = outbox.MessageID(0x19ae1c3f2a0, 42, 3)
	if id != "0000019ae1c3f2a0-000000000000002a-0003" {
		t.Fatalf("MessageID(0x19ae1c3f2a0, 42, 3) = %s", id)
	}
	if inc, v, i, ok := outbox.ParseMessageID(id); !ok || inc != 0x19ae1c3f2a0 || v != 42 || i != 3 {
		t.Fatalf("ParseMessageID(%s) = %d, %d, %d, %v", id, inc, v, i, ok)
	}
	if m := (outbox.Message{ID: id}); m.Incarnation() != 0x19ae1c3f2a0 {
		t.Fatalf("Incarnation of %s = %d", id, m.Incarnation())
	}
	for _, bad := range []string{"", "0000000000000000-000000000000002a-0003", "0000019ae1c3f2a0+000000000000002a-0003", "x000000000000002a-0003", "000000000000002a-00003"} {
		if _, _, _, ok := outbox.ParseMessageID(bad); ok {
			t.Errorf("ParseMessageID(%q) accepted it", bad)
		}
	}
	if outbox.MessageID(0, 255, 0) >= outbox.MessageID(0, 256, 0) {
		t.Fatal("IDs do not sort in commit order")
	}
}

func TestMessageIDIsFixedWidthHex(t *testing.T) {
	for _, c := range []struct {
		v uint64
		i int
	}{{0, 0}, {1, 1}, {0x0123456789abcdef, 0xfedc}, {^uint64(0), 0xffff}, {0x8000000000000001, 0x0a0b}} {
		if got, want := outbox.MessageID(0, c.v, c.i), fmt.Sprintf("%016x-%04x", c.v, c.i); got != want {
			t.Errorf("MessageID(%#x, %#x) = %s, want %s", c.v, c.i, got, want)
		}
	}
}

// Every ID, whatever its version and index, is what fmt would print.
func TestMessageIDMatchesFmt(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		v := rapid.Uint64().Draw(t, "version")
		i := rapid.IntRange(0, 0xffff).Draw(t, "index")
		if got, want := outbox.MessageID(0, v, i), fmt.Sprintf("%016x-%04x", v, i); got != want {
			t.Fatalf("MessageID(%#x, %#x) = %s, want %s", v, i, got, want)
		}
	})
}

// slowDown is a sink error that asks for a wait, like HTTP Retry-After.
type slowDown struct{ d time.Duration }

func (e slowDown) Error() string                     { return "slow down" }
func (e slowDown) RetryDelay() (time.Duration, bool) { return e.d, true }

// A sink that asks for a wait gets at least that wait before the message is
// sent again, although the relay's own backoff is far shorter.
func TestRelayHonoursRetryAfter(t *testing.T) {
	p := newProducer()
	p.commit(t, "k")
	const asked = 50 * time.Millisecond
	c := newCollector(1)
	var first time.Time
	var again time.Duration
	c.fail = func(outbox.Message) error {
		if first.IsZero() {
			first = time.Now()
			return fmt.Errorf("webhook: %w", slowDown{asked})
		}
		again = time.Since(first)
		return nil
	}
	r := outbox.NewRelay(p.st, sink.Func(c.receive), outbox.WithRelayBackoff(time.Microsecond, time.Microsecond))
	stop := runRelay(t, r)
	waitFor(t, c)
	stop()
	if again < asked {
		t.Fatalf("sent again after %v; the sink asked for %v", again, asked)
	}
	if d, ok := outbox.RetryAfter(fmt.Errorf("wrapped: %w", slowDown{time.Second})); !ok || d != time.Second {
		t.Fatalf("RetryAfter = %v, %v", d, ok)
	}
	if _, ok := outbox.RetryAfter(errors.New("plain")); ok {
		t.Fatal("a plain error asked for a wait")
	}
}

// drainerStore is a memory store that tells the relay, after each ack,
// that a read would find nothing until gate closes, and records a read
// made while the gate was still open after that.
type drainerStore struct {
	*memory.Store
	gate    chan struct{}
	asked   chan struct{} // closed when Drained first hands out the gate
	mu      sync.Mutex
	told    bool
	misread bool // Undelivered called while told and the gate open
}

func (d *drainerStore) Drained() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.told {
		d.told = true
		close(d.asked)
	}
	return d.gate
}

func (d *drainerStore) Undelivered(ctx context.Context, limit int) ([]outbox.Message, error) {
	d.mu.Lock()
	select {
	case <-d.gate:
	default:
		if d.told {
			d.misread = true
		}
	}
	d.mu.Unlock()
	return d.Store.Undelivered(ctx, limit)
}

// After a round, a relay on a Drainer waits for the channel Drained
// returns before it reads again, and reads as soon as it closes (its poll
// is an hour).
func TestRelayWaitsWhileDrained(t *testing.T) {
	p := newProducer()
	st := &drainerStore{Store: p.st, gate: make(chan struct{}), asked: make(chan struct{})}
	p.commit(t, "k")
	c := newCollector(2)
	stop := runRelay(t, outbox.NewRelay(st, sink.Func(c.receive), outbox.WithPollInterval(time.Hour)))
	defer stop()
	select {
	case <-st.asked:
	case <-time.After(10 * time.Second):
		t.Fatal("the relay never asked Drained")
	}
	p.commit(t, "k")
	close(st.gate)
	waitFor(t, c)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.misread {
		t.Fatal("the relay read while Drained's channel was open")
	}
}
