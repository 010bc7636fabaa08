package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/natsjs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer starts an embedded nats-server with JetStream storing in
// dir, on port (-1: a random one), and waits until it takes connections.
func startServer(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		t.Fatal("nats-server not ready within 10s")
	}
	return srv
}

func stopServer(srv *server.Server) {
	srv.Shutdown()
	srv.WaitForShutdown()
}

// embedded returns a JetStream client of a fresh embedded server.
func embedded(t testing.TB) (*server.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	srv := startServer(t, t.TempDir(), -1)
	t.Cleanup(func() { stopServer(srv) })
	nc, js := connect(t, srv.ClientURL())
	return srv, nc, js
}

func connect(t testing.TB, url string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}

func createStream(t testing.TB, js jetstream.JetStream, cfg jetstream.StreamConfig) jetstream.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.CreateStream(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newSink(t testing.TB, js jetstream.JetStream, opts ...natsjs.Option) *natsjs.Sink {
	t.Helper()
	s, err := natsjs.New(js, opts...)
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
		ID: outbox.MessageID(0, p.version, 0), Topic: topic, Key: key, KeySeq: p.seq[tk],
		Version: p.version, Payload: fmt.Appendf(nil, `{"n":%d}`, p.version),
		CreatedAt: time.Unix(1767225600, int64(p.version)).UTC(),
	}
}

// consumeAll reads the whole stream through an ordered consumer.
func consumeAll(t *testing.T, js jetstream.JetStream, stream string) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := int(info.State.Msgs)
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var got []jetstream.Msg
	for len(got) < want {
		batch, err := cons.Fetch(want-len(got), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			got = append(got, m)
		}
		if err := batch.Error(); err != nil {
			t.Fatalf("fetch after %d of %d messages: %v", len(got), want, err)
		}
	}
	return got
}

func decode(t *testing.T, m jetstream.Msg) outbox.Message {
	t.Helper()
	om, err := natsjs.Decode(m.Subject(), m.Headers(), m.Data())
	if err != nil {
		t.Fatal(err)
	}
	return om
}

func TestDeliveryHeadersAndMsgID(t *testing.T) {
	_, _, js := embedded(t)
	createStream(t, js, jetstream.StreamConfig{Name: "EV", Subjects: []string{"user.>"}})
	s := newSink(t, js)
	var p producer
	batch := []outbox.Message{p.next("user.updated", "u-1"), p.next("user.updated", "u-2"), p.next("user.updated", "u-1")}
	batch[0].Headers = map[string]string{
		"traceparent":          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"Nats-Expected-Stream": "OTHER", // steers the broker: not carried
		"Theus-Key":            "forged",
	}
	n, err := s.Send(context.Background(), batch)
	if n != 3 || err != nil {
		t.Fatalf("Send = %d, %v; want 3, nil", n, err)
	}
	got := consumeAll(t, js, "EV")
	if len(got) != 3 {
		t.Fatalf("stream has %d messages, want 3", len(got))
	}
	for i, m := range got {
		want := batch[i]
		if m.Subject() != "user.updated" {
			t.Errorf("msg %d: subject %q, want user.updated", i, m.Subject())
		}
		if id := m.Headers().Get("Nats-Msg-Id"); id != want.ID {
			t.Errorf("msg %d: Nats-Msg-Id %q, want %q", i, id, want.ID)
		}
		for h, v := range map[string]string{
			"Theus-Topic": want.Topic, "Theus-Key": want.Key,
			"Theus-Key-Seq": strconv.FormatUint(want.KeySeq, 10), "Theus-Version": strconv.FormatUint(want.Version, 10),
		} {
			if g := m.Headers().Get(h); g != v {
				t.Errorf("msg %d: %s = %q, want %q", i, h, g, v)
			}
		}
		om := decode(t, m)
		if om.ID != want.ID || om.Topic != want.Topic || om.Key != want.Key || om.KeySeq != want.KeySeq ||
			om.Version != want.Version || string(om.Payload) != string(want.Payload) || !om.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("msg %d: decoded %+v, want %+v", i, om, want)
		}
	}
	h := got[0].Headers()
	if g := h.Get("traceparent"); g != batch[0].Headers["traceparent"] {
		t.Errorf("traceparent = %q, want it carried", g)
	}
	if g := h.Get("Nats-Expected-Stream"); g != "" {
		t.Errorf("Nats-Expected-Stream = %q, want it dropped", g)
	}
}

func TestBrokerDedup(t *testing.T) {
	_, _, js := embedded(t)
	st := createStream(t, js, jetstream.StreamConfig{Name: "EV", Subjects: []string{"t"}})
	s := newSink(t, js)
	var p producer
	var batch []outbox.Message
	for range 10 {
		batch = append(batch, p.next("t", "k"))
	}
	for round := range 2 {
		if n, err := s.Send(context.Background(), batch); n != 10 || err != nil {
			t.Fatalf("round %d: Send = %d, %v; want 10, nil", round, n, err)
		}
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 10 {
		t.Fatalf("stream holds %d messages after sending 10 twice, want 10", info.State.Msgs)
	}
}

func TestPerKeyOrderThroughConsumer(t *testing.T) {
	_, _, js := embedded(t)
	createStream(t, js, jetstream.StreamConfig{Name: "EV", Subjects: []string{"ev.>"}})
	s := newSink(t, js, natsjs.WithSubjectTemplate("ev.{topic}.{key}"), natsjs.WithMaxInFlight(16))
	var p producer
	var batch []outbox.Message
	for i := range 500 {
		batch = append(batch, p.next("order.placed", []string{"a", "b", "c", "", "e"}[i%5]))
	}
	for i := 0; i < len(batch); i += 100 {
		if n, err := s.Send(context.Background(), batch[i:i+100]); n != 100 || err != nil {
			t.Fatalf("Send = %d, %v", n, err)
		}
	}
	d := outbox.NewDedup()
	got := consumeAll(t, js, "EV")
	if len(got) != len(batch) {
		t.Fatalf("consumed %d, want %d", len(got), len(batch))
	}
	for _, m := range got {
		om := decode(t, m)
		wantSubj := "ev.order.placed." + om.Key
		if om.Key == "" {
			wantSubj = "ev.order.placed._"
		}
		if m.Subject() != wantSubj {
			t.Errorf("subject %q, want %q", m.Subject(), wantSubj)
		}
		if fresh, gap := d.Observe(om); !fresh || gap != 0 {
			t.Fatalf("key %q seq %d: fresh=%v gap=%d: out of order", om.Key, om.KeySeq, fresh, gap)
		}
	}
}

func TestErrors(t *testing.T) {
	_, nc, js := embedded(t)
	var p producer
	batch := []outbox.Message{p.next("nostream", "k")}
	s := newSink(t, js, natsjs.WithAckTimeout(2*time.Second))

	// No stream captures the subject: no responders.
	n, err := s.Send(context.Background(), batch)
	if n != 0 || !outbox.IsUnavailable(err) {
		t.Errorf("no stream: Send = %d, %v; want 0, Unavailable", n, err)
	}

	// A key that is no subject token: permanent, after the leading ones.
	createStream(t, js, jetstream.StreamConfig{Name: "EV", Subjects: []string{"ev.>"}})
	ts := newSink(t, js, natsjs.WithSubjectTemplate("ev.{topic}.{key}"))
	bad := []outbox.Message{p.next("t", "ok"), p.next("t", "a.b"), p.next("t", "ok")}
	n, err = ts.Send(context.Background(), bad)
	if n != 1 || !outbox.IsPermanent(err) {
		t.Errorf("bad key: Send = %d, %v; want 1, Permanent", n, err)
	}

	// Closed connection.
	nc.Close()
	n, err = ts.Send(context.Background(), bad[:1])
	if n != 0 || !outbox.IsUnavailable(err) || !errors.Is(err, nats.ErrConnectionClosed) {
		t.Errorf("closed: Send = %d, %v; want 0, Unavailable(connection closed)", n, err)
	}

	if _, err := natsjs.New(js, natsjs.WithSubjectTemplate("ev.*")); err == nil {
		t.Error("WithSubjectTemplate(ev.*) accepted")
	}
}

// port returns the port srv listens on.
func port(srv *server.Server) int { return srv.Addr().(*net.TCPAddr).Port }
