package natsjs_test

import (
	"context"
	"github.com/theus-go/theus/runtime/internal/servicetest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/natsjs"
)

// TestIntegrationExternal runs against the server at THEUS_TEST_NATS
// (default nats://127.0.0.1:4222). It skips when the server is not
// reachable, and fails instead under THEUS_REQUIRE_SERVICES=1.
func TestIntegrationExternal(t *testing.T) {
	url := servicetest.Addr("THEUS_TEST_NATS", "nats://127.0.0.1:4222")
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second), nats.MaxReconnects(0))
	if err != nil {
		servicetest.Unreachable(t, "NATS", "THEUS_TEST_NATS", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := nuid.Next()
	name := "THEUS_TEST_" + id
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{"theus-test-" + id + ".>"}, Storage: jetstream.MemoryStorage,
	})
	if err != nil {
		t.Fatalf("create stream on %s: %v", url, err)
	}
	defer func() {
		if err := js.DeleteStream(context.Background(), name); err != nil {
			t.Errorf("delete stream %s: %v", name, err)
		}
	}()
	s := newSink(t, js, natsjs.WithSubjectTemplate("theus-test-"+id+".{topic}.{key}"))
	var p producer
	var batch []outbox.Message
	for i := range 100 {
		batch = append(batch, p.next("user.updated", []string{"u1", "u2", "u3"}[i%3]))
	}
	batch[0].Headers = map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	for round := range 2 { // the second round is deduplicated by the broker
		if n, err := s.Send(ctx, batch); n != len(batch) || err != nil {
			t.Fatalf("round %d: Send = %d, %v", round, n, err)
		}
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(batch)) {
		t.Fatalf("stream holds %d, want %d (broker dedup on Nats-Msg-Id)", info.State.Msgs, len(batch))
	}
	got := consumeAll(t, js, name)
	d := outbox.NewDedup()
	for i, m := range got {
		om := decode(t, m)
		if om.ID != batch[i].ID {
			t.Errorf("msg %d: ID %s, want %s", i, om.ID, batch[i].ID)
		}
		if fresh, gap := d.Observe(om); !fresh || gap != 0 {
			t.Errorf("msg %d: fresh=%v gap=%d", i, fresh, gap)
		}
	}
	if tp := got[0].Headers().Get("traceparent"); tp != batch[0].Headers["traceparent"] {
		t.Errorf("traceparent %q not carried", tp)
	}
}
