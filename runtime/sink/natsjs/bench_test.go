package natsjs_test

import (
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/theus-go/theus/runtime/internal/relaybench"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/natsjs"
)

// BenchmarkRelayDrain: a relay draining the outbox into an embedded
// JetStream server (file storage in a temporary directory).
func BenchmarkRelayDrain(b *testing.B) {
	_, _, js := embedded(b)
	for _, batch := range []int{1, 100, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			n := 0
			relaybench.Drain(b, batch, func() outbox.Sink {
				n++
				name := fmt.Sprintf("BENCH_%d_%d", batch, n)
				createStream(b, js, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}})
				return newSink(b, js, natsjs.WithSubjectTemplate(name+".{topic}.{key}"))
			}, nil)
		})
	}
}
