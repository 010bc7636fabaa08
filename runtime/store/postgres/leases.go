package postgres

import (
	"context"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
)

var _ outbox.LeaseReader = (*Store)(nil)

// Leases implements outbox.LeaseReader: the relays' leases on the
// partitions of the outbox (theus_leases), by partition; none while the
// schema has no relay fleet's table.
func (s *Store) Leases(ctx context.Context) ([]outbox.RelayLease, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s.schema+".theus_leases").Scan(&exists); err != nil {
		return nil, s.errorf("leases", err)
	}
	if !exists {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT part, holder, token,
			CASE WHEN expires = '-infinity' THEN 0 ELSE (extract(epoch FROM expires) * 1000000)::bigint END
		FROM `+s.schema+`.theus_leases ORDER BY part`)
	if err != nil {
		return nil, s.errorf("leases", err)
	}
	defer rows.Close()
	var out []outbox.RelayLease
	for rows.Next() {
		var l outbox.RelayLease
		var part int32
		var token, micros int64
		if err := rows.Scan(&part, &l.Holder, &token, &micros); err != nil {
			return nil, s.errorf("leases", err)
		}
		l.Partition, l.Token = int(part), uint64(token)
		if micros != 0 {
			l.Expires = time.UnixMicro(micros)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("leases", err)
	}
	return out, nil
}
