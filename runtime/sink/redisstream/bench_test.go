package redisstream_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/theus-go/theus/runtime/internal/relaybench"
	"github.com/theus-go/theus/runtime/internal/servicetest"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/redisstream"
)

// BenchmarkRelayDrain: a relay draining the outbox into one stream of the
// Redis at THEUS_TEST_REDIS.
func BenchmarkRelayDrain(b *testing.B) {
	rdb := servicetest.Redis(b)
	name := names(b, rdb)
	for _, batch := range []int{1, 100, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			stream := name(fmt.Sprint("bench-", batch))
			relaybench.Drain(b, batch, func() outbox.Sink {
				return newSink(b, rdb, redisstream.WithStream(stream))
			}, func() {
				if err := rdb.Del(context.Background(), stream).Err(); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}
