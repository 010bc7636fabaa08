package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/runtime/engine"
)

// recordPending queues into b the record of the fields Recover found new
// or compatibly changed, and the removal of those the contract no longer
// declares (their values too). s.cmu is held.
func (s *Store) recordPending(b *pgx.Batch) {
	ev := s.pending
	if len(ev.Record) > 0 {
		paths, types := make([]string, len(ev.Record)), make([]string, len(ev.Record))
		colls := make([]bool, len(ev.Record))
		for i, f := range ev.Record {
			paths[i], types[i], colls[i] = f.Path, f.Type, f.Collection
		}
		b.Queue(`INSERT INTO `+s.schema+`.theus_fields (path, type, collection, value, version)
			SELECT p, t, c, NULL, 0 FROM unnest($1::text[], $2::text[], $3::boolean[]) AS u(p, t, c)
			ON CONFLICT (path) DO UPDATE SET type = excluded.type, collection = excluded.collection`, paths, types, colls)
	}
	if len(ev.Removed) > 0 {
		b.Queue(`DELETE FROM `+s.schema+`.theus_entries WHERE path = ANY($1)`, ev.Removed)
		b.Queue(`DELETE FROM `+s.schema+`.theus_fields WHERE path = ANY($1)`, ev.Removed)
	}
}

// migrate writes the values of the migrated fields of rec, converted as
// Recover read them (engine.Migrate), and records the contract's fields,
// in one transaction under the head's lock: until it commits the schema
// holds the old values and types (a crash runs the migration again, from
// them); once it has, the types match and nothing runs again. Another
// instance that committed since Recover read the state makes it fail:
// start again. s.cmu is held; s.pending is the evolution to record.
func (s *Store) migrate(ctx context.Context, codec engine.StateCodec, rec *engine.Recovered) error {
	// No commit to read after the head: another instance's fails the
	// migration below.
	conn, head, _, err := s.begin(ctx, 1<<63-1)
	if err != nil {
		return err
	}
	defer conn.Release()
	open := true
	defer func() {
		if open {
			s.rollback(conn)
		}
	}()
	if uint64(head) != rec.Version {
		return fmt.Errorf("another engine committed version %d while this one recovered version %d: start again", head, rec.Version)
	}
	b := &pgx.Batch{}
	s.recordPending(b)
	index := make(map[string]int)
	for i, f := range codec.Fields() {
		index[f.Path] = i
	}
	for _, f := range s.pending.Migrate {
		i := index[f.Path]
		if !f.Collection {
			data, err := codec.AppendField(nil, rec.State, i)
			if err != nil {
				return err
			}
			b.Queue(`UPDATE `+s.schema+`.theus_fields SET value = $2 WHERE path = $1`, f.Path, data)
			continue
		}
		var keys []string
		var values [][]byte
		err := codec.EncodeEntries(rec.State, i, func(key string, data []byte) error {
			keys, values = append(keys, key), append(values, append([]byte(nil), data...))
			return nil
		})
		if err != nil {
			return err
		}
		b.Queue(`UPDATE `+s.schema+`.theus_entries e SET value = u.v FROM unnest($2::text[], $3::bytea[]) AS u(k, v)
			WHERE e.path = $1 AND e.key = u.k`, f.Path, keys, values)
	}
	if err := s.fault(BeforeCommit); err != nil {
		return err
	}
	// The writes and COMMIT in one round trip, as a commit's: if a
	// statement fails, the server skips the rest, COMMIT included. A
	// COMMIT whose outcome is unknown fails the start; the next one finds
	// the migration done, or does it.
	b.Queue("COMMIT")
	if _, err = execBatch(ctx, conn, b, nil, nil); err == nil {
		open = false
	}
	return err
}
