// Package relaybench measures how fast a relay drains an outbox into a
// sink: the harness behind each sink's BenchmarkRelayDrain.
package relaybench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/memory"
)

// Messages is how many messages one drain delivers.
const Messages = 2000

// Drain runs b.N drains of Messages messages (over 16 keys, 64-byte JSON
// payloads) from a memory store through sink with the given relay batch
// size, and reports msgs/s. newSink is called once per drain; done, if not
// nil, is called after the relay stopped, to release the sink.
func Drain(b *testing.B, batch int, newSink func() outbox.Sink, done func()) {
	b.ReportAllocs()
	var total time.Duration
	for range b.N {
		b.StopTimer()
		st := memory.New()
		seq := map[string]uint64{}
		payload := []byte(`{"id":"acct-0000001","amount":12345,"note":"benchmark payload.."}`)
		for v := 1; v <= Messages; v++ {
			key := fmt.Sprintf("k%02d", v%16)
			seq[key]++
			rec := &engine.Record{Version: uint64(v), State: new(int), Messages: []outbox.Message{{
				ID: outbox.MessageID(0, uint64(v), 0), Topic: "bench", Key: key, KeySeq: seq[key],
				Version: uint64(v), Payload: payload, CreatedAt: time.Unix(1_800_000_000, 0),
			}}}
			if err := st.Commit(context.Background(), []*engine.Record{rec}); err != nil {
				b.Fatal(err)
			}
		}
		sink := NewWatch(newSink(), Messages)
		ctx, cancel := context.WithCancel(context.Background())
		r := outbox.NewRelay(st, sink, outbox.WithBatchSize(batch), outbox.WithRelayBackoff(time.Millisecond, 10*time.Millisecond))
		errc := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { errc <- r.Run(ctx) }()
		<-sink.Done()
		total += time.Since(start)
		b.StopTimer()
		cancel()
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		if s := r.Stats(); s.Delivered < Messages {
			b.Fatalf("delivered %d of %d", s.Delivered, Messages)
		}
		if done != nil {
			done()
		}
	}
	b.ReportMetric(float64(Messages*b.N)/total.Seconds(), "msgs/s")
}

// Watch wraps a sink for one relay and closes Done once the sink confirmed
// a given number of messages: how a test or benchmark waits for a relay
// without polling.
type Watch struct {
	outbox.Sink
	want, got int
	done      chan struct{}
}

// NewWatch wraps sink; Done is closed after want confirmed messages.
func NewWatch(sink outbox.Sink, want int) *Watch {
	return &Watch{Sink: sink, want: want, done: make(chan struct{})}
}

// Done is closed once the sink confirmed the messages.
func (w *Watch) Done() <-chan struct{} { return w.done }

// Send is only called by the relay's one goroutine.
func (w *Watch) Send(ctx context.Context, batch []outbox.Message) (int, error) {
	n, err := w.Sink.Send(ctx, batch)
	if w.got < w.want && w.got+n >= w.want {
		close(w.done)
	}
	w.got += n
	return n, err
}
