package outbox

import (
	"context"
	"time"
)

// RelayMetrics receives a relay's events (see WithRelayMetrics); package
// runtime/metrics has the Prometheus one. Implementations must be safe for
// concurrent use, since relays may share one, and quick: they run on the
// relay's loop.
type RelayMetrics interface {
	// Delivered is called after the store acked msgs, which the sink
	// confirmed. msgs must not be retained.
	Delivered(msgs []Message)
	// Failed is called for every failed delivery of a message of topic,
	// with the sink's error (see Permanent, Unavailable) and whether the
	// message was parked for it.
	Failed(topic string, err error, parked bool)
	// Batch is called when the relay is done with a batch of n messages
	// read from the store, d after it began reading it: delivered, failed
	// or parked, and acked.
	Batch(n int, d time.Duration)
}

// WithRelayMetrics reports the relay's deliveries, failures and batch
// latencies to m.
func WithRelayMetrics(m RelayMetrics) RelayOption {
	return func(o *relayOptions) { o.metrics = m }
}

// StoreStats describes a store's outbox at one instant.
type StoreStats struct {
	// Pending counts the messages waiting for delivery: neither acked nor
	// parked (those held back behind a parked message of their key
	// included). It is the outbox's depth.
	Pending int
	// OldestPending is the CreatedAt of the oldest pending message, zero
	// when there is none: how far behind the relay is.
	OldestPending time.Time
	// Parked counts the parked messages; ParkedKeys the (topic, key)s that
	// have one, which are held back.
	Parked     int
	ParkedKeys int
}

// StatsReader is implemented by stores that can describe their outbox, for
// monitoring: runtime/metrics asks at every scrape. Stats should cost
// little more than counting the pending messages.
type StatsReader interface {
	Stats(ctx context.Context) (StoreStats, error)
}
