package outbox

import "sync"

// Dedup is the consumer side of at-least-once delivery: it remembers the
// highest KeySeq seen per (topic, key), drops messages at or below it and
// reports gaps. It is safe for concurrent use. This one lives in memory; a
// consumer that restarts must persist what it has seen together with its
// own effects.
type Dedup struct {
	mu   sync.Mutex
	seen map[TopicKey]uint64
}

// NewDedup returns an empty Dedup.
func NewDedup() *Dedup { return &Dedup{seen: make(map[TopicKey]uint64)} }

// Observe records m. fresh is false for a duplicate (its KeySeq was seen).
// gap is the number of KeySeqs skipped before m (0 when m follows the last
// one seen): messages that were lost or are arriving out of order.
func (d *Dedup) Observe(m Message) (fresh bool, gap uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	tk := TopicKey{Topic: m.Topic, Key: m.Key}
	last := d.seen[tk]
	if m.KeySeq <= last {
		return false, 0
	}
	d.seen[tk] = m.KeySeq
	return true, m.KeySeq - last - 1
}

// Last returns the highest KeySeq seen for (topic, key).
func (d *Dedup) Last(topic, key string) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen[TopicKey{Topic: topic, Key: key}]
}
