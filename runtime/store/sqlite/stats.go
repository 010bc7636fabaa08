package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
)

var _ outbox.StatsReader = (*Store)(nil)

// Stats implements outbox.StatsReader in one read on the read connections:
// the counts come from theus_outbox, which holds only undelivered messages,
// and its partial index of parked ones; the oldest pending message is the
// first by ID (IDs sort in commit order).
func (s *Store) Stats(ctx context.Context) (outbox.StoreStats, error) {
	var st outbox.StoreStats
	var oldest sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM theus_outbox WHERE state = 'pending'),
		(SELECT created_at FROM theus_outbox WHERE state = 'pending' ORDER BY id LIMIT 1),
		(SELECT count(*) FROM theus_outbox WHERE state = 'parked'),
		(SELECT count(*) FROM (SELECT 1 FROM theus_outbox WHERE state = 'parked' GROUP BY topic, key))`).
		Scan(&st.Pending, &oldest, &st.Parked, &st.ParkedKeys)
	if err != nil {
		return st, fmt.Errorf("sqlite: stats: %w", err)
	}
	if oldest.Valid {
		st.OldestPending = time.Unix(0, oldest.Int64)
	}
	return st, nil
}
