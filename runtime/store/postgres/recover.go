package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// DriftError reports that the store was written by a contract whose state
// changed in a way its stored values cannot follow (engine.CompareFields):
// each of Paths names a path and the reason. Nothing was read or written:
// register a migration (engine.Migrate) or open another schema.
type DriftError struct {
	// Paths describes each mismatch, one per state path, sorted.
	Paths []string
}

func (e *DriftError) Error() string {
	return "postgres: the store's state does not match the contract: " + strings.Join(e.Paths, "; ")
}

// ErrInUse is returned (wrapped) by a second Recover on one Store: a Store
// serves one engine. Engines share a state by each opening a Store on the
// same database and schema.
var ErrInUse = errors.New("an engine already recovered this Store (one engine per Store; open another Store on the same schema)")

// Recover implements engine.Store. It keeps codec for later commits,
// checks the stored fields against it (see DriftError) and reads the state
// at the head version, the KeySeqs and the head in one read-only,
// repeatable-read transaction, so that other instances' commits meanwhile
// do not matter. Compatible changes of the contract are accepted (fields
// added start as zero values, removed ones are ignored with a warning) and
// recorded by the next commit, in its transaction; migrations run first,
// in a transaction of their own under the head's lock. It returns nil for
// a store that holds no commit.
func (s *Store) Recover(ctx context.Context, codec engine.StateCodec) (*engine.Recovered, error) {
	if codec == nil {
		return nil, errors.New("postgres: Recover needs the engine's state codec")
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.claimed {
		return nil, fmt.Errorf("postgres: recover: %w", ErrInUse)
	}
	rec, err := s.recover(ctx, codec)
	if err != nil {
		var de *DriftError
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, s.errorf("recover", err)
	}
	s.codec, s.claimed = codec, true
	if rec != nil {
		s.version = rec.Version
	}
	return rec, nil
}

func (s *Store) recover(ctx context.Context, codec engine.StateCodec) (*engine.Recovered, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	var head int64
	if err := tx.QueryRow(ctx, s.q.head).Scan(&head); err != nil {
		return nil, err
	}
	if head == 0 {
		return nil, nil
	}
	var format string
	err = tx.QueryRow(ctx, `SELECT value FROM `+s.schema+`.theus_meta WHERE name = 'format'`).Scan(&format)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	if format != codec.Format() {
		return nil, fmt.Errorf("the store's state values are encoded as %q, the engine's codec is %s", format, codec.Format())
	}
	infos := codec.Fields()
	index := make(map[string]int, len(infos))
	for i, f := range infos {
		index[f.Path] = i
	}
	ev, err := checkDrift(ctx, tx, s.schema, codec)
	if err != nil {
		return nil, err
	}
	// convert is the migration of path's values, if it has one.
	convert := func(path string, data []byte) ([]byte, error) {
		if c := ev.Convert[path]; c != nil && data != nil {
			return c(data)
		}
		return data, nil
	}
	dec := codec.Decoder()
	rows, err := tx.Query(ctx, `SELECT path, value FROM `+s.schema+`.theus_fields WHERE NOT collection AND value IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	var path string
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&path, &data}, func() error {
		i, ok := index[path]
		if !ok {
			return nil // a field the contract removed: ignored
		}
		v, err := convert(path, data)
		if err != nil {
			return err
		}
		return dec.Field(i, v)
	})
	if err != nil {
		return nil, err
	}
	if err := readEntries(ctx, tx, s.schema, func(path, key, data []byte) error {
		i, ok := index[string(path)] // no allocation: the compiler looks up the bytes
		if !ok {
			return nil // a collection the contract removed: ignored
		}
		if !infos[i].Collection {
			return fmt.Errorf("theus_entries holds an entry of %s, which the contract does not declare as a collection", path)
		}
		v, err := convert(infos[i].Path, data)
		if err != nil {
			return fmt.Errorf("entry %q: %w", key, err)
		}
		return dec.Entry(i, string(key), v)
	}); err != nil {
		return nil, err
	}
	state, err := dec.State()
	if err != nil {
		return nil, err
	}
	seqs := make(map[outbox.TopicKey]uint64)
	var tk outbox.TopicKey
	var seq int64
	rows, err = tx.Query(ctx, `SELECT topic, key, seq FROM `+s.schema+`.theus_key_seqs`)
	if err != nil {
		return nil, err
	}
	if _, err = pgx.ForEachRow(rows, []any{&tk.Topic, &tk.Key, &seq}, func() error {
		seqs[tk] = uint64(seq)
		return nil
	}); err != nil {
		return nil, err
	}
	tx.Rollback(ctx)
	rec := &engine.Recovered{Version: uint64(head), State: state, KeySeqs: seqs, Warnings: ev.Warnings}
	// The fields the contract added or changed compatibly are recorded by
	// the next commit, in its transaction (recordPending): until then the
	// schema is as the previous contract left it. A migration records them
	// at once, with the converted values.
	s.pending = ev
	if len(ev.Migrate) > 0 {
		err := s.migrate(ctx, codec, rec)
		s.pending = engine.Evolution{}
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	return rec, nil
}

// checkDrift compares the stored fields with the contract's
// (engine.CompareFields, as every store does) and returns what to record,
// or a DriftError.
func checkDrift(ctx context.Context, tx pgx.Tx, schema string, codec engine.StateCodec) (engine.Evolution, error) {
	rows, err := tx.Query(ctx, `SELECT path, type, collection FROM `+schema+`.theus_fields ORDER BY path`)
	if err != nil {
		return engine.Evolution{}, err
	}
	var stored []engine.FieldInfo
	var f engine.FieldInfo
	_, err = pgx.ForEachRow(rows, []any{&f.Path, &f.Type, &f.Collection}, func() error {
		stored = append(stored, f)
		return nil
	})
	if err != nil {
		return engine.Evolution{}, err
	}
	ev := engine.CompareFields(stored, codec)
	if len(ev.Drift) > 0 {
		return ev, &DriftError{Paths: ev.Drift}
	}
	return ev, nil
}

// readEntries calls f with every row of theus_entries, in the order the
// table holds them. Its arguments may alias the connection's read buffer:
// they are valid until f returns. The rows are read as they come, without
// a copy per column; the engine's decoder copies what it keeps and
// decodes on other goroutines meanwhile (engine.StateDecoder), and builds
// each collection in key order whatever the order of the rows.
func readEntries(ctx context.Context, tx pgx.Tx, schema string, f func(path, key, data []byte) error) error {
	rows, err := tx.Query(ctx, `SELECT path, key, value FROM `+schema+`.theus_entries`)
	if err != nil {
		return err
	}
	defer rows.Close()
	// Text columns read the same in both formats; bytea is raw only in
	// binary, which pgx asks for unless the DSN sets the simple protocol.
	var raw, known bool
	var path, key string
	var data []byte
	for rows.Next() {
		if !known {
			raw, known = rows.FieldDescriptions()[2].Format == pgx.BinaryFormatCode, true
		}
		if !raw {
			if err := rows.Scan(&path, &key, &data); err != nil {
				return err
			}
			if err := f([]byte(path), []byte(key), data); err != nil {
				return err
			}
			continue
		}
		v := rows.RawValues()
		d := v[2]
		if d == nil {
			d = []byte{} // an empty value, not a deleted entry
		}
		if err := f(v[0], v[1], d); err != nil {
			return err
		}
	}
	return rows.Err()
}
