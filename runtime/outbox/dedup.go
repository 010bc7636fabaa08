package outbox

import "sync"

// Dedup is the consumer side of at-least-once delivery: it remembers the
// highest KeySeq seen per (topic, key), drops messages at or below it and
// reports gaps. It is safe for concurrent use. This one lives in memory; a
// consumer that restarts must persist what it has seen together with its
// own effects (see package dedupsql).
//
// KeySeqs count within one history of the store, which its incarnation
// names (see Message.Incarnation). A store restored from a backup starts a
// new incarnation and hands out again KeySeqs that consumers may have
// seen, for changes that the restore took back; a message of a newer
// incarnation than the last one seen for its (topic, key) is therefore
// fresh whatever its KeySeq, and one of an older incarnation is a
// duplicate (the relay delivers a key's messages of the old incarnation
// before those of the new one).
type Dedup struct {
	mu   sync.Mutex
	seen map[TopicKey]Mark
}

// Mark is what a Dedup remembers of a (topic, key): the incarnation and
// KeySeq of the last message it took as fresh.
type Mark struct {
	Incarnation uint64
	KeySeq      uint64
}

// Next reports whether m comes after the mark: fresh is false for a
// duplicate, and gap is the number of KeySeqs skipped before m (0 when m
// follows the mark, or starts a newer incarnation at or below it). Dedup
// and dedupsql decide with it.
func (k Mark) Next(m Message) (fresh bool, gap uint64) {
	inc := m.Incarnation()
	switch {
	case m.KeySeq == 0 || inc < k.Incarnation:
		return false, 0
	case inc == k.Incarnation && m.KeySeq <= k.KeySeq:
		return false, 0
	case m.KeySeq > k.KeySeq:
		return true, m.KeySeq - k.KeySeq - 1
	}
	return true, 0 // a newer incarnation took back what the mark saw
}

// NewDedup returns an empty Dedup.
func NewDedup() *Dedup { return &Dedup{seen: make(map[TopicKey]Mark)} }

// Observe records m. fresh is false for a duplicate (its KeySeq was seen,
// or it belongs to an older incarnation than one seen). gap is the number
// of KeySeqs skipped before m (0 when m follows the last one seen):
// messages that were lost or are arriving out of order.
func (d *Dedup) Observe(m Message) (fresh bool, gap uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	tk := TopicKey{Topic: m.Topic, Key: m.Key}
	last := d.seen[tk]
	if fresh, gap = last.Next(m); fresh {
		d.seen[tk] = Mark{Incarnation: m.Incarnation(), KeySeq: m.KeySeq}
	}
	return fresh, gap
}

// Last returns the highest KeySeq seen for (topic, key), in the last
// incarnation seen.
func (d *Dedup) Last(topic, key string) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen[TopicKey{Topic: topic, Key: key}].KeySeq
}
