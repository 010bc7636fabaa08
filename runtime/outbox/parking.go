package outbox

import (
	"context"
	"errors"
)

// unavailableError marks an error of the sink itself (a broker that is down,
// a network that is cut), which says nothing about the message.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return "unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// Unavailable marks err as the sink being unreachable: the message is not
// at fault, so the relay retries it with backoff for as long as it takes
// and the failure does not count towards WithMaxAttempts. Unavailable(nil)
// is nil.
//
// A sink error is in one of three classes:
//
//   - Permanent(err): retrying this message cannot succeed (the receiver
//     refuses it); the message is parked at once.
//   - Unavailable(err): the sink cannot be reached; retried forever,
//     never counted, never parked.
//   - any other error: transient, retried with backoff, and counted: after
//     WithMaxAttempts failures the message is parked with its last error.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &unavailableError{err: err}
}

// IsUnavailable reports whether err was marked with Unavailable.
func IsUnavailable(err error) bool {
	var u *unavailableError
	return errors.As(err, &u)
}

// Parking is implemented by stores that count failed deliveries and park
// messages; a Relay on such a store parks poison messages (see
// WithMaxAttempts). It is also the operator's API: list what is parked,
// replay a key, skip a message. A parked message holds back the later
// messages of its (topic, key), and only those: Undelivered returns
// neither.
type Parking interface {
	// Failed records a failed delivery of the message id with cause as its
	// last error, and counts it. The message is parked when park is set or
	// when its count reaches maxAttempts (maxAttempts <= 0: never by
	// count). It reports whether the message is parked now. The count is
	// stored with the message, so it survives restarts.
	Failed(ctx context.Context, id, cause string, park bool, maxAttempts int) (parked bool, err error)
	// Parked returns the parked messages in commit order.
	Parked(ctx context.Context) ([]ParkedMessage, error)
	// Replay returns the parked messages of (topic, key) to delivery, with
	// their attempts reset, so the key flows again in order (the replayed
	// message first). It returns how many messages it unparked.
	Replay(ctx context.Context, topic, key string) (int, error)
	// Skip marks the parked message id as delivered without sending it, so
	// the later messages of its key flow. Skipping a message that is not
	// parked is an error.
	Skip(ctx context.Context, id string) error
}

// ParkedMessage is a parked message with why it was parked.
type ParkedMessage struct {
	Message
	// Attempts is the number of counted failed deliveries.
	Attempts int
	// LastError is the text of the last delivery error.
	LastError string
}

// ErrNotParked is returned by Parking.Skip for a message that is not
// parked.
var ErrNotParked = errors.New("theus: message is not parked")

// Pruner is implemented by stores that keep delivered messages for a
// retention period. A Relay calls Prune periodically (WithPruneInterval);
// an application without a relay may call it from its own ticker.
type Pruner interface {
	// Prune deletes, in batches, the delivered messages older than the
	// store's retention, and returns how many it deleted.
	Prune(ctx context.Context) (int, error)
}
