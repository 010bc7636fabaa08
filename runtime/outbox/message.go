package outbox

import (
	"strconv"
	"time"
)

// Message is one outbox message: an event that a process emitted and that
// was committed together with the process's state changes.
//
// Every field is assigned by the engine at commit and never changes
// afterwards, however often the message is delivered.
type Message struct {
	// ID is unique within a store and stable across restarts and
	// re-deliveries. Its format is MessageID(incarnation, Version, index):
	// the store's incarnation, the commit version and the message's index
	// within its commit, as 16, 16 and 4 lower-case hex digits joined by
	// dashes, e.g. "0000019ae1c3f2a0-000000000000002a-0000". A store
	// created before incarnations existed has incarnation 0, and its IDs
	// leave it out: "000000000000002a-0000". Within an incarnation IDs
	// sort in commit order. Sinks use the ID for broker-side dedup
	// (Nats-Msg-Id, Idempotency-Key, the sqltable primary key), and
	// Dedup reads the incarnation from it.
	ID string
	// Topic is the contract's topic name, e.g. "user.updated".
	Topic string
	// Key orders and partitions messages: the payload's key field, formatted
	// in decimal for integers; "" for topics without a key.
	Key string
	// KeySeq counts the messages of one (Topic, Key): 1, 2, 3... in commit
	// order, without gaps. Consumers drop a message whose KeySeq they have
	// seen and detect a gap when one is skipped (see Dedup).
	KeySeq uint64
	// Version is the state version committed together with this message; it
	// equals the Receipt.Version of the call that emitted it.
	Version uint64
	// Payload is the encoded payload (JSON unless the engine has a codec).
	// It must not be modified.
	Payload []byte
	// Headers carries metadata such as the W3C traceparent (see
	// engine.WithHeaders); nil when empty. The messages of one call may
	// share the map: it must not be modified.
	Headers map[string]string
	// CreatedAt is the commit time. The engine's default clock has about a
	// millisecond's resolution and never goes backwards from one version to
	// the next (see engine.WithClock).
	CreatedAt time.Time
}

// TopicKey identifies the sequence that KeySeq counts.
type TopicKey struct {
	Topic string
	Key   string
}

// Incarnation returns the incarnation of the store history the message was
// committed in, read from its ID (0 for an ID without one). A store starts
// a new incarnation when it is created and when it is restored from a
// backup, so that the versions and KeySeqs it hands out again after a
// restore never look like ones a consumer saw before (see Dedup).
func (m Message) Incarnation() uint64 {
	inc, _, _, _ := ParseMessageID(m.ID)
	return inc
}

// MessageID formats the ID of the index-th message of commit version in
// the store incarnation inc. See Message.ID.
func MessageID(inc, version uint64, index int) string {
	var b [MaxIDLen]byte
	return string(AppendMessageID(b[:0], inc, version, index))
}

// Lengths of message IDs (see Message.ID): an ID with an incarnation is
// MaxIDLen bytes long, one of incarnation 0 is LegacyIDLen.
const (
	MaxIDLen    = 38
	LegacyIDLen = 21
)

// AppendMessageID appends MessageID(inc, version, index) to dst.
func AppendMessageID(dst []byte, inc, version uint64, index int) []byte {
	var b [MaxIDLen]byte
	n := 0
	if inc != 0 {
		hex16(b[:16], inc)
		b[16] = '-'
		n = 17
	}
	hex16(b[n:n+16], version)
	b[n+16] = '-'
	hex4(b[n+17:n+21], uint16(index))
	return append(dst, b[:n+21]...)
}

// ParseMessageID is the inverse of MessageID.
func ParseMessageID(id string) (inc, version uint64, index int, ok bool) {
	switch len(id) {
	case LegacyIDLen:
	case MaxIDLen:
		if id[16] != '-' {
			return 0, 0, 0, false
		}
		var err error
		if inc, err = strconv.ParseUint(id[:16], 16, 64); err != nil || inc == 0 {
			return 0, 0, 0, false
		}
		id = id[17:]
	default:
		return 0, 0, 0, false
	}
	if id[16] != '-' {
		return 0, 0, 0, false
	}
	v, err := strconv.ParseUint(id[:16], 16, 64)
	if err != nil {
		return 0, 0, 0, false
	}
	i, err := strconv.ParseUint(id[17:], 16, 16)
	if err != nil {
		return 0, 0, 0, false
	}
	return inc, v, int(i), true
}

const hexDigits = "0123456789abcdef"

func hex16(dst []byte, v uint64) {
	_ = dst[15]
	for i := 14; i >= 0; i -= 2 {
		b := 2 * (v & 0xff)
		dst[i], dst[i+1] = hexPairs[b], hexPairs[b+1]
		v >>= 8
	}
}

// hexPairs holds the two hex digits of every byte value, in order.
const hexPairs = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" +
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f" +
	"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f" +
	"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f" +
	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f" +
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf" +
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf" +
	"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"

func hex4(dst []byte, v uint16) {
	for i := 3; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}
