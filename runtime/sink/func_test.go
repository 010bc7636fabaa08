package sink_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/theus-go/theus/runtime/internal/relaybench"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink"
)

func TestFuncStopsAtFirstError(t *testing.T) {
	var got []string
	s := sink.Func(func(_ context.Context, m outbox.Message) error {
		if m.ID == "b" {
			return fmt.Errorf("refused %s", m.ID)
		}
		got = append(got, m.ID)
		return nil
	})
	n, err := s.Send(context.Background(), []outbox.Message{{ID: "a"}, {ID: "b"}, {ID: "c"}})
	if n != 1 || err == nil || len(got) != 1 {
		t.Fatalf("n = %d, err = %v, delivered %v; want 1, an error, [a]", n, err, got)
	}
}

// BenchmarkRelayDrain is the baseline of the sinks' drain benchmarks: the
// relay and the memory store with a sink that does nothing.
func BenchmarkRelayDrain(b *testing.B) {
	for _, batch := range []int{1, 100, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			relaybench.Drain(b, batch, func() outbox.Sink {
				return sink.Func(func(context.Context, outbox.Message) error { return nil })
			}, nil)
		})
	}
}
