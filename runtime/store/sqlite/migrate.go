package sqlite

import (
	"bytes"
	"context"
	"strconv"

	"github.com/theus-go/theus/runtime/engine"
)

// migrate writes the state rec recovered, whose migrated fields were
// converted as they were read (engine.Migrate), as the snapshot of a
// checkpoint at its version, and records the contract's fields, all in one
// transaction: until it commits, the file holds the old values and types
// (a crash runs the migration again, from them); once it has, the types
// match and nothing runs again. The log rows it supersedes stay as
// history. s.cmu is held; s.pending is the evolution to record. It returns
// the snapshot's size.
func (s *Store) migrate(ctx context.Context, codec engine.StateCodec, rec *engine.Recovered) (int64, error) {
	var snap [][]byte
	w := snapshotWriter{paths: codecPaths(codec), flush: func(data []byte) error {
		snap = append(snap, bytes.Clone(data))
		return nil
	}}
	if err := encodeState(codec, rec.State, &w); err != nil {
		return 0, err
	}
	err := s.writeTx(ctx, noStep, MigrateBeforeSync, noStep, func(c *writeConn) error {
		if err := s.recordPending(c); err != nil {
			return err
		}
		if _, err := c.exec(`DELETE FROM theus_snapshot`); err != nil {
			return err
		}
		for _, data := range snap {
			if _, err := c.exec(insertSnapshot, int64(rec.Version), data); err != nil {
				return err
			}
		}
		_, err := c.exec(setCheckpoint, strconv.FormatUint(rec.Version, 10))
		return err
	})
	return w.size, err
}
