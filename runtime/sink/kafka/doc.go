// Package kafka is an outbox.Sink that produces messages to Kafka through
// a franz-go client (github.com/twmb/franz-go/pkg/kgo).
//
//	cl, _ := kgo.NewClient(kgo.SeedBrokers("localhost:9092"), // idempotent by default
//		kgo.ProducerLinger(0))                                  // see Throughput
//	defer cl.Close()
//	s, err := kafka.New(cl,
//		kafka.WithTopic("events"),                  // default: the message's topic
//		kafka.WithProduceTimeout(30*time.Second))   // per Send
//	relay := outbox.NewRelay(st, s)
//
// The client is the caller's: configure it (brokers, TLS, SASL,
// compression, acks) and close it after the relay stopped. Keep the
// idempotent producer, franz-go's default (do not set
// kgo.DisableIdempotentWrite, and keep kgo.RequiredAcks at AllISRAcks,
// which idempotence needs): it keeps the records of a partition in order
// across retries, and so the records of a key in KeySeq order. It
// dedups only within one producer session; consumers use outbox.Dedup
// for the duplicates a relay restart produces. Topics are not created.
//
// # The record
//
// Topic: the message's topic, or WithTopic's, or what WithTopicFunc's func
// returns (a name Kafka refuses makes the message permanent). Key: the
// message key (the empty key too, as an empty non-nil key, so a topic
// without keys still lands in one partition in order). Value: the payload.
// Headers: the message's own, except names beginning with "theus-" in
// any case, and:
//
//	theus-id:         the message ID
//	theus-topic:      the outbox topic
//	theus-key-seq:    KeySeq, decimal
//	theus-version:    the commit version, decimal
//	theus-created-at: the commit time, RFC 3339 with nanoseconds, UTC (absent when zero)
//
// Consumers rebuild the outbox.Message with Decode and drop duplicates with
// outbox.Dedup.
//
// # Acks and order
//
// Send produces the whole batch at once and waits for every record's
// result, at most WithProduceTimeout (records still in flight then count
// as failed with an Unavailable error; they may still land, as
// duplicates); n is the number of leading records acknowledged. The client's
// partitioner puts the records of one key in one partition (do not
// configure one that ignores keys), where the idempotent producer keeps
// them in order. Records are built and checked (topic name, size against
// the client's ProducerBatchMaxBytes) before any is produced, and none
// after the first that fails the check is produced, so such a message is
// parked before a later one of its key reaches Kafka.
//
// # Throughput
//
// Give the relay a client with kgo.ProducerLinger(0). Send waits for its
// records before the relay produces more, so no record arrives while a
// partition lingers for more: franz-go's default linger (10ms) only delays
// every Send, to about 100 messages per second at relay batch size 1, and
// three to five times below the no-linger rate at batch 500
// (docs/BENCHMARKS.md). Batching comes from the relay's batch size
// instead (WithBatchSize).
//
// # Errors
//
// outbox.Unavailable (retried, never counted): the cluster unreachable
// (network errors, closed connections, a closed client), records timed out
// or out of retries (kgo.ErrRecordTimeout, kgo.ErrRecordRetries, the
// WithProduceTimeout deadline), the producer buffer full, and Kafka's
// retriable errors (not leader, not enough replicas, request timed out).
// outbox.Permanent (parked at once): record too large (checked locally,
// or MESSAGE_TOO_LARGE / RECORD_LIST_TOO_LARGE from the broker), an
// invalid topic name (locally or INVALID_TOPIC_EXCEPTION), INVALID_RECORD,
// CORRUPT_MESSAGE. Everything else, such as an unknown topic or an
// authorization failure, is plain: retried, counted, parked after the
// relay's MaxAttempts. The caller's context ending returns its error.
//
// A record the broker refuses with MESSAGE_TOO_LARGE (a topic whose
// max.message.bytes is below the client's limit) may be followed in Kafka
// by later records of its key that were produced in the same Send; to
// rule that out, keep ProducerBatchMaxBytes at or below the topics'
// max.message.bytes, so the local check catches it first.
package kafka
