package sqltable_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/theus-go/theus/runtime/internal/relaybench"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/sqltable"
)

// BenchmarkRelayDrain: a relay draining the outbox into a table of a local
// SQLite database (default pragmas).
func BenchmarkRelayDrain(b *testing.B) {
	db := openSQLite(b)
	for _, batch := range []int{1, 100, 500} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			n := 0
			relaybench.Drain(b, batch, func() outbox.Sink {
				n++
				s, err := sqltable.New(db, fmt.Sprintf("events_%d_%d", batch, n))
				if err != nil {
					b.Fatal(err)
				}
				if err := s.CreateTable(context.Background()); err != nil {
					b.Fatal(err)
				}
				return s
			}, nil)
		})
	}
}
