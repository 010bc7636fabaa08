package redisstream_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/servicetest"
	"github.com/theus-go/theus/runtime/internal/sinktest"
	"github.com/theus-go/theus/runtime/internal/tracetest"
	"github.com/theus-go/theus/runtime/otelheaders"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/redisstream"
	"github.com/theus-go/theus/runtime/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// names gives a test stream names of its own, deleted when it ends.
func names(t testing.TB, rdb *redis.Client) func(string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "theus-test:" + t.Name() + ":" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := rdb.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			rdb.Del(ctx, keys...)
		}
	})
	return func(s string) string { return prefix + s }
}

func newSink(t testing.TB, rdb redis.UniversalClient, opts ...redisstream.Option) *redisstream.Sink {
	t.Helper()
	s, err := redisstream.New(rdb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// producer makes messages as the engine would: one per commit, KeySeq
// counted per (topic, key).
type producer struct {
	version uint64
	seq     map[outbox.TopicKey]uint64
}

func (p *producer) next(topic, key string) outbox.Message {
	if p.seq == nil {
		p.seq = make(map[outbox.TopicKey]uint64)
	}
	p.version++
	tk := outbox.TopicKey{Topic: topic, Key: key}
	p.seq[tk]++
	return outbox.Message{
		ID: outbox.MessageID(0x19ae1c3f2a0, p.version, 0), Topic: topic, Key: key, KeySeq: p.seq[tk],
		Version: p.version, Payload: fmt.Appendf(nil, `{"n":%d}`, p.version),
		CreatedAt: time.Unix(1767225600, int64(p.version)).UTC(),
	}
}

func readAll(t *testing.T, rdb *redis.Client, stream string) []outbox.Message {
	t.Helper()
	es, err := rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var ms []outbox.Message
	for _, e := range es {
		m, err := redisstream.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	return ms
}

func TestEntryFields(t *testing.T) {
	rdb := servicetest.Redis(t)
	name := names(t, rdb)
	s := newSink(t, rdb, redisstream.WithStreamFunc(func(m outbox.Message) string { return name(m.Topic) }))
	var p producer
	batch := []outbox.Message{p.next("user.updated", "u-1"), p.next("user.created", "u-2"), p.next("user.updated", "u-1")}
	batch[0].Headers = map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tenant": "acme"}
	batch[1].CreatedAt = time.Time{}
	if n, err := s.Send(context.Background(), batch); n != 3 || err != nil {
		t.Fatalf("Send = %d, %v; want 3, nil", n, err)
	}
	es, err := rdb.XRange(context.Background(), name("user.updated"), "-", "+").Result()
	if err != nil || len(es) != 2 {
		t.Fatalf("stream user.updated: %d entries, %v; want 2", len(es), err)
	}
	if v := es[0].Values; v["id"] != batch[0].ID || v["key"] != "u-1" || v["key_seq"] != "1" || v["version"] != "1" ||
		v["payload"] != `{"n":1}` || v["created_at"] != batch[0].CreatedAt.Format(time.RFC3339Nano) ||
		v["h:traceparent"] != batch[0].Headers["traceparent"] || v["h:tenant"] != "acme" {
		t.Fatalf("entry fields %v", v)
	}
	got := append(readAll(t, rdb, name("user.updated")), readAll(t, rdb, name("user.created"))...)
	for i, want := range []outbox.Message{batch[0], batch[2], batch[1]} {
		om := got[i]
		if om.ID != want.ID || om.Topic != want.Topic || om.Key != want.Key || om.KeySeq != want.KeySeq ||
			om.Version != want.Version || string(om.Payload) != string(want.Payload) || !om.CreatedAt.Equal(want.CreatedAt) ||
			len(om.Headers) != len(want.Headers) || om.Headers["traceparent"] != want.Headers["traceparent"] {
			t.Errorf("entry %d: decoded %+v, want %+v", i, om, want)
		}
	}
}

// 2,000 messages over 64 keys into one stream: each key in KeySeq order,
// no gap.
func TestPerKeyOrder64Keys(t *testing.T) {
	rdb := servicetest.Redis(t)
	name := names(t, rdb)
	s := newSink(t, rdb, redisstream.WithStream(name("all")))
	var p producer
	var batch []outbox.Message
	for i := range 2000 {
		batch = append(batch, p.next([]string{"a", "b"}[i%2], fmt.Sprintf("k%02d", (i*7)%64)))
	}
	for i := 0; i < len(batch); i += 100 {
		if n, err := s.Send(context.Background(), batch[i:i+100]); n != 100 || err != nil {
			t.Fatalf("Send = %d, %v", n, err)
		}
	}
	got := readAll(t, rdb, name("all"))
	if len(got) != len(batch) {
		t.Fatalf("stream holds %d, want %d", len(got), len(batch))
	}
	d := outbox.NewDedup()
	for _, m := range got {
		if fresh, gap := d.Observe(m); !fresh || gap != 0 {
			t.Fatalf("%s %q seq %d: fresh=%v gap=%d: out of order", m.Topic, m.Key, m.KeySeq, fresh, gap)
		}
	}
}

func TestMaxLenApprox(t *testing.T) {
	rdb := servicetest.Redis(t)
	name := names(t, rdb)
	s := newSink(t, rdb, redisstream.WithStream(name("capped")), redisstream.WithMaxLen(100))
	var p producer
	var batch []outbox.Message
	for i := range 1000 {
		batch = append(batch, p.next("t", fmt.Sprint(i%10)))
	}
	if n, err := s.Send(context.Background(), batch); n != 1000 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	l, err := rdb.XLen(context.Background(), name("capped")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if l < 100 || l >= 1000 {
		t.Fatalf("XLEN = %d after 1000 appends with MAXLEN ~ 100; want trimmed to about 100", l)
	}
	last := readAll(t, rdb, name("capped"))
	if last[len(last)-1].ID != batch[999].ID {
		t.Fatalf("newest entry %s, want %s", last[len(last)-1].ID, batch[999].ID)
	}
}

// A stream key that holds another type: a plain error for that message;
// the later message of its key is not appended, those of other keys are.
func TestWrongTypeIsAnError(t *testing.T) {
	rdb := servicetest.Redis(t)
	name := names(t, rdb)
	if err := rdb.Set(context.Background(), name("bad"), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s := newSink(t, rdb, redisstream.WithStreamFunc(func(m outbox.Message) string { return name(m.Key) }))
	var p producer
	batch := []outbox.Message{p.next("t", "good"), p.next("t", "bad"), p.next("t", "bad"), p.next("t", "good")}
	n, err := s.Send(context.Background(), batch)
	if n != 1 || err == nil || !strings.Contains(err.Error(), "WRONGTYPE") || outbox.IsUnavailable(err) || outbox.IsPermanent(err) {
		t.Fatalf("Send = %d, %v; want 1 and WRONGTYPE", n, err)
	}
	// Send stops once the leading count cannot grow: the second of good,
	// behind the failed message, waits for the relay's next try.
	if got := readAll(t, rdb, name("good")); len(got) != 1 || got[0].ID != batch[0].ID {
		t.Fatalf("good stream holds %d entries, want the first", len(got))
	}
	if typ, _ := rdb.Type(context.Background(), name("bad")).Result(); typ != "string" {
		t.Fatalf("bad key is a %s now", typ)
	}
	// An empty stream name is permanent.
	empty := newSink(t, rdb, redisstream.WithStreamFunc(func(outbox.Message) string { return "" }))
	if n, err := empty.Send(context.Background(), batch[:1]); n != 0 || !outbox.IsPermanent(err) {
		t.Fatalf("Send with an empty stream name = %d, %v; want 0, Permanent", n, err)
	}
}

// Redis out of reach, and a closed client: outbox.Unavailable.
func TestUnreachableIsUnavailable(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	s := newSink(t, rdb)
	var p producer
	if n, err := s.Send(context.Background(), []outbox.Message{p.next("t", "k")}); n != 0 || !outbox.IsUnavailable(err) {
		t.Fatalf("Send = %d, %v; want 0, Unavailable", n, err)
	}
	closed := servicetest.Redis(t)
	name := names(t, closed)
	cs := newSink(t, closed, redisstream.WithStream(name("s")))
	closed.Close()
	if n, err := cs.Send(context.Background(), []outbox.Message{p.next("t", "k")}); n != 0 || !outbox.IsUnavailable(err) || !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("Send on a closed client = %d, %v; want 0, Unavailable(ErrClosed)", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rdb2 := servicetest.Redis(t)
	if n, err := newSink(t, rdb2).Send(ctx, []outbox.Message{p.next("t", "k")}); n != 0 || !errors.Is(err, context.Canceled) || outbox.IsUnavailable(err) {
		t.Fatalf("Send with a cancelled context = %d, %v", n, err)
	}
}

// store commits messages to a memory store through engine.Record, the way
// the engine does.
type store struct {
	st      *memory.Store
	version uint64
	seq     map[outbox.TopicKey]uint64
}

func (p *store) commit(t *testing.T, topic string, keys ...string) {
	t.Helper()
	p.version++
	rec := &engine.Record{Version: p.version, State: new(int)}
	for i, k := range keys {
		tk := outbox.TopicKey{Topic: topic, Key: k}
		p.seq[tk]++
		rec.Messages = append(rec.Messages, outbox.Message{
			ID: outbox.MessageID(0, p.version, i), Topic: topic, Key: k, KeySeq: p.seq[tk], Version: p.version,
			Payload: fmt.Appendf(nil, "%s#%d", k, p.seq[tk]),
			Headers: map[string]string{"traceparent": fmt.Sprintf("00-%032x-%016x-01", p.version, i+1)},
		})
	}
	if err := p.st.Commit(context.Background(), []*engine.Record{rec}); err != nil {
		t.Fatal(err)
	}
}

// A relay stopped in the middle of a batch, then a new relay on the same
// store: a consumer group with outbox.Dedup (the package example's
// consumer) sees every message exactly once, in per-key order.
func TestRelayRestartMidBatchLosesNothing(t *testing.T) {
	for _, mode := range []string{"cancel", "fail"} {
		t.Run(mode, func(t *testing.T) {
			rdb := servicetest.Redis(t)
			name := names(t, rdb)
			stream := name("events")
			p := &store{st: memory.New(), seq: map[outbox.TopicKey]uint64{}}
			const commits = 120
			for i := range commits {
				p.commit(t, "events", fmt.Sprint("k", i%64), fmt.Sprint("k", (i*3+1)%64))
			}
			total := 2 * commits

			real := newSink(t, rdb, redisstream.WithStream(stream))
			ctx1, cancel1 := context.WithCancel(context.Background())
			defer cancel1()
			cut := sinktest.NewInterrupt(real, 17, 9, mode == "fail", cancel1)
			r1 := outbox.NewRelay(p.st, cut, outbox.WithBatchSize(50))
			done1 := make(chan error, 1)
			go func() { done1 <- r1.Run(ctx1) }()
			select {
			case <-cut.Hit:
			case <-time.After(30 * time.Second):
				t.Fatal("the first relay never sent a full batch")
			}
			if err := <-done1; err != nil {
				t.Fatalf("first relay: %v", err)
			}
			if d := r1.Stats().Delivered; d != uint64(cut.K) {
				t.Fatalf("first relay delivered %d, want %d", d, cut.K)
			}

			// The consumer group runs while the second relay appends.
			cctx, ccancel := context.WithCancel(context.Background())
			d := outbox.NewDedup()
			var mu sync.Mutex
			handled := map[string]int{}
			gaps := 0
			cdone := make(chan error, 1)
			go func() {
				cdone <- consumeGroup(cctx, rdb, stream, "g", "c1", d, func(m outbox.Message) error {
					mu.Lock()
					defer mu.Unlock()
					handled[m.ID]++
					if m.Headers["traceparent"] == "" || string(m.Payload) != fmt.Sprintf("%s#%d", m.Key, m.KeySeq) {
						gaps++ // counted as a failure below
					}
					return nil
				})
			}()
			r2 := outbox.NewRelay(p.st, real, outbox.WithBatchSize(50))
			ctx2, cancel2 := context.WithCancel(context.Background())
			done2 := make(chan error, 1)
			go func() { done2 <- r2.Run(ctx2) }()
			deadline := time.Now().Add(30 * time.Second)
			for {
				mu.Lock()
				n := len(handled)
				mu.Unlock()
				if n == total && p.st.Len() == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond) // polled with a deadline
			}
			cancel2()
			if err := <-done2; err != nil {
				t.Fatalf("second relay: %v", err)
			}
			ccancel()
			if err := <-cdone; err != nil {
				t.Fatalf("consumer: %v", err)
			}
			if len(handled) != total || gaps != 0 {
				t.Fatalf("consumer handled %d distinct messages (%d with bad payload or headers), want %d", len(handled), gaps, total)
			}
			for id, n := range handled {
				if n != 1 {
					t.Fatalf("consumer handled %s %d times", id, n)
				}
			}
			xlen, err := rdb.XLen(context.Background(), stream).Result()
			if err != nil || xlen != int64(total+cut.Extra) {
				t.Fatalf("stream holds %d entries, %v; want %d messages + %d duplicates", xlen, err, total, cut.Extra)
			}
			pending, err := rdb.XPending(context.Background(), stream, "g").Result()
			if err != nil || pending.Count != 0 {
				t.Fatalf("pending entries %+v, %v; want none", pending, err)
			}
		})
	}
}

func TestTraceparentReachesRedis(t *testing.T) {
	rdb := servicetest.Redis(t)
	name := names(t, rdb)
	sent := tracetest.Relay(t, newSink(t, rdb, redisstream.WithStream(name("bank"))))
	es, err := rdb.XRange(context.Background(), name("bank"), "-", "+").Result()
	if err != nil || len(es) != len(sent) {
		t.Fatalf("stream holds %d, %v; want %d", len(es), err, len(sent))
	}
	if tp := es[0].Values["h:"+otelheaders.Traceparent]; tp != tracetest.Traceparent {
		t.Fatalf("traceparent field = %v, want %s", tp, tracetest.Traceparent)
	}
	if tp, ok := es[1].Values["h:"+otelheaders.Traceparent]; ok {
		t.Fatalf("message of a call without a span has traceparent %v", tp)
	}
	m, err := redisstream.Decode(es[0])
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.SpanContextFromContext(otelheaders.Extract(context.Background(), m.Headers))
	if sc.TraceID() != tracetest.Span.TraceID() || sc.SpanID() != tracetest.Span.SpanID() || !sc.IsRemote() {
		t.Fatalf("consumer extracted %+v, want the caller's span %+v", sc, tracetest.Span)
	}
}
