package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink"
)

// A sink that panics on one message does not take the process down: the
// panic is a failed delivery of that message, counted like any other, so
// the message parks after MaxAttempts with the panic (value and stack) as
// its error, while the other keys, and the relay, go on.
func TestSinkPanicParksTheMessage(t *testing.T) {
	stores(t, func(t *testing.T, p *keyProducer) {
		for range 5 {
			p.commit(t, "bad", "good", "other")
		}
		c := newCollector(11) // bad#1, and good and other: 5 each
		receive := func(ctx context.Context, m outbox.Message) error {
			if string(m.Payload) == "bad#2" {
				panic("poisoned " + string(m.Payload))
			}
			return c.receive(ctx, m)
		}
		r := outbox.NewRelay(p.st, sink.Func(receive), outbox.WithMaxAttempts(3),
			outbox.WithRelayBackoff(time.Microsecond, time.Millisecond))
		stop := runRelay(t, r)
		defer stop()
		waitFor(t, c)
		parked := waitParked(t, p.st, 1)
		pm := parked[0]
		if len(parked) != 1 || string(pm.Payload) != "bad#2" || pm.Attempts != 3 {
			t.Fatalf("parked %+v, want bad#2 after 3 attempts", parked)
		}
		for _, want := range []string{"panic", "poisoned bad#2", "goroutine "} {
			if !strings.Contains(pm.LastError, want) {
				t.Errorf("the parked message's error does not hold %q:\n%s", want, pm.LastError)
			}
		}
		for _, m := range c.messages() {
			if m.Key == "bad" && m.KeySeq > 1 {
				t.Fatalf("%s delivered behind the parked bad#2", m.Payload)
			}
		}

		// The relay is still running: a later commit is delivered.
		c.mu.Lock()
		c.want, c.done = c.fresh+1, make(chan struct{})
		c.mu.Unlock()
		p.commit(t, "late")
		waitFor(t, c)
	})
}

func TestPanicErrorText(t *testing.T) {
	err := error(&outbox.PanicError{Value: fmt.Errorf("boom"), Stack: []byte("goroutine 1 [running]:")})
	var pe *outbox.PanicError
	if !errors.As(fmt.Errorf("wrapped: %w", err), &pe) || pe.Value.(error).Error() != "boom" {
		t.Fatalf("errors.As = %v", pe)
	}
	if got := err.Error(); got != "theus: sink panicked: boom" {
		t.Errorf("Error() = %q", got)
	}
}
