// Package outbox holds what happens to messages after the engine committed
// them: the Message type, the Relay that delivers them to a Sink, and Dedup
// for consumers.
//
// # Guarantees
//
// A message exists if and only if the commit that emitted it exists: both
// are written by the store in one transaction. The relay then delivers
// every message at least once:
//
//   - in commit order per (topic, key): a message that fails holds back the
//     later messages of its key, and only those;
//   - acked only after the sink confirmed it, so a crash or a lost ack means
//     the message is sent again;
//   - with an ID that never changes (Message.ID), for broker-side dedup;
//   - with KeySeq, 1, 2, 3... per (topic, key) without gaps, so a consumer
//     can drop what it has seen and notice what it has not (Dedup).
//
// # Failures and parking
//
// A sink error falls in one of three classes:
//
//   - a plain error is transient: the message is retried after an
//     exponential backoff with jitter, and the failure is counted; after
//     WithMaxAttempts (default 10) counted failures the message is parked
//     with its last error;
//   - Permanent(err): retrying cannot help (the receiver refuses the
//     message); it is parked at once;
//   - Unavailable(err): the sink cannot be reached (broker down, network
//     cut); the message is not at fault, so it is retried for as long as
//     it takes and the failure is never counted.
//
// A sink that panics does not stop the relay: the panic is recovered into
// a *PanicError, a transient error of the message the sink was given
// (alone: after a panic on several messages the relay sends the rest of
// the round one at a time, so the panic is held against the message that
// causes it). It is logged with its stack, and a parked message keeps the
// stack in its last error.
//
// A parked message holds back the later messages of its (topic, key), and
// only those: other keys keep flowing. Parking needs a store that
// implements Parking (the memory and SQLite stores do; the SQLite store
// counts attempts in the database, so they survive restarts). An operator
// lists parked messages with Parking.Parked, sends a key again in order
// with Replay once the cause is fixed, or drops one message with Skip.
// On a store without Parking, failed messages are retried forever.
//
// A store that implements Pruner keeps delivered messages for a retention
// period; the relay calls Prune every WithPruneInterval.
//
// # Monitoring
//
// WithRelayMetrics reports a relay's deliveries, failures (with their
// class), parking and batch latencies to a RelayMetrics; Relay.Stats
// counts the same in memory. A store that implements StatsReader (the
// memory and SQLite stores do) tells how deep its outbox is, how old its
// oldest waiting message, and how many messages and keys are parked.
// Package runtime/metrics exports both to Prometheus.
//
// # Running a relay
//
//	relay := outbox.NewRelay(eng.Store(), sink.Func(publish))
//	go relay.Run(ctx) // returns nil when ctx ends
//
// A commit in the same process wakes the relay at once; WithPollInterval
// sets the backstop for stores written by other processes. Run one
// relay per store: the memory and SQLite stores implement RelayClaimer,
// and a second relay's Run fails at once with ErrRelayRunning. On
// PostgreSQL, relays share a schema, each on a Store of its own: they
// lease partitions of the key space, and a store refuses (ErrFenced) the
// writes of a relay that lost its lease, which then ends its round.
package outbox
