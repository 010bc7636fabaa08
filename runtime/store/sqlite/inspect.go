package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
)

var _ outbox.Inspector = (*Store)(nil)

// TopicStats implements outbox.Inspector, from the partial indexes as
// Stats does: the pending messages after the cursor, the held and ready
// ones, and the parked ones.
func (s *Store) TopicStats(ctx context.Context) ([]outbox.TopicStats, error) {
	if err := s.flushAcks(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: topic stats: %w", err)
	}
	byTopic := map[string]*outbox.TopicStats{}
	err := s.query(ctx, `WITH c AS (SELECT value FROM theus_meta WHERE name = 'cursor')
		SELECT topic, count(*), min(created_at), 0, 0 FROM theus_outbox, c WHERE id > c.value AND state = 'pending' GROUP BY topic
		UNION ALL SELECT topic, count(*), min(created_at), 0, 0 FROM theus_outbox WHERE state = 'held' GROUP BY topic
		UNION ALL SELECT topic, count(*), min(created_at), 0, 0 FROM theus_outbox WHERE state = 'ready' GROUP BY topic
		UNION ALL SELECT topic, 0, NULL, count(*), count(DISTINCT key) FROM theus_outbox WHERE state = 'parked' GROUP BY topic`,
		func(rows *sql.Rows) error {
			var topic string
			var pending, parked, keys int
			var oldest sql.NullInt64
			if err := rows.Scan(&topic, &pending, &oldest, &parked, &keys); err != nil {
				return err
			}
			t := byTopic[topic]
			if t == nil {
				t = &outbox.TopicStats{Topic: topic}
				byTopic[topic] = t
			}
			t.Pending += pending
			t.Parked += parked
			t.ParkedKeys += keys
			if oldest.Valid {
				if at := time.Unix(0, oldest.Int64); t.OldestPending.IsZero() || at.Before(t.OldestPending) {
					t.OldestPending = at
				}
			}
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: topic stats: %w", err)
	}
	out := make([]outbox.TopicStats, 0, len(byTopic))
	for _, t := range byTopic {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b outbox.TopicStats) int { return cmp.Compare(a.Topic, b.Topic) })
	return out, nil
}

// Messages implements outbox.Inspector, through the theus_messages view.
func (s *Store) Messages(ctx context.Context, ids []string) ([]outbox.MessageStatus, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if err := s.flushAcks(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: messages: %w", err)
	}
	var out []outbox.MessageStatus
	for chunk := range slices.Chunk(ids, 500) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		q := `SELECT ` + messageColumns + `, state, attempts, coalesce(last_error, ''), delivered_at
			FROM theus_messages WHERE id IN (?` + strings.Repeat(", ?", len(chunk)-1) + `)`
		err := s.query(ctx, q, func(rows *sql.Rows) error {
			var st outbox.MessageStatus
			var delivered sql.NullInt64
			m, err := scanMessage(rows, &st.State, &st.Attempts, &st.LastError, &delivered)
			if err != nil {
				return err
			}
			st.Message = m
			if delivered.Valid {
				st.DeliveredAt = time.Unix(0, delivered.Int64)
			}
			out = append(out, st)
			return nil
		}, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: messages: %w", err)
		}
	}
	slices.SortFunc(out, func(a, b outbox.MessageStatus) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// Head returns the last durable version of the store (0 when it holds
// none), for readers of the history such as runtime/console.
func (s *Store) Head(ctx context.Context) (uint64, error) {
	var v int64
	err := s.r.QueryRowContext(ctx, `SELECT max(coalesce((SELECT max(version) FROM theus_log), 0),
		coalesce((SELECT max(version) FROM theus_snapshot), 0))`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("sqlite: head: %w", err)
	}
	return uint64(v), nil
}
