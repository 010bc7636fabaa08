package kafka_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/sinktest"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/kafka"
	"github.com/theus-go/theus/runtime/store/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const partitions = 8

// cluster starts an in-process kfake cluster holding topics with the
// given number of partitions.
func cluster(t testing.TB, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// client returns a producer client of c with franz-go's defaults
// (idempotent).
func client(t testing.TB, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newSink(t testing.TB, cl *kgo.Client, opts ...kafka.Option) *kafka.Sink {
	t.Helper()
	s, err := kafka.New(cl, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// consume reads topic from the start until it has want records.
func consume(t *testing.T, c *kfake.Cluster, topic string, want int) []*kgo.Record {
	t.Helper()
	cl := client(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s", len(recs), want, topic)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		recs = append(recs, fs.Records()...)
	}
	return recs
}

// byPartition groups records by partition, in offset order.
func byPartition(recs []*kgo.Record) map[int32][]*kgo.Record {
	out := map[int32][]*kgo.Record{}
	for _, r := range recs {
		out[r.Partition] = append(out[r.Partition], r)
	}
	return out
}

func header(r *kgo.Record, k string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == k {
			return string(h.Value), true
		}
	}
	return "", false
}

// Many keys, interleaved, over several batches: every key lands in one
// partition, in KeySeq order, with key, value and headers as sent.
func TestPerKeyOrderPerPartitionAndHeaders(t *testing.T) {
	c := cluster(t, "orders")
	s := newSink(t, client(t, c))
	const keys, perKey, batch = 64, 25, 150
	created := time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC)
	var msgs []outbox.Message
	for seq := 1; seq <= perKey; seq++ {
		for k := range keys {
			v := uint64(len(msgs) + 1)
			msgs = append(msgs, outbox.Message{
				ID: outbox.MessageID(0, v, 0), Topic: "orders", Key: fmt.Sprint("k", k), KeySeq: uint64(seq), Version: v,
				Payload:   []byte(fmt.Sprintf(`{"k":%d,"seq":%d}`, k, seq)),
				Headers:   map[string]string{"traceparent": fmt.Sprint("tp-", v), "Theus-Id": "forged"},
				CreatedAt: created,
			})
		}
	}
	for i := 0; i < len(msgs); i += batch {
		b := msgs[i:min(i+batch, len(msgs))]
		n, err := s.Send(context.Background(), b)
		if err != nil || n != len(b) {
			t.Fatalf("Send = %d, %v; want %d, nil", n, err, len(b))
		}
	}
	recs := consume(t, c, "orders", len(msgs))
	if len(recs) != len(msgs) {
		t.Fatalf("topic holds %d records, want %d", len(recs), len(msgs))
	}
	byID := map[string]outbox.Message{}
	for _, m := range msgs {
		byID[m.ID] = m
	}
	partOf := map[string]int32{}
	used := map[int32]bool{}
	for p, rs := range byPartition(recs) {
		next := map[string]uint64{}
		for _, r := range rs {
			got, err := kafka.Decode(r)
			if err != nil {
				t.Fatal(err)
			}
			want := byID[got.ID]
			if string(r.Key) != want.Key || string(r.Value) != string(want.Payload) {
				t.Fatalf("record %s: key %q value %q, want %q %q", got.ID, r.Key, r.Value, want.Key, want.Payload)
			}
			if got.Topic != want.Topic || got.Key != want.Key || got.KeySeq != want.KeySeq ||
				got.Version != want.Version || !got.CreatedAt.Equal(want.CreatedAt) {
				t.Fatalf("decoded %+v, want %+v", got, want)
			}
			if len(got.Headers) != 1 || got.Headers["traceparent"] != want.Headers["traceparent"] {
				t.Fatalf("record %s: headers %v, want only traceparent=%s", got.ID, got.Headers, want.Headers["traceparent"])
			}
			if id, _ := header(r, kafka.HeaderID); id != want.ID {
				t.Fatalf("record %s: %s header = %q (a message header must not override it)", want.ID, kafka.HeaderID, id)
			}
			if seq, _ := header(r, kafka.HeaderKeySeq); seq != strconv.FormatUint(want.KeySeq, 10) {
				t.Fatalf("record %s: %s = %q", want.ID, kafka.HeaderKeySeq, seq)
			}
			if q, ok := partOf[want.Key]; ok && q != p {
				t.Fatalf("key %s in partitions %d and %d", want.Key, q, p)
			}
			partOf[want.Key] = p
			used[p] = true
			if got.KeySeq != next[got.Key]+1 {
				t.Fatalf("partition %d: key %s: KeySeq %d after %d", p, got.Key, got.KeySeq, next[got.Key])
			}
			next[got.Key] = got.KeySeq
		}
	}
	if len(used) < 2 {
		t.Fatalf("%d keys used %d partition(s); the test wants them spread", keys, len(used))
	}
}

func TestTopicOptions(t *testing.T) {
	c := cluster(t, "fixed", "by-func")
	cl := client(t, c)
	m := outbox.Message{ID: outbox.MessageID(0, 1, 0), Topic: "user.updated", Key: "", KeySeq: 1, Version: 1, Payload: []byte("x")}

	s := newSink(t, cl, kafka.WithTopic("fixed"))
	if n, err := s.Send(context.Background(), []outbox.Message{m}); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	r := consume(t, c, "fixed", 1)[0]
	if got, err := kafka.Decode(r); err != nil || got.Topic != "user.updated" || r.Key == nil || len(r.Key) != 0 {
		t.Fatalf("record %+v decoded %+v, %v: want outbox topic in header and an empty non-nil key", r, got, err)
	}

	s = newSink(t, cl, kafka.WithTopicFunc(func(m outbox.Message) string { return strings.ReplaceAll(m.Topic, "user.updated", "by-func") }))
	if n, err := s.Send(context.Background(), []outbox.Message{m}); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	consume(t, c, "by-func", 1)

	for _, bad := range []string{"", ".", "..", "a b", "a/b", strings.Repeat("x", 250)} {
		if _, err := kafka.New(cl, kafka.WithTopic(bad)); err == nil {
			t.Errorf("WithTopic(%q) accepted", bad)
		}
	}
	if _, err := kafka.New(cl, kafka.WithTopicFunc(nil)); err == nil {
		t.Error("WithTopicFunc(nil) accepted")
	}
	if _, err := kafka.New(nil); err == nil {
		t.Error("New(nil) accepted")
	}
	if _, err := kafka.New(cl, kafka.WithProduceTimeout(0)); err == nil {
		t.Error("WithProduceTimeout(0) accepted")
	}
}

// A message that cannot become a record (invalid topic, too large) is
// permanent, and nothing after it in the batch is produced.
func TestPermanentStopsTheBatch(t *testing.T) {
	c := cluster(t, "ok")
	cl := client(t, c, kgo.ProducerBatchMaxBytes(1024))
	s := newSink(t, cl)
	msg := func(v uint64, topic, payload string) outbox.Message {
		return outbox.Message{ID: outbox.MessageID(0, v, 0), Topic: topic, Key: "k", KeySeq: v, Version: v, Payload: []byte(payload)}
	}
	for name, bad := range map[string]outbox.Message{
		"invalid topic": msg(3, "not a topic!", "x"),
		"too large":     msg(3, "ok", strings.Repeat("x", 2000)),
	} {
		t.Run(name, func(t *testing.T) {
			batch := []outbox.Message{msg(1, "ok", "a"), msg(2, "ok", "b"), bad, msg(4, "ok", "d")}
			n, err := s.Send(context.Background(), batch)
			if n != 2 || !outbox.IsPermanent(err) {
				t.Fatalf("Send = %d, %v; want 2 and a permanent error", n, err)
			}
		})
	}
	recs := consume(t, c, "ok", 4)
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4 (the two leading ones of each batch)", len(recs))
	}
	for _, r := range recs {
		if m, _ := kafka.Decode(r); m.KeySeq > 2 {
			t.Fatalf("message %s after the failed one was produced", m.ID)
		}
	}
}

// A cluster that is gone is outbox.Unavailable: the relay retries without
// counting.
func TestUnreachableIsUnavailable(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	cl := client(t, c)
	s := newSink(t, cl, kafka.WithProduceTimeout(500*time.Millisecond))
	m := outbox.Message{ID: outbox.MessageID(0, 1, 0), Topic: "t", Key: "k", KeySeq: 1, Version: 1, Payload: []byte("x")}
	if n, err := s.Send(context.Background(), []outbox.Message{m}); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	c.Close()
	m.ID, m.KeySeq, m.Version = outbox.MessageID(0, 2, 0), 2, 2
	n, err := s.Send(context.Background(), []outbox.Message{m})
	if n != 0 || !outbox.IsUnavailable(err) {
		t.Fatalf("Send to a closed cluster = %d, %v; want 0 and an Unavailable error", n, err)
	}

	closed := client(t, cluster(t, "t"))
	closed.Close()
	s = newSink(t, closed)
	if n, err := s.Send(context.Background(), []outbox.Message{m}); n != 0 || !outbox.IsUnavailable(err) {
		t.Fatalf("Send on a closed client = %d, %v; want 0 and an Unavailable error", n, err)
	}
}

// producer commits messages to a memory store through engine.Record, the
// way the engine does: KeySeq counted per (topic, key).
type producer struct {
	st      *memory.Store
	version uint64
	seq     map[outbox.TopicKey]uint64
}

func (p *producer) commit(t *testing.T, topic string, keys ...string) {
	t.Helper()
	p.version++
	rec := &engine.Record{Version: p.version, State: new(int)}
	for i, k := range keys {
		tk := outbox.TopicKey{Topic: topic, Key: k}
		p.seq[tk]++
		rec.Messages = append(rec.Messages, outbox.Message{
			ID: outbox.MessageID(0, p.version, i), Topic: topic, Key: k, KeySeq: p.seq[tk], Version: p.version,
			Payload: []byte(fmt.Sprintf("%s#%d", k, p.seq[tk])),
			Headers: map[string]string{"traceparent": fmt.Sprintf("00-%032x-%016x-01", p.version, i+1)},
		})
	}
	if err := p.st.Commit(context.Background(), []*engine.Record{rec}); err != nil {
		t.Fatal(err)
	}
}

// A relay stopped in the middle of a batch, some records produced but not
// acked, then a new relay on the same store: every message is in Kafka at
// least once, and a consumer with outbox.Dedup sees each exactly once, in
// per-key order.
func TestRelayRestartMidBatchLosesNothing(t *testing.T) {
	for _, mode := range []string{"cancel", "fail"} {
		t.Run(mode, func(t *testing.T) {
			const topic = "events"
			c := cluster(t, topic)
			cl := client(t, c)
			p := &producer{st: memory.New(), seq: map[outbox.TopicKey]uint64{}}
			const commits = 120
			for i := range commits {
				p.commit(t, topic, fmt.Sprint("k", i%7), fmt.Sprint("k", (i*3+1)%11))
			}
			total := 2 * commits

			real := newSink(t, cl)
			ctx1, cancel1 := context.WithCancel(context.Background())
			cut := sinktest.NewInterrupt(real, 17, 9, mode == "fail", cancel1)
			r1 := outbox.NewRelay(p.st, cut, outbox.WithBatchSize(50))
			done1 := make(chan error, 1)
			go func() { done1 <- r1.Run(ctx1) }()
			select {
			case <-cut.Hit:
			case <-time.After(20 * time.Second):
				t.Fatal("the first relay never sent a full batch")
			}
			if err := <-done1; err != nil {
				t.Fatalf("first relay: %v", err)
			}
			cancel1()
			if d := r1.Stats().Delivered; d != uint64(cut.K) {
				t.Fatalf("first relay delivered %d, want %d", d, cut.K)
			}
			if p.st.Len() != total-cut.K {
				t.Fatalf("%d undelivered after the first relay, want %d", p.st.Len(), total-cut.K)
			}

			r2 := outbox.NewRelay(p.st, real, outbox.WithBatchSize(50))
			ctx2, cancel2 := context.WithCancel(context.Background())
			done2 := make(chan error, 1)
			go func() { done2 <- r2.Run(ctx2) }()
			deadline := time.Now().Add(20 * time.Second)
			for p.st.Len() > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			cancel2()
			if err := <-done2; err != nil {
				t.Fatalf("second relay: %v", err)
			}
			if n := p.st.Len(); n != 0 {
				t.Fatalf("%d messages still undelivered", n)
			}

			// The extra records were produced twice: once by the cut batch,
			// once by the second relay.
			recs := consume(t, c, topic, total+cut.Extra)
			if len(recs) != total+cut.Extra {
				t.Fatalf("topic holds %d records, want %d (%d messages + %d duplicates)", len(recs), total+cut.Extra, total, cut.Extra)
			}
			seen := map[string]int{}
			dedup := outbox.NewDedup()
			fresh := map[string]int{}
			for _, rs := range byPartition(recs) {
				for _, r := range rs {
					m, err := kafka.Decode(r)
					if err != nil {
						t.Fatal(err)
					}
					seen[m.ID]++
					if m.Headers["traceparent"] == "" || string(r.Value) != fmt.Sprintf("%s#%d", m.Key, m.KeySeq) {
						t.Fatalf("record %s: headers %v value %q", m.ID, m.Headers, r.Value)
					}
					ok, gap := dedup.Observe(m)
					if gap != 0 {
						t.Fatalf("key %s: gap of %d before KeySeq %d", m.Key, gap, m.KeySeq)
					}
					if ok {
						fresh[m.ID]++
					}
				}
			}
			dups := 0
			for v := uint64(1); v <= commits; v++ {
				for i := range 2 {
					id := outbox.MessageID(0, v, i)
					if seen[id] == 0 {
						t.Fatalf("message %s is not in the topic", id)
					}
					dups += seen[id] - 1
					if fresh[id] != 1 {
						t.Fatalf("the consumer saw message %s %d times after dedup, want 1", id, fresh[id])
					}
				}
			}
			if dups != cut.Extra {
				t.Fatalf("%d duplicates in the topic, want %d", dups, cut.Extra)
			}
			t.Logf("%d messages, %d records, %d duplicates dropped by Dedup", total, len(recs), dups)
		})
	}
}
