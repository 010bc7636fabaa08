package outbox

import "context"

// Store is what a Relay reads: the messages the engine committed. Every
// store under runtime/store implements it together with engine.Store, so
// the value given to engine.WithStore is also the one for NewRelay.
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
