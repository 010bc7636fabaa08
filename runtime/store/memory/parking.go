package memory

import (
	"context"
	"fmt"

	"github.com/theus-go/theus/runtime/outbox"
)

var _ outbox.Parking = (*Store)(nil)

// heldBack reports whether e is parked or waits behind a parked message
// of its key. s.mu is held.
func (s *Store) heldBack(e *entry) bool {
	if len(s.parkedKeys) == 0 {
		return false
	}
	return e.parked || s.parkedKeys[outbox.TopicKey{Topic: e.msg.Topic, Key: e.msg.Key}] > 0
}

// Failed implements outbox.Parking. Attempts live in memory, like the
// messages.
func (s *Store) Failed(_ context.Context, id, cause string, park bool, maxAttempts int) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.find(id)
	if e == nil || e.acked || e.parked {
		return false, nil
	}
	e.attempts++
	e.lastErr = cause
	if park || (maxAttempts > 0 && e.attempts >= maxAttempts) {
		e.parked = true
		if s.parkedKeys == nil {
			s.parkedKeys = make(map[outbox.TopicKey]int)
		}
		s.parkedKeys[outbox.TopicKey{Topic: e.msg.Topic, Key: e.msg.Key}]++
	}
	return e.parked, nil
}

// Parked implements outbox.Parking.
func (s *Store) Parked(context.Context) ([]outbox.ParkedMessage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []outbox.ParkedMessage
	if len(s.parkedKeys) == 0 {
		return nil, nil
	}
	s.each(func(e *entry) bool {
		if e.parked {
			out = append(out, outbox.ParkedMessage{Message: e.msg, Attempts: e.attempts, LastError: e.lastErr})
		}
		return true
	})
	return out, nil
}

// Replay implements outbox.Parking.
func (s *Store) Replay(_ context.Context, topic, key string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tk := outbox.TopicKey{Topic: topic, Key: key}
	if s.parkedKeys[tk] == 0 {
		return 0, nil
	}
	n := 0
	s.each(func(e *entry) bool {
		if e.parked && e.msg.Topic == topic && e.msg.Key == key {
			e.parked, e.attempts = false, 0
			n++
		}
		return true
	})
	delete(s.parkedKeys, tk)
	s.wake()
	return n, nil
}

// Skip implements outbox.Parking: the message is acked without being sent.
func (s *Store) Skip(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.find(id)
	if e == nil || !e.parked {
		return fmt.Errorf("memory: skip %s: %w", id, outbox.ErrNotParked)
	}
	tk := outbox.TopicKey{Topic: e.msg.Topic, Key: e.msg.Key}
	e.parked = false
	if s.parkedKeys[tk]--; s.parkedKeys[tk] <= 0 {
		delete(s.parkedKeys, tk)
	}
	s.ack([]string{id})
	s.wake()
	return nil
}

// wake closes the notification channel. s.mu is held.
func (s *Store) wake() {
	if s.notify != nil {
		close(s.notify)
		s.notify = nil
	}
}
