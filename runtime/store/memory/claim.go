package memory

import (
	"context"
	"sync"

	"github.com/theus-go/theus/runtime/outbox"
)

var _ outbox.RelayClaimer = (*Store)(nil)

// ClaimRelay implements outbox.RelayClaimer: every relay reads the whole
// queue, so two at once would split the messages between their sinks.
func (s *Store) ClaimRelay(context.Context) (release func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.relay {
		return nil, outbox.ErrRelayRunning
	}
	s.relay = true
	return sync.OnceFunc(func() {
		s.mu.Lock()
		s.relay = false
		s.mu.Unlock()
	}), nil
}
