package amqp_test

import (
	"fmt"
	"testing"

	"github.com/theus-go/theus/runtime/internal/relaybench"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/amqp"
)

// BenchmarkRelayDrain: a relay draining the outbox into the RabbitMQ at
// THEUS_TEST_AMQP (persistent messages, publisher confirms, one
// non-durable queue bound to the exchange).
func BenchmarkRelayDrain(b *testing.B) {
	br := newBroker(b)
	ex := br.exchange(b, "bench")
	q := br.queue(b, ex, "#", nil)
	for _, batch := range []int{1, 100, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var s *amqp.Sink
			relaybench.Drain(b, batch, func() outbox.Sink {
				var err error
				if s, err = amqp.New(br.url, ex); err != nil {
					b.Fatal(err)
				}
				return s
			}, func() {
				s.Close()
				if _, err := br.ch.QueuePurge(q, false); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
