// Package memory is an in-memory store for tests and for engines whose
// outbox need not survive the process. It keeps the last state, so an
// engine started again on the same store (in the same process) recovers it,
// and the undelivered messages in commit order.
package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/recyclable"
	"github.com/theus-go/theus/runtime/outbox"
)

// Store is an in-memory engine.Store and outbox.Store. It is safe for
// concurrent use by one engine and one relay (a second relay's Run fails
// with outbox.ErrRelayRunning, see ClaimRelay).
type Store struct {
	mu      sync.Mutex
	version uint64
	state   any
	// keySeq holds the last KeySeq per (topic, key) of the messages
	// dropped from the queue; the queue itself holds the later ones. Keeping
	// it up to date when messages are dropped, not when they are committed,
	// keeps the commit path short.
	keySeq map[outbox.TopicKey]uint64
	// chunks hold the messages from the first one not yet acked on, in
	// commit order, which is also ID order (see outbox.Message.ID). Fixed-
	// size chunks, rather than one slice, keep a long queue from being
	// copied as it grows. head is the index in chunks[0] of the first
	// message not dropped yet.
	chunks  [][]entry
	spare   [][]entry // emptied chunks, for reuse
	head    int
	pending int // messages in chunks not acked
	notify  chan struct{}
	// failNext makes the next Commit fail (fault injection for tests).
	failNext error
	// parkedKeys counts the parked messages per (topic, key): their keys
	// are held back.
	parkedKeys map[outbox.TopicKey]int
	inc        uint64
	// relay is set while a relay runs on the store (see ClaimRelay).
	relay bool
}

// New returns an empty store. Its incarnation is the time of the call in
// Unix milliseconds: the message IDs of a later store, such as one made by
// the same service after a restart, differ from this one's.
func New() *Store {
	return &Store{keySeq: make(map[outbox.TopicKey]uint64), inc: uint64(time.Now().UnixMilli())}
}

// Incarnation implements engine.Incarnated.
func (s *Store) Incarnation() uint64 { return s.inc }

type entry struct {
	msg   outbox.Message
	acked bool
	// Parking (see parking.go).
	parked   bool
	attempts int
	lastErr  string
}

// Recover implements engine.Store. The memory store keeps state values as
// they are, so it has no use for the codec.
func (s *Store) Recover(context.Context, engine.StateCodec) (*engine.Recovered, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == nil {
		return nil, nil
	}
	seqs := maps.Clone(s.keySeq)
	s.each(func(e *entry) bool {
		seqs[outbox.TopicKey{Topic: e.msg.Topic, Key: e.msg.Key}] = e.msg.KeySeq
		return true
	})
	return &engine.Recovered{Version: s.version, State: s.state, KeySeqs: seqs}, nil
}

var (
	_ engine.InMemory   = (*Store)(nil)
	_ engine.Incarnated = (*Store)(nil)
)

// ForgetsReplacedStates tells the engine that the store keeps no
// Record.State past the Commit after the one that handed it over (it
// keeps the latest, for Recover), so that the engine may reuse the memory
// of replaced snapshots. Only the engine can call it.
func (s *Store) ForgetsReplacedStates(recyclable.Token) any { return s }

// CommitsInMemory implements engine.InMemory: Commit never blocks on I/O.
func (*Store) CommitsInMemory() {}

// Commit implements engine.Store.
func (s *Store) Commit(_ context.Context, recs []*engine.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failNext; err != nil {
		s.failNext = nil
		return err
	}
	added := false
	for i, r := range recs {
		if r.Version != s.version+1+uint64(i) {
			return fmt.Errorf("memory: commit of version %d after version %d: versions must be consecutive", r.Version, s.version+uint64(i))
		}
	}
	for _, r := range recs {
		s.version, s.state = r.Version, r.State
		for i := range r.Messages {
			s.push(&r.Messages[i])
			s.pending++
			added = true
		}
	}
	if added {
		s.wake()
	}
	return nil
}

// FailNextCommit makes the next Commit return err without persisting
// anything: a store failure, for tests.
func (s *Store) FailNextCommit(err error) {
	s.mu.Lock()
	s.failNext = err
	s.mu.Unlock()
}

// Undelivered implements outbox.Store.
func (s *Store) Undelivered(_ context.Context, limit int) ([]outbox.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]outbox.Message, 0, min(limit, s.pending))
	s.each(func(e *entry) bool {
		if len(out) == limit {
			return false
		}
		if !e.acked && !s.heldBack(e) {
			out = append(out, e.msg)
		}
		return true
	})
	return out, nil
}

// Ack implements outbox.Store.
func (s *Store) Ack(_ context.Context, ids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ack(ids)
	return nil
}

// ack marks ids delivered. s.mu is held.
func (s *Store) ack(ids []string) {
	// Relays ack what Undelivered returned, in commit order, so each ID is
	// looked for first just after the previous one: an in-order batch
	// costs one comparison per message instead of a binary search.
	ci, i := 0, s.head
	for _, id := range ids {
		if ci >= len(s.chunks) || i >= len(s.chunks[ci]) || s.chunks[ci][i].msg.ID != id {
			var ok bool
			if ci, i, ok = s.locate(id); !ok {
				ci, i = 0, s.head
				continue
			}
		}
		if e := &s.chunks[ci][i]; !e.acked && !e.parked {
			e.acked = true
			s.pending--
		}
		if i++; i == len(s.chunks[ci]) {
			ci, i = ci+1, 0
		}
	}
	// Drop the acked messages at the head of the queue.
	for len(s.chunks) > 0 {
		c := s.chunks[0]
		for s.head < len(c) && c[s.head].acked {
			m := &c[s.head].msg
			s.keySeq[outbox.TopicKey{Topic: m.Topic, Key: m.Key}] = m.KeySeq
			c[s.head] = entry{}
			s.head++
		}
		if s.head < chunkSize {
			break
		}
		if len(s.spare) < maxSpareChunks {
			s.spare = append(s.spare, c[:0]) // its entries were zeroed above
		}
		// Shift rather than reslice, so that appends reuse the slice.
		n := copy(s.chunks, s.chunks[1:])
		s.chunks[n] = nil
		s.chunks = s.chunks[:n]
		s.head = 0
	}
}

const chunkSize = 1024

// maxSpareChunks is how many emptied chunks the store keeps for reuse: a
// queue that a relay keeps under maxSpareChunks*chunkSize messages then
// allocates nothing for them in steady state, and an idle store holds at
// most this many empty chunks (about 150 KB each).
const maxSpareChunks = 4

// each calls f for every entry in the queue, in order, until f returns
// false.
func (s *Store) each(f func(*entry) bool) {
	for ci, c := range s.chunks {
		start := 0
		if ci == 0 {
			start = s.head
		}
		for i := start; i < len(c); i++ {
			if !f(&c[i]) {
				return
			}
		}
	}
}

// push appends an entry for m to the queue, copying m once, straight into
// its chunk.
func (s *Store) push(m *outbox.Message) {
	if n := len(s.chunks); n == 0 || len(s.chunks[n-1]) == chunkSize {
		var c []entry
		if n := len(s.spare); n > 0 {
			c, s.spare[n-1] = s.spare[n-1], nil
			s.spare = s.spare[:n-1]
		} else {
			c = make([]entry, 0, chunkSize)
		}
		s.chunks = append(s.chunks, c)
	}
	last := &s.chunks[len(s.chunks)-1]
	*last = (*last)[:len(*last)+1]
	(*last)[len(*last)-1].msg = *m
}

// find returns the entry of the message with this ID, nil if there is none.
func (s *Store) find(id string) *entry {
	ci, i, ok := s.locate(id)
	if !ok {
		return nil
	}
	return &s.chunks[ci][i]
}

// locate returns where the message with this ID is in s.chunks, if it is.
func (s *Store) locate(id string) (ci, i int, ok bool) {
	// The last chunk whose first ID is <= id holds it, if any does.
	ci = sort.Search(len(s.chunks), func(i int) bool { return s.chunks[i][0].msg.ID > id }) - 1
	if ci < 0 {
		return 0, 0, false
	}
	i, found := slices.BinarySearchFunc(s.chunks[ci], id, func(e entry, id string) int { return strings.Compare(e.msg.ID, id) })
	if !found || (ci == 0 && i < s.head) {
		return 0, 0, false
	}
	return ci, i, true
}

// Notify implements outbox.Store.
func (s *Store) Notify() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.notify == nil {
		s.notify = make(chan struct{})
	}
	return s.notify
}

// Len returns the number of messages not yet acked.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}
