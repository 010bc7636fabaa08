// Package memory is an in-memory store for tests and for engines whose
// outbox need not survive the process. It keeps the last state, so an
// engine started again on the same store (in the same process) recovers it,
// and the undelivered messages in commit order.
package memory

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// Store is an in-memory engine.Store and outbox.Store. It is safe for
// concurrent use by one engine and any number of relays.
type Store struct {
	mu      sync.Mutex
	version uint64
	state   any
	keySeq  map[outbox.TopicKey]uint64
	// queue holds the messages from the first one not yet acked on, in
	// commit order, which is also ID order (see outbox.Message.ID); head is
	// the index of the first one not dropped yet.
	queue   []entry
	head    int
	pending int // messages in queue not acked
	notify  chan struct{}
	// failNext makes the next Commit fail (fault injection for tests).
	failNext error
}

// New returns an empty store.
func New() *Store {
	return &Store{keySeq: make(map[outbox.TopicKey]uint64)}
}

type entry struct {
	msg   outbox.Message
	acked bool
}

// Recover implements engine.Store.
func (s *Store) Recover(context.Context) (*engine.Recovered, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == nil {
		return nil, nil
	}
	return &engine.Recovered{Version: s.version, State: s.state, KeySeqs: maps.Clone(s.keySeq)}, nil
}

// Commit implements engine.Store.
func (s *Store) Commit(_ context.Context, recs []*engine.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failNext; err != nil {
		s.failNext = nil
		return err
	}
	added := false
	for _, r := range recs {
		if r.Version != s.version+1 {
			return errors.New("memory: commit out of order")
		}
	}
	for _, r := range recs {
		s.version, s.state = r.Version, r.State
		for _, m := range r.Messages {
			s.keySeq[outbox.TopicKey{Topic: m.Topic, Key: m.Key}] = m.KeySeq
			s.queue = append(s.queue, entry{msg: m})
			s.pending++
			added = true
		}
	}
	if added && s.notify != nil {
		close(s.notify)
		s.notify = nil
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
	for _, e := range s.queue[s.head:] {
		if len(out) == limit {
			break
		}
		if !e.acked {
			out = append(out, e.msg)
		}
	}
	return out, nil
}

// Ack implements outbox.Store.
func (s *Store) Ack(_ context.Context, ids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.queue[s.head:]
	for _, id := range ids {
		i, found := slices.BinarySearchFunc(live, id, func(e entry, id string) int { return strings.Compare(e.msg.ID, id) })
		if found && !live[i].acked {
			live[i].acked = true
			s.pending--
		}
	}
	// Drop the acked messages at the head of the queue.
	for s.head < len(s.queue) && s.queue[s.head].acked {
		s.queue[s.head] = entry{}
		s.head++
	}
	if s.head > 1024 && s.head*2 > len(s.queue) {
		s.queue = slices.Clone(s.queue[s.head:])
		s.head = 0
	}
	return nil
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
