package postgres

import (
	"context"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
)

var _ outbox.Inspector = (*Store)(nil)

// TopicStats implements outbox.Inspector, from the partial indexes of the
// pending and parked messages: those after their partition's cursor, and
// the parked ones.
func (s *Store) TopicStats(ctx context.Context) ([]outbox.TopicStats, error) {
	rows, err := s.pool.Query(ctx, `SELECT topic,
			count(*) FILTER (WHERE state = 'pending'),
			coalesce(min(created_at) FILTER (WHERE state = 'pending'), 0),
			count(*) FILTER (WHERE state = 'parked'),
			count(DISTINCT key) FILTER (WHERE state = 'parked')
		FROM (SELECT x.* FROM `+s.schema+`.theus_leases l CROSS JOIN LATERAL (
				SELECT topic, key, state, created_at FROM `+s.schema+`.theus_outbox m
				WHERE m.state = 'pending' AND m.part = l.part AND (m.version, m.idx) > (l.acked_version, l.acked_idx)) x
			UNION ALL SELECT topic, key, state, created_at FROM `+s.schema+`.theus_outbox WHERE state = 'parked') w
		GROUP BY topic ORDER BY topic`)
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

// Messages implements outbox.Inspector. A message acked through its
// partition's cursor (cursor.go) is delivered; its DeliveredAt is when the
// cursor was first seen past it: by a Prune's mark, or else the cursor's
// last move — at most a Prune interval after the ack.
func (s *Store) Messages(ctx context.Context, ids []string) ([]outbox.MessageStatus, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+messageColumns+`,
			CASE WHEN c.acked THEN 'delivered' ELSE state END, attempts, coalesce(last_error, ''),
			CASE WHEN c.acked THEN coalesce((SELECT min(k.at) FROM `+s.schema+`.theus_ack_marks k
				WHERE k.part = o.part AND (k.version, k.idx) >= (o.version, o.idx)), c.at) ELSE coalesce(delivered_at, 0) END
		FROM `+s.schema+`.theus_outbox o CROSS JOIN LATERAL (
			SELECT o.state = 'pending' AND coalesce((o.version, o.idx) <= (l.acked_version, l.acked_idx), false) AS acked, l.acked_at AS at
			FROM (SELECT 1) one LEFT JOIN `+s.schema+`.theus_leases l ON l.part = o.part) c
		WHERE id = ANY($1) ORDER BY version, idx`, ids)
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
