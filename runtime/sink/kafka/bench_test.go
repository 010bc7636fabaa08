package kafka_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/theus-go/theus/runtime/internal/relaybench"
	"github.com/theus-go/theus/runtime/outbox"
)

// BenchmarkRelayDrain: a relay draining the outbox into an in-process
// kfake cluster (one broker, the topic in 8 partitions) through an
// idempotent franz-go client with no linger, as the package doc advises,
// and with franz-go's default linger of 10ms, to show why: Send waits for
// its records, so lingering only delays them (at batch 1 every message
// waits the full 10ms, about 100 msgs/s, too slow to be worth a run).
func BenchmarkRelayDrain(b *testing.B) {
	c := cluster(b, "bench")
	for _, linger := range []struct {
		name    string
		opts    []kgo.Opt
		batches []int
	}{
		{"linger=0", []kgo.Opt{kgo.ProducerLinger(0)}, []int{1, 100, 500}},
		{"linger=default", nil, []int{100, 500}},
	} {
		s := newSink(b, client(b, c, linger.opts...))
		for _, batch := range linger.batches {
			b.Run(fmt.Sprintf("%s/batch=%d", linger.name, batch), func(b *testing.B) {
				relaybench.Drain(b, batch, func() outbox.Sink { return s }, nil)
			})
		}
	}
}
