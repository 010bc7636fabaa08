package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sink delivers messages to the outside world: a broker, a webhook, a
// table, a Go func. Package runtime/sink has the implementations.
type Sink interface {
	// Send delivers batch in order. It returns the number of leading
	// messages that were delivered and, when that is less than len(batch),
	// the error of batch[n]. Messages after n count as not delivered; the
	// relay sends them again. An error is transient: retried with backoff
	// and counted towards the relay's MaxAttempts, after which the message
	// is parked; Permanent(err) parks it at once; Unavailable(err) (the
	// sink, not the message, is the problem) is retried without being
	// counted. A panic is recovered and is a transient error (*PanicError)
	// of the message that caused it: the relay sends the rest of the
	// batch one message at a time to find that message.
	Send(ctx context.Context, batch []Message) (n int, err error)
}

// permanentError marks an error the sink will never get past by retrying,
// such as a payload the receiver refuses.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as permanent: retrying the message cannot succeed.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// PanicError is the error of a Sink.Send that panicked. The relay treats it
// as a transient failure of the message the sink could not take: retried,
// counted towards WithMaxAttempts, then parked with Error and Stack as its
// last error.
type PanicError struct {
	Value any    // what the sink panicked with
	Stack []byte // the sink's goroutine stack at the panic
}

func (e *PanicError) Error() string { return fmt.Sprintf("theus: sink panicked: %v", e.Value) }

// RetryAfter returns the wait a sink asked for before the message is sent
// again, such as an HTTP Retry-After, if err (or an error it wraps) has a
// method RetryDelay() (time.Duration, bool) that reports one. The relay
// waits at least that long (longer if its own backoff says so) before its
// next round.
func RetryAfter(err error) (time.Duration, bool) {
	var r interface{ RetryDelay() (time.Duration, bool) }
	if errors.As(err, &r) {
		return r.RetryDelay()
	}
	return 0, false
}
