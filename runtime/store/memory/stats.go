package memory

import (
	"context"

	"github.com/theus-go/theus/runtime/outbox"
)

var _ outbox.StatsReader = (*Store)(nil)

// Stats implements outbox.StatsReader. It walks the queue only up to the
// first pending message, past the parked ones at its head.
func (s *Store) Stats(context.Context) (outbox.StoreStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st outbox.StoreStats
	for _, n := range s.parkedKeys {
		st.Parked += n
	}
	st.ParkedKeys = len(s.parkedKeys)
	st.Pending = s.pending - st.Parked // s.pending counts parked messages too
	if st.Pending > 0 {
		s.each(func(e *entry) bool {
			if e.acked || e.parked {
				return true
			}
			st.OldestPending = e.msg.CreatedAt
			return false
		})
	}
	return st, nil
}
