// Package amqp is an outbox.Sink that publishes messages to RabbitMQ (AMQP
// 0-9-1, github.com/rabbitmq/amqp091-go) with publisher confirms.
//
//	s, err := amqp.New("amqp://user:password@rabbit:5672/", "events",
//		amqp.WithRoutingKey(func(m outbox.Message) string { return m.Topic + "." + m.Key }), // default: the key
//		amqp.WithMaxInFlight(256),                // unconfirmed publishes
//		amqp.WithConfirmTimeout(5*time.Second),   // per message
//		amqp.WithReconnectBackoff(100*time.Millisecond, 10*time.Second))
//	defer s.Close() // after the relay stopped
//	relay := outbox.NewRelay(st, s)
//
// The sink owns its connection: it dials on the first Send, opens one
// channel in confirm mode and keeps it across Sends. After the connection
// is lost it dials again on a later Send, not before a backoff (doubling
// from the minimum to the maximum after each failed attempt; a Send within
// it fails at once with outbox.Unavailable, and the relay's own backoff
// spaces the Sends). amqp091's automatic recovery is not used. TLS, SASL
// and heartbeats come from WithConfig (an amqp091.Config). The exchange
// and the queues bound to it must exist: the sink declares nothing.
//
// # The message
//
// Exchange: the one given to New. Routing key: the message key, or what
// WithRoutingKey's func returns (more than 255 bytes makes the message
// permanent). Body: the payload. Properties: MessageId = the message ID
// (what a consumer deduplicates on), Type = the topic, Timestamp = the
// commit time (AMQP keeps whole seconds), DeliveryMode = persistent
// (WithTransient: transient), ContentType = WithContentType's. Headers:
// the message's own (the W3C traceparent among them), except names that
// steer the broker (x-*, CC, BCC) or begin with "theus-" in any case, and:
//
//	theus-topic:      the topic
//	theus-key:        the key
//	theus-key-seq:    KeySeq, decimal string
//	theus-version:    the commit version, decimal string
//	theus-created-at: the commit time, RFC 3339 with nanoseconds, UTC (absent when zero)
//
// Consumers rebuild the outbox.Message with Decode and drop duplicates with
// outbox.Dedup (RabbitMQ does not deduplicate): a relay restart, or a
// connection lost before the confirms arrived, publishes again messages
// the broker had already taken.
//
// # Confirms and order
//
// A message counts as delivered only when the broker confirmed it
// (basic.ack) and did not return it. Send publishes the batch on the one
// channel and returns when every published message is confirmed, refused
// or timed out; n is the number of leading messages confirmed. Messages of
// different (topic, key)s are pipelined, at most WithMaxInFlight
// unconfirmed; a message waits for the confirm of the previous one of its
// key, so a message the broker refuses is never overtaken by a later one
// of its key, and a queue holds each key's messages in KeySeq order
// (duplicates aside) as long as one queue takes all of a key's messages.
// Sends run one at a time.
//
// # Errors
//
//   - A message returned because no queue took it (it is published
//     mandatory, see WithMandatory; *ReturnedError, ErrReturned) and a
//     message the broker nacked (ErrNacked: a queue at its x-max-length
//     with x-overflow reject-publish, an internal error) are plain errors:
//     retried, counted, and the key is parked after the relay's
//     MaxAttempts. So is a channel the broker closed over the publishing
//     (an exchange that does not exist, access refused: *amqp091.Error);
//     the sink opens a new channel for the next Send.
//   - A connection that cannot be made or is lost, a confirm not received
//     within WithConfirmTimeout (the sink then drops the connection), a
//     broker that blocks publishers (connection.blocked, a memory or disk
//     alarm: the Send fails before publishing) and a closed Sink
//     (ErrClosed) are outbox.Unavailable: retried, never counted, never
//     parked.
//   - A routing key that cannot be sent is outbox.Permanent.
//   - The caller's context ending returns its error; the sink drops the
//     connection, as confirms may still be on the way.
//
// Errors never hold the URL's password.
package amqp
