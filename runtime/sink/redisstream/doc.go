// Package redisstream is an outbox.Sink that appends messages to Redis
// streams with XADD (github.com/redis/go-redis/v9).
//
//	rdb := redis.NewClient(&redis.Options{Addr: "redis:6379"})
//	defer rdb.Close() // after the relay stopped
//	s, err := redisstream.New(rdb,
//		redisstream.WithStream("events"),   // default: one stream per topic, named after it
//		redisstream.WithMaxLen(1_000_000))  // XADD MAXLEN ~ 1000000; default: no cap
//	relay := outbox.NewRelay(st, s)
//
// The client is the caller's (a *redis.Client, *redis.ClusterClient or
// *redis.Ring): it holds the address, TLS, pool and timeouts, and it
// reconnects by itself. Streams are created by the first XADD.
//
// # The entry
//
// Stream: the topic, or WithStream's one name, or what WithStreamFunc's
// func returns (an empty name makes the message permanent). Entry ID:
// Redis's ("*"): it orders the entries of a stream. Fields:
//
//	id:         the message ID (what a consumer deduplicates on)
//	topic:      the topic
//	key:        the key
//	key_seq:    KeySeq, decimal
//	version:    the commit version, decimal
//	created_at: the commit time, RFC 3339 with nanoseconds, UTC (absent when zero)
//	payload:    the payload
//	h:NAME:     each of the message's headers (h:traceparent)
//
// A message counts as delivered when Redis answered its XADD with an
// entry ID; how durable that is depends on the server's persistence
// (appendonly, appendfsync) and replication, which the sink does not see.
//
// # Consumers
//
// Redis does not deduplicate: a relay restart appends again messages that
// Redis had taken. A consumer group reads with XREADGROUP, rebuilds each
// outbox.Message with Decode, drops duplicates with outbox.Dedup (or
// package outbox/dedupsql, in the transaction of its own effects) and
// XACKs the entry after handling it; see the package example. With
// WithMaxLen Redis trims old entries whether a group read them or not:
// size the cap for the longest consumer outage.
//
// # Rounds and order
//
// Send pipelines the batch in rounds: a round holds, in batch order, each
// message whose (topic, key) has no message in the round yet and none
// failed before it, so a message Redis refuses is never overtaken by a
// later one of its key, and a stream holds each key's messages in KeySeq
// order (duplicates aside). A batch over k keys takes about len(batch)/k
// round trips; a topic whose messages all share one key goes one XADD per
// round trip. n is the number of leading messages appended; Send stops at
// the first round after which that number cannot grow.
//
// # Errors
//
// outbox.Unavailable (retried, never counted): network errors, a closed
// client, pool timeouts, and the server states that pass (LOADING,
// READONLY, MASTERDOWN, CLUSTERDOWN, TRYAGAIN, max clients, NOREPLICAS,
// OOM under maxmemory). Other errors, such as WRONGTYPE for a stream name
// that holds another type, are plain: retried, counted, parked after the
// relay's MaxAttempts. The caller's context ending returns its error.
package redisstream
