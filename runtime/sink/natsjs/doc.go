// Package natsjs is an outbox.Sink that publishes messages to NATS
// JetStream (github.com/nats-io/nats.go/jetstream).
//
//	nc, _ := nats.Connect(url, nats.MaxReconnects(-1))
//	js, _ := jetstream.New(nc)
//	s, err := natsjs.New(js,
//		natsjs.WithSubjectTemplate("events.{topic}.{key}"), // default: the topic
//		natsjs.WithMaxInFlight(256),                         // unacked publishes
//		natsjs.WithAckTimeout(5*time.Second))                // per message
//	relay := outbox.NewRelay(st, s)
//
// The stream that captures the subjects must exist; the sink creates none.
//
// # The message
//
// Subject: the topic, or the template with {topic} and {key} replaced (an
// empty key is "_"; a key holding '.', '*', '>' or whitespace makes the
// message permanent), or what WithSubject's func returns. Data: the
// payload. Headers: the message's own, except names beginning with
// "Nats-" (they steer the broker) or "Theus-", and:
//
//	Nats-Msg-Id:      the message ID (the stream's dedup within its Duplicates window)
//	Theus-Topic:      the topic
//	Theus-Key:        the key
//	Theus-Key-Seq:    KeySeq, decimal
//	Theus-Version:    the commit version, decimal
//	Theus-Created-At: the commit time, RFC 3339 with nanoseconds, UTC
//
// Consumers rebuild the outbox.Message with Decode and drop duplicates
// with outbox.Dedup: the stream's dedup window (2 minutes by default)
// does not cover an outage longer than it.
//
// # Acks and order
//
// Send publishes asynchronously and returns only when every published
// message is acked, failed or timed out; n is the number of leading
// messages acked. Messages of different (topic, key)s are pipelined; a
// message waits for the ack of the previous one of its key, so the stream
// holds each key's messages in KeySeq order (duplicates aside).
//
// # Errors
//
// No responders (no stream, or the stream's leader not ready), a closed,
// draining or reconnecting connection, an ack timeout, and JetStream not
// enabled are outbox.Unavailable: retried, never counted. Other errors
// from the stream are plain (retried, counted); a subject that cannot be
// built is outbox.Permanent.
package natsjs
