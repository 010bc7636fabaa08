package postgres

import (
	"context"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
)

var _ outbox.LeaseReader = (*Store)(nil)

// Leases implements outbox.LeaseReader: the relays' leases on the
// partitions of the outbox (theus_leases, one row per partition), by
// partition.
func (s *Store) Leases(ctx context.Context) ([]outbox.RelayLease, error) {
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
