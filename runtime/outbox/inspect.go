package outbox

import (
	"context"
	"time"
)

// Message states as an operator sees them (MessageStatus.State).
const (
	StatePending   = "pending"   // waiting for delivery (held back behind a parked message included)
	StateParked    = "parked"    // failed MaxAttempts times, or permanently; holds its key back
	StateDelivered = "delivered" // acked, or skipped
)

// MessageStatus is a message with its delivery state, for an operator's
// view (runtime/console, cmd/theus).
type MessageStatus struct {
	Message
	// State is StatePending, StateParked or StateDelivered.
	State string
	// Attempts counts the failed deliveries; LastError is the last one's
	// text.
	Attempts  int
	LastError string
	// DeliveredAt is when the message was acked or skipped; zero when the
	// store does not know or it is not delivered.
	DeliveredAt time.Time
}

// TopicStats describes the outbox of one topic at one instant (see
// StoreStats for the whole store).
type TopicStats struct {
	Topic string
	// Pending counts the messages waiting for delivery; OldestPending is
	// the CreatedAt of the oldest, zero when there is none.
	Pending       int
	OldestPending time.Time
	// Parked counts the parked messages; ParkedKeys the keys that have one.
	Parked     int
	ParkedKeys int
}

// Inspector is implemented by stores that let an operator look into the
// outbox (the SQLite and PostgreSQL stores): per-topic figures and the
// delivery state of given messages.
type Inspector interface {
	// TopicStats returns the figures of every topic that has a pending or
	// parked message, by topic name.
	TopicStats(ctx context.Context) ([]TopicStats, error)
	// Messages returns the messages with these IDs that the store still
	// holds (Prune deletes delivered ones), in commit order.
	Messages(ctx context.Context, ids []string) ([]MessageStatus, error)
}

// RelayLease is a relay's lease on one partition of a store's outbox, on
// stores whose relays share the work by leasing partitions of the key
// space (PostgreSQL).
type RelayLease struct {
	Partition int
	// Holder names the relay that holds it; "" when free.
	Holder string
	// Token is the lease's fencing token, which grows at every take-over.
	Token uint64
	// Expires is when the lease runs out unless its holder renews it.
	Expires time.Time
}

// LeaseReader is implemented by stores whose relays lease partitions of
// the outbox: the console shows who holds what.
type LeaseReader interface {
	// Leases returns the leases by partition; none on a store whose
	// relays do not lease.
	Leases(ctx context.Context) ([]RelayLease, error)
}

// FleetStats counts the relay work of one store handle whose relays lease
// partitions of the outbox (PostgreSQL), since it was opened.
type FleetStats struct {
	// Leases is the number of partitions its relay holds now.
	Leases int
	// Handovers counts the partitions it took over from another relay
	// (whose lease had expired, or that gave them back).
	Handovers uint64
	// Fenced counts the messages whose ack or failure record was refused
	// because the relay had lost the lease of their partition.
	Fenced uint64
}

// PartitionStats describes the waiting messages of one partition.
type PartitionStats struct {
	Partition int
	// Pending counts the messages waiting for delivery; OldestPending is
	// the CreatedAt of the oldest, zero when there is none.
	Pending       int
	OldestPending time.Time
}

// FleetReader is implemented by stores whose relays lease partitions of
// the outbox: runtime/metrics exports what it reads.
type FleetReader interface {
	// FleetStats returns the counters of this store handle's relay.
	FleetStats() FleetStats
	// PartitionStats returns the figures of every partition, by
	// partition.
	PartitionStats(ctx context.Context) ([]PartitionStats, error)
}
