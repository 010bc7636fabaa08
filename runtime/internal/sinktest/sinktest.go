// Package sinktest holds what the sinks' tests share.
package sinktest

import (
	"context"
	"errors"
	"sync"

	"github.com/theus-go/theus/runtime/outbox"
)

// Interrupt is the sink of a relay that is stopped in the middle of a
// batch, as a crash or a shutdown would stop it: in its first batch of more
// than K+Extra messages it sends K+Extra of them through Real, stops the
// relay (Stop) and reports only K delivered, with context.Canceled (Fail
// false: the relay's context ended) or with an error (Fail true: the
// connection was lost). Every other batch goes to Real. Hit is closed once
// the cut has happened.
type Interrupt struct {
	Real     outbox.Sink
	K, Extra int
	Fail     bool
	Stop     context.CancelFunc
	Hit      chan struct{}
	once     sync.Once
}

// NewInterrupt returns an Interrupt of real that cuts after k+extra
// messages and reports k, stopping the relay with stop.
func NewInterrupt(real outbox.Sink, k, extra int, fail bool, stop context.CancelFunc) *Interrupt {
	return &Interrupt{Real: real, K: k, Extra: extra, Fail: fail, Stop: stop, Hit: make(chan struct{})}
}

// Send implements outbox.Sink.
func (s *Interrupt) Send(ctx context.Context, batch []outbox.Message) (int, error) {
	cut := false
	if len(batch) > s.K+s.Extra {
		s.once.Do(func() { cut = true })
	}
	if !cut {
		return s.Real.Send(ctx, batch)
	}
	defer close(s.Hit)
	if n, err := s.Real.Send(ctx, batch[:s.K+s.Extra]); err != nil {
		return n, err
	}
	s.Stop()
	if s.Fail {
		return s.K, errors.New("sinktest: connection lost after the first messages of the batch")
	}
	return s.K, context.Canceled
}
