// Package sink holds the outbox.Sink implementations that need nothing but
// the standard library; the broker sinks live in its subpackages.
package sink

import (
	"context"

	"github.com/theus-go/theus/runtime/outbox"
)

// Func adapts a function that delivers one message to an outbox.Sink. The
// function is called for each message of a batch in order, and the batch
// stops at the first error.
func Func(f func(ctx context.Context, m outbox.Message) error) outbox.Sink { return funcSink(f) }

type funcSink func(ctx context.Context, m outbox.Message) error

func (f funcSink) Send(ctx context.Context, batch []outbox.Message) (int, error) {
	for i, m := range batch {
		if err := f(ctx, m); err != nil {
			return i, err
		}
	}
	return len(batch), nil
}
