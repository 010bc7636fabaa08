package postgres

import (
	"context"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
)

var _ outbox.Inspector = (*Store)(nil)

// TopicStats implements outbox.Inspector, from the partial indexes of the
// pending and parked messages.
func (s *Store) TopicStats(ctx context.Context) ([]outbox.TopicStats, error) {
	rows, err := s.pool.Query(ctx, `SELECT topic,
			count(*) FILTER (WHERE state = 'pending'),
			coalesce(min(created_at) FILTER (WHERE state = 'pending'), 0),
			count(*) FILTER (WHERE state = 'parked'),
			count(DISTINCT key) FILTER (WHERE state = 'parked')
		FROM `+s.schema+`.theus_outbox WHERE state IN ('pending', 'parked') GROUP BY topic ORDER BY topic`)
	if err != nil {
		return nil, s.errorf("topic stats", err)
	}
	defer rows.Close()
	var out []outbox.TopicStats
	for rows.Next() {
		var t outbox.TopicStats
		var pending, parked, keys, oldest int64
		if err := rows.Scan(&t.Topic, &pending, &oldest, &parked, &keys); err != nil {
			return nil, s.errorf("topic stats", err)
		}
		t.Pending, t.Parked, t.ParkedKeys = int(pending), int(parked), int(keys)
		if oldest != 0 {
			t.OldestPending = time.Unix(0, oldest)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("topic stats", err)
	}
	return out, nil
}

// Messages implements outbox.Inspector.
func (s *Store) Messages(ctx context.Context, ids []string) ([]outbox.MessageStatus, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+messageColumns+`, state, attempts, coalesce(last_error, ''), coalesce(delivered_at, 0)
		FROM `+s.schema+`.theus_outbox WHERE id = ANY($1) ORDER BY version, idx`, ids)
	if err != nil {
		return nil, s.errorf("messages", err)
	}
	defer rows.Close()
	var out []outbox.MessageStatus
	for rows.Next() {
		var st outbox.MessageStatus
		var attempts int32
		var delivered int64
		m, err := scanMessage(rows, &st.State, &attempts, &st.LastError, &delivered)
		if err != nil {
			return nil, s.errorf("messages", err)
		}
		st.Message, st.Attempts = m, int(attempts)
		if delivered != 0 {
			st.DeliveredAt = time.Unix(0, delivered)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("messages", err)
	}
	return out, nil
}
