package outbox

import (
	"context"
	"errors"
)

// Store is what a Relay reads: the messages the engine committed. Every
// store under runtime/store implements it together with engine.Store, so
// the value given to engine.WithStore is also the one for NewRelay.
//
// A store may also implement Parking (count failures, park poison
// messages), Pruner (delete delivered messages after a retention),
// StatsReader (describe the outbox), RelayClaimer and Drainer; a relay uses each
// one it finds. A store whose relays do not share the work (each reads
// every undelivered message) must implement RelayClaimer, so that a
// second relay is refused rather than splitting the messages.
type Store interface {
	// Undelivered returns up to limit messages that are neither acked nor
	// parked, in commit order (ascending Version, then emit order). A store
	// that parks messages (Parking) also leaves out every message of a
	// (topic, key) that has a parked message, so the key's order holds.
	Undelivered(ctx context.Context, limit int) ([]Message, error)
	// Ack marks the messages with these IDs as delivered. Acking an
	// unknown or already acked ID is not an error.
	Ack(ctx context.Context, ids []string) error
	// Notify returns a channel that is closed when messages are committed
	// after the call. A relay calls it before Undelivered, so a commit
	// between the two is never missed.
	Notify() <-chan struct{}
}

// RelayClaimer is implemented by stores on which relays do not share the
// work: each relay reads every undelivered message, so two relays on one
// store would split the messages between their sinks and break the order
// of a key. The memory and SQLite stores implement it. Relay.Run claims
// the store before it delivers anything and releases it when it returns,
// so a second relay's Run fails at once with ErrRelayRunning. A store
// whose relays share the work may implement it too, to learn when a relay
// starts and stops on it: the PostgreSQL store takes its leases on
// partitions then, one relay per Store value.
type RelayClaimer interface {
	// ClaimRelay claims the store for one relay until release is called;
	// calling release more than once is harmless. While a claim is held,
	// ClaimRelay fails with an error matching ErrRelayRunning: in the same
	// process and, for a store in a file, in any process that opened it.
	ClaimRelay(ctx context.Context) (release func(), err error)
}

// Drainer is implemented by stores that can tell, after an Ack, that a
// read would find nothing until a commit: the relay then waits for the
// commit instead of reading. The PostgreSQL store implements it, where a
// read is a round trip to the server.
type Drainer interface {
	// Drained returns a channel that closes at the next commit (as
	// Notify's does) when the last Undelivered returned everything there
	// was and an Ack since settled all of it; otherwise nil.
	Drained() <-chan struct{}
}

// ErrRelayRunning is returned (wrapped) by Relay.Run when another relay
// already runs on the store (see RelayClaimer). Run one relay per memory
// or SQLite store; stop the other one first.
var ErrRelayRunning = errors.New("theus: another relay runs on this store (one relay per store)")

// ErrFenced is matched by the error of a store's Ack or Parking.Failed
// when the relay no longer holds the right to write the message (its
// lease on the message's partition passed to another relay; see the
// PostgreSQL store): the store wrote nothing. The relay then ends its
// round at once, sending nothing more of what it had read, and reads
// again: it gets only what it still holds.
var ErrFenced = errors.New("theus: the relay lost its lease on the message's partition")
