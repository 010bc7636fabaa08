package postgres

import (
	"context"
	"time"

	"github.com/theus-go/theus/runtime/engine"
)

// History implements engine.HistoryReader: the commits from version from
// to version to, both included, that the log still holds
// (WithHistoryRetention), in version order, whichever instance made them,
// each with the values it wrote as that commit left them: the whole
// top-level field for a plain field, each collection entry written (Data
// nil when deleted).
func (s *Store) History(ctx context.Context, from, to uint64) ([]engine.Commit, error) {
	if to < from {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT version, process, at, writes, vals, ids FROM `+s.schema+`.theus_log
		WHERE version >= $1 AND version <= $2 ORDER BY version`, int64(from), int64(min(to, 1<<63-1)))
	if err != nil {
		return nil, s.errorf("history", err)
	}
	defer rows.Close()
	var out []engine.Commit
	for rows.Next() {
		var c engine.Commit
		var version, at int64
		var writes, vals, ids []byte
		if err := rows.Scan(&version, &c.Process, &at, &writes, &vals, &ids); err != nil {
			return nil, s.errorf("history", err)
		}
		c.Version, c.Time = uint64(version), time.Unix(0, at)
		if c.Writes, err = readWrites(writes); err == nil {
			if c.MessageIDs, err = readIDs(ids); err == nil {
				err = readVals(vals, func(v value) error {
					val := engine.Value{Path: v.path, Key: v.key}
					if v.kind != valDeleted {
						val.Data = append([]byte(nil), v.data...)
					}
					c.Values = append(c.Values, val)
					return nil
				})
			}
		}
		if err != nil {
			return nil, s.errorf("history", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("history", err)
	}
	return out, nil
}

// pruneHistory deletes the log rows older than the history retention, in
// batches, but never the row of the head: a later commit's rebase and
// Follow read the log after the version an engine knows, and the head
// row shows that nothing is missing before it.
func (s *Store) pruneHistory(ctx context.Context) (int, error) {
	if s.opts.history < 0 {
		return 0, nil
	}
	cutoff := s.opts.now().Add(-s.opts.history).UnixNano()
	return s.deleteBatches(ctx, `DELETE FROM `+s.schema+`.theus_log WHERE version IN (
		SELECT version FROM `+s.schema+`.theus_log WHERE at < $1
			AND version < (SELECT version FROM `+s.schema+`.theus_head WHERE id = 1)
		ORDER BY version LIMIT $2)`, cutoff)
}
