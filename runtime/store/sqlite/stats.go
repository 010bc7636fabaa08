package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
)

var _ outbox.StatsReader = (*Store)(nil)

// Stats implements outbox.StatsReader, after writing the acks made in
// memory, in one read on the read connections:
// the undelivered messages are the pending ones after the cursor (the
// oldest is the first by ID: IDs sort in commit order) and the held and
// ready ones, which partial indexes list, as they do the parked ones.
func (s *Store) Stats(ctx context.Context) (outbox.StoreStats, error) {
	var st outbox.StoreStats
	// The acks in memory first, so that the counts hold them.
	if err := s.flushAcks(ctx); err != nil {
		return st, fmt.Errorf("sqlite: stats: %w", err)
	}
	var oldest, oldestBelow sql.NullInt64
	var after, below int
	err := s.r.QueryRowContext(ctx, `WITH c AS (SELECT value FROM theus_meta WHERE name = 'cursor') SELECT
		(SELECT count(*) FROM theus_outbox, c WHERE id > c.value AND state = 'pending'),
		(SELECT created_at FROM theus_outbox, c WHERE id > c.value AND state = 'pending' ORDER BY id LIMIT 1),
		(SELECT count(*) FROM theus_outbox WHERE state = 'held') + (SELECT count(*) FROM theus_outbox WHERE state = 'ready'),
		(SELECT min(created_at) FROM (
			SELECT created_at FROM theus_outbox WHERE state = 'held'
			UNION ALL SELECT created_at FROM theus_outbox WHERE state = 'ready')),
		(SELECT count(*) FROM theus_outbox WHERE state = 'parked'),
		(SELECT count(*) FROM (SELECT 1 FROM theus_outbox WHERE state = 'parked' GROUP BY topic, key))`).
		Scan(&after, &oldest, &below, &oldestBelow, &st.Parked, &st.ParkedKeys)
	if err != nil {
		return st, fmt.Errorf("sqlite: stats: %w", err)
	}
	st.Pending = after + below
	if oldestBelow.Valid && (!oldest.Valid || oldestBelow.Int64 < oldest.Int64) {
		oldest = oldestBelow
	}
	if oldest.Valid {
		st.OldestPending = time.Unix(0, oldest.Int64)
	}
	return st, nil
}
