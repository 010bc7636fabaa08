// Package watermill is an outbox.Sink that publishes through any Watermill
// message.Publisher (github.com/ThreeDotsLabs/watermill): AMQP, Kafka,
// Google Cloud Pub/Sub, SNS/SQS, Redis Streams, NATS, SQL, and whatever
// else has a Watermill Pub/Sub.
//
// It is a Go module of its own (github.com/theus-go/theus/runtime/sink/watermill),
// so that the main module does not depend on Watermill:
//
//	go get github.com/theus-go/theus/runtime/sink/watermill
//
// With watermill-amqp (github.com/ThreeDotsLabs/watermill-amqp/v3), say:
//
//	cfg := amqp.NewDurablePubSubConfig("amqp://user:password@rabbit:5672/", nil)
//	cfg.Publish.ConfirmDelivery = true // Publish returns once RabbitMQ confirmed
//	pub, err := amqp.NewPublisher(cfg, watermill.NewStdLogger(false, false))
//	if err != nil { ... }
//	defer pub.Close() // after the relay stopped
//	s, err := wmsink.New(pub,
//		wmsink.WithTopicFunc(func(m outbox.Message) string { return "events." + m.Topic }))
//	relay := outbox.NewRelay(st, s)
//
// watermill-amqp's default marshaler copies the metadata below into AMQP
// headers and the message UUID (the outbox message ID) into the
// "_watermill_message_uuid" header. Its Publish stops at the first
// message that fails, so WithPublishRuns suits it. It derives the
// exchange and routing key from the Watermill topic alone
// (Config.Exchange.GenerateName, Config.Publish.GenerateRoutingKey): to
// route by key, put the key in the topic with WithTopicFunc. For the
// native RabbitMQ sink, with the key as routing key, per-key pipelining
// and its own reconnects, see package runtime/sink/amqp.
//
// # The message
//
// UUID: the message ID. Payload: the payload. Context: Send's. Metadata:
// the message's headers (the W3C traceparent among them), except names
// beginning with "theus-" in any case, and:
//
//	theus-id:         the message ID
//	theus-topic:      the outbox topic
//	theus-key:        the key (use it as the partition or ordering key,
//	                  e.g. watermill-kafka's GeneratePartitionKey)
//	theus-key-seq:    KeySeq, decimal
//	theus-version:    the commit version, decimal
//	theus-created-at: the commit time, RFC 3339 with nanoseconds, UTC (absent when zero)
//
// The Watermill topic is the outbox topic, WithTopic's one name, or what
// WithTopicFunc's func returns (an empty name makes the message
// permanent). Consumers — a Watermill Subscriber, a router handler —
// rebuild the outbox.Message with Decode and drop duplicates with
// outbox.Dedup.
//
// # What "delivered" means
//
// A message counts as delivered when the Publish call that carried it
// returned nil. Whether the broker has it then is the publisher's promise:
// configure it to wait for the broker (watermill-amqp:
// Publish.ConfirmDelivery; watermill-kafka: its sync producer; gochannel:
// BlockPublishUntilSubscriberAck). An asynchronous publisher that returns
// before the broker took the message can lose it without the relay
// knowing.
//
// # Order
//
// Send makes one Publish call per message (WithPublishRuns: per run of
// consecutive messages with one Watermill topic), each returning before
// the next, and stops at the first that fails; n is the number of leading
// messages published. So a message is never published after a failed one
// of its key, and a publisher that keeps the order of its calls on a
// topic (or partition, or ordering key) keeps each key's KeySeq order.
// Throughput is one publisher round trip per message (per run with
// WithPublishRuns): raise the relay's batch size and use runs with a
// publisher that stops at the first failure in a call.
//
// # Errors
//
// Publish's error is plain (retried, counted, parked after the relay's
// MaxAttempts), except network errors (net.Error, EOF, connection refused
// or reset, broken pipe) and deadline errors, which are
// outbox.Unavailable (retried, never counted). WithErrorClass classes the
// rest for a given publisher (return outbox.Unavailable or
// outbox.Permanent). A panicking publisher is an error of its message.
// The caller's context ending returns its error.
package watermill
