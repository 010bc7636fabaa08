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
// Sink errors are transient unless wrapped with Permanent. The relay waits
// an exponential backoff with jitter after a failed round.
//
// # Running a relay
//
//	relay := outbox.NewRelay(eng.Store(), sink.Func(publish))
//	go relay.Run(ctx) // returns nil when ctx ends
//
// A commit in the same process wakes the relay at once; WithPollInterval
// sets the backstop for stores written by other processes.
package outbox
