package amqp_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/theus-go/theus/runtime/internal/servicetest"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/amqp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// broker is a test's view of RabbitMQ: an admin channel and names of its
// own, deleted when the test ends.
type broker struct {
	url string
	ch  *amqp091.Channel
	id  string
}

func newBroker(t testing.TB) *broker {
	t.Helper()
	u := servicetest.AMQPURL(t)
	conn, err := amqp091.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &broker{url: u, ch: ch, id: strings.ReplaceAll(t.Name(), "/", ".") + "." + hex.EncodeToString(b[:])}
}

// exchange declares a topic exchange named after the test.
func (b *broker) exchange(t testing.TB, suffix string) string {
	t.Helper()
	name := "theus-test." + b.id + "." + suffix
	if err := b.ch.ExchangeDeclare(name, "topic", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.ch.ExchangeDelete(name, false, false) })
	return name
}

// queue declares a queue bound to exchange with pattern.
func (b *broker) queue(t testing.TB, exchange, pattern string, args amqp091.Table) string {
	t.Helper()
	q, err := b.ch.QueueDeclare("theus-test."+b.id+"."+pattern, false, false, false, false, args)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = b.ch.QueueDelete(q.Name, false, false, false) })
	if err := b.ch.QueueBind(q.Name, pattern, exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	return q.Name
}

// drain reads the queue until it holds no more messages, then checks
// that want were read.
func (b *broker) drain(t *testing.T, queue string, want int) []amqp091.Delivery {
	t.Helper()
	var got []amqp091.Delivery
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		d, ok, err := b.ch.Get(queue, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			time.Sleep(10 * time.Millisecond) // polled with a deadline: the queue may still be filling
			continue
		}
		got = append(got, d)
	}
	if len(got) != want {
		t.Fatalf("queue %s gave %d messages, want %d", queue, len(got), want)
	}
	if d, ok, err := b.ch.Get(queue, true); err != nil || ok {
		t.Fatalf("queue %s holds more than %d messages (next %s, %v)", queue, want, d.MessageId, err)
	}
	return got
}

func newSink(t testing.TB, url, exchange string, opts ...amqp.Option) *amqp.Sink {
	t.Helper()
	s, err := amqp.New(url, exchange, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
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

func decode(t *testing.T, d amqp091.Delivery) outbox.Message {
	t.Helper()
	m, err := amqp.Decode(d)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDeliveryPropertiesAndHeaders(t *testing.T) {
	b := newBroker(t)
	ex := b.exchange(t, "ev")
	q := b.queue(t, ex, "#", nil)
	s := newSink(t, b.url, ex, amqp.WithContentType("application/json"))
	var p producer
	batch := []outbox.Message{p.next("user.updated", "u-1"), p.next("user.updated", "u-2"), p.next("user.updated", "u-1")}
	batch[0].Headers = map[string]string{
		"traceparent":  "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"x-delay":      "5000", // steers the broker: not carried
		"CC":           "other.key",
		"Theus-Key":    "forged",
		"tenant-name":  "acme",
		"x-match-over": "any",
	}
	if n, err := s.Send(context.Background(), batch); n != 3 || err != nil {
		t.Fatalf("Send = %d, %v; want 3, nil", n, err)
	}
	got := b.drain(t, q, 3)
	for i, d := range got {
		want := batch[i]
		if d.MessageId != want.ID || d.RoutingKey != want.Key || d.Type != want.Topic ||
			d.ContentType != "application/json" || d.DeliveryMode != amqp091.Persistent {
			t.Errorf("msg %d: id %q key %q type %q ct %q mode %d; want %q %q %q application/json 2",
				i, d.MessageId, d.RoutingKey, d.Type, d.ContentType, d.DeliveryMode, want.ID, want.Key, want.Topic)
		}
		if !d.Timestamp.Equal(want.CreatedAt.Truncate(time.Second)) {
			t.Errorf("msg %d: timestamp %v, want %v", i, d.Timestamp, want.CreatedAt.Truncate(time.Second))
		}
		for h, v := range map[string]string{
			amqp.HeaderTopic: want.Topic, amqp.HeaderKey: want.Key,
			amqp.HeaderKeySeq: strconv.FormatUint(want.KeySeq, 10), amqp.HeaderVersion: strconv.FormatUint(want.Version, 10),
		} {
			if g := d.Headers[h]; g != v {
				t.Errorf("msg %d: %s = %v, want %q", i, h, g, v)
			}
		}
		om := decode(t, d)
		if om.ID != want.ID || om.Topic != want.Topic || om.Key != want.Key || om.KeySeq != want.KeySeq ||
			om.Version != want.Version || string(om.Payload) != string(want.Payload) || !om.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("msg %d: decoded %+v, want %+v", i, om, want)
		}
	}
	h := got[0].Headers
	if h["traceparent"] != batch[0].Headers["traceparent"] || h["tenant-name"] != "acme" {
		t.Errorf("headers %v: want traceparent and tenant-name carried", h)
	}
	for _, k := range []string{"x-delay", "CC", "Theus-Key", "x-match-over"} {
		if v, ok := h[k]; ok {
			t.Errorf("header %s = %v carried, want it dropped", k, v)
		}
	}
	if om := decode(t, got[0]); len(om.Headers) != 2 {
		t.Errorf("decoded headers %v, want traceparent and tenant-name only", om.Headers)
	}
}

// 2,000 messages over 64 keys, pipelined: the queue holds each key's
// messages in KeySeq order with no gap.
func TestPerKeyOrder64Keys(t *testing.T) {
	b := newBroker(t)
	ex := b.exchange(t, "ev")
	q := b.queue(t, ex, "#", nil)
	s := newSink(t, b.url, ex, amqp.WithMaxInFlight(32),
		amqp.WithRoutingKey(func(m outbox.Message) string { return "ev." + m.Key }))
	var p producer
	var batch []outbox.Message
	for i := range 2000 {
		batch = append(batch, p.next("order.placed", fmt.Sprintf("k%02d", (i*7)%64)))
	}
	for i := 0; i < len(batch); i += 100 {
		if n, err := s.Send(context.Background(), batch[i:i+100]); n != 100 || err != nil {
			t.Fatalf("Send = %d, %v", n, err)
		}
	}
	d := outbox.NewDedup()
	for _, del := range b.drain(t, q, len(batch)) {
		om := decode(t, del)
		if del.RoutingKey != "ev."+om.Key {
			t.Errorf("routing key %q, want ev.%s", del.RoutingKey, om.Key)
		}
		if fresh, gap := d.Observe(om); !fresh || gap != 0 {
			t.Fatalf("key %q seq %d: fresh=%v gap=%d: out of order", om.Key, om.KeySeq, fresh, gap)
		}
	}
	for k := range 64 {
		if got := d.Last("order.placed", fmt.Sprintf("k%02d", k)); got != 2000/64 && got != 2000/64+1 {
			t.Errorf("key k%02d: last KeySeq %d", k, got)
		}
	}
}

// A mandatory message no queue takes is returned: an error of that
// message (not Unavailable, not Permanent), after the leading ones.
func TestReturnedIsAnError(t *testing.T) {
	b := newBroker(t)
	ex := b.exchange(t, "ev")
	q := b.queue(t, ex, "bound", nil)
	s := newSink(t, b.url, ex)
	var p producer
	batch := []outbox.Message{p.next("t", "bound"), p.next("t", "nowhere"), p.next("t", "bound")}
	n, err := s.Send(context.Background(), batch)
	var re *amqp.ReturnedError
	if n != 1 || !errors.As(err, &re) || !errors.Is(err, amqp.ErrReturned) || outbox.IsUnavailable(err) || outbox.IsPermanent(err) {
		t.Fatalf("Send = %d, %v; want 1 and a returned error", n, err)
	}
	if re.ID != batch[1].ID || re.ReplyCode != amqp091.NoRoute || re.RoutingKey != "nowhere" {
		t.Fatalf("returned %+v, want message %s NO_ROUTE with key nowhere", re, batch[1].ID)
	}
	// The channel is still good: the rest goes through. batch[2], of
	// another key, was confirmed behind the returned one but did not count:
	// the queue holds it twice.
	if n, err := s.Send(context.Background(), batch[2:]); n != 1 || err != nil {
		t.Fatalf("Send after a return = %d, %v", n, err)
	}
	if got := b.drain(t, q, 3); got[0].MessageId != batch[0].ID || got[1].MessageId != batch[2].ID || got[2].MessageId != batch[2].ID {
		t.Fatalf("queue holds %s %s %s", got[0].MessageId, got[1].MessageId, got[2].MessageId)
	}

	// Without the mandatory flag the broker drops it: delivered.
	lax := newSink(t, b.url, ex, amqp.WithMandatory(false))
	if n, err := lax.Send(context.Background(), batch[1:2]); n != 1 || err != nil {
		t.Fatalf("Send without mandatory = %d, %v", n, err)
	}
}

// A queue full with overflow reject-publish nacks: an error of that
// message, and the later message of its key is not published.
func TestNackedIsAnError(t *testing.T) {
	b := newBroker(t)
	ex := b.exchange(t, "ev")
	q := b.queue(t, ex, "#", amqp091.Table{"x-max-length": int32(2), "x-overflow": "reject-publish"})
	s := newSink(t, b.url, ex)
	var p producer
	batch := []outbox.Message{p.next("t", "a"), p.next("t", "b"), p.next("t", "a"), p.next("t", "a")}
	n, err := s.Send(context.Background(), batch)
	if n != 2 || !errors.Is(err, amqp.ErrNacked) || outbox.IsUnavailable(err) || outbox.IsPermanent(err) {
		t.Fatalf("Send = %d, %v; want 2 and a nack", n, err)
	}
	got := b.drain(t, q, 2)
	if got[0].MessageId != batch[0].ID || got[1].MessageId != batch[1].ID {
		t.Fatalf("queue holds %s, %s; want the first two", got[0].MessageId, got[1].MessageId)
	}
	// Room again: the nacked message and its successor go through, in order.
	if n, err := s.Send(context.Background(), batch[2:]); n != 2 || err != nil {
		t.Fatalf("Send after the queue drained = %d, %v", n, err)
	}
	got = b.drain(t, q, 2)
	if got[0].MessageId != batch[2].ID || got[1].MessageId != batch[3].ID {
		t.Fatalf("queue holds %s, %s; want %s, %s", got[0].MessageId, got[1].MessageId, batch[2].ID, batch[3].ID)
	}
}

// An exchange that does not exist: the broker closes the channel; a plain
// error (a configuration fault, counted), and the sink opens a new
// channel for the next Send.
func TestMissingExchange(t *testing.T) {
	b := newBroker(t)
	s := newSink(t, b.url, "theus-test.missing."+b.id)
	var p producer
	m := p.next("t", "k")
	n, err := s.Send(context.Background(), []outbox.Message{m})
	var ae *amqp091.Error
	if n != 0 || !errors.As(err, &ae) || ae.Code != amqp091.NotFound || outbox.IsUnavailable(err) {
		t.Fatalf("Send = %d, %v; want 0 and 404 NOT_FOUND", n, err)
	}
	ex := b.exchange(t, "later")
	q := b.queue(t, ex, "#", nil)
	s2 := newSink(t, b.url, ex)
	if n, err := s2.Send(context.Background(), []outbox.Message{m}); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	b.drain(t, q, 1)
	// The first sink recovers too once its exchange is there.
	if err := b.ch.ExchangeDeclare("theus-test.missing."+b.id, "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ch.QueueDeclare("theus-test.missing."+b.id, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.ch.QueueBind("theus-test.missing."+b.id, "", "theus-test.missing."+b.id, false, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Send(context.Background(), []outbox.Message{m}); n != 1 || err != nil {
		t.Fatalf("Send once the exchange exists = %d, %v", n, err)
	}
	b.drain(t, "theus-test.missing."+b.id, 1)
}

// A broker that is not there is outbox.Unavailable; the sink does not dial
// again within its backoff, and the error holds no password.
func TestUnreachableIsUnavailable(t *testing.T) {
	s := newSink(t, "amqp://guest:s3cret@127.0.0.1:1/", "ev",
		amqp.WithReconnectBackoff(time.Hour, time.Hour), amqp.WithDialTimeout(time.Second))
	var p producer
	m := p.next("t", "k")
	n, err := s.Send(context.Background(), []outbox.Message{m})
	if n != 0 || !outbox.IsUnavailable(err) {
		t.Fatalf("Send = %d, %v; want 0, Unavailable", n, err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error holds the password: %v", err)
	}
	start := time.Now()
	n, err = s.Send(context.Background(), []outbox.Message{m})
	if n != 0 || !outbox.IsUnavailable(err) || !strings.Contains(err.Error(), "next connection attempt") {
		t.Fatalf("Send in the backoff = %d, %v; want 0, Unavailable without dialing", n, err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Send in the backoff took %v", d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(context.Background(), []outbox.Message{m}); !errors.Is(err, amqp.ErrClosed) || !outbox.IsUnavailable(err) {
		t.Fatalf("Send after Close: %v; want ErrClosed, Unavailable", err)
	}
	if _, err := amqp.New("amqp://guest:s3cret@[::1", "ev"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("New with a bad URL: %v; want an error without the password", err)
	}
}

// A routing key longer than AMQP allows is permanent.
func TestLongRoutingKeyIsPermanent(t *testing.T) {
	b := newBroker(t)
	ex := b.exchange(t, "ev")
	q := b.queue(t, ex, "#", nil)
	s := newSink(t, b.url, ex)
	var p producer
	batch := []outbox.Message{p.next("t", "ok"), p.next("t", strings.Repeat("k", 256))}
	if n, err := s.Send(context.Background(), batch); n != 1 || !outbox.IsPermanent(err) {
		t.Fatalf("Send = %d, %v; want 1, Permanent", n, err)
	}
	b.drain(t, q, 1)
}
