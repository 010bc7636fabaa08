package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// DriftError reports that the store was written by a contract whose state
// does not match the one opening it. Nothing was read: migrate the data or
// open another schema.
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
// do not matter. Fields the contract added since are recorded and start as
// zero values. It returns nil for a store that holds no commit.
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
	if err := checkDrift(ctx, tx, s.schema, infos, index); err != nil {
		return nil, err
	}
	dec := codec.Decoder()
	rows, err := tx.Query(ctx, `SELECT path, value FROM `+s.schema+`.theus_fields WHERE NOT collection AND value IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	var path, key string
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&path, &data}, func() error { return dec.Field(index[path], data) })
	if err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT path, key, value FROM `+s.schema+`.theus_entries`)
	if err != nil {
		return nil, err
	}
	_, err = pgx.ForEachRow(rows, []any{&path, &key, &data}, func() error {
		i, ok := index[path]
		if !ok || !infos[i].Collection {
			return fmt.Errorf("theus_entries holds an entry of %s, which the contract does not declare as a collection", path)
		}
		return dec.Entry(i, key, data)
	})
	if err != nil {
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
	// Record the fields the contract added, so that a later change of
	// their type is caught too; they hold zero values until written.
	paths, types := make([]string, len(infos)), make([]string, len(infos))
	colls := make([]bool, len(infos))
	for i, f := range infos {
		paths[i], types[i], colls[i] = f.Path, f.Type, f.Collection
	}
	if _, err := s.pool.Exec(ctx, s.q.insertFields, paths, types, colls, make([][]byte, len(infos)), make([]int64, len(infos))); err != nil {
		return nil, fmt.Errorf("record the contract's new fields: %w", err)
	}
	return &engine.Recovered{Version: uint64(head), State: state, KeySeqs: seqs}, nil
}

// checkDrift compares the stored fields with the contract's (see
// DriftError).
func checkDrift(ctx context.Context, tx pgx.Tx, schema string, infos []engine.FieldInfo, index map[string]int) error {
	rows, err := tx.Query(ctx, `SELECT path, type, collection FROM `+schema+`.theus_fields`)
	if err != nil {
		return err
	}
	var drift []string
	var path, typ string
	var coll bool
	_, err = pgx.ForEachRow(rows, []any{&path, &typ, &coll}, func() error {
		i, ok := index[path]
		switch {
		case !ok:
			drift = append(drift, fmt.Sprintf("%s is stored but the contract no longer declares it", path))
		case infos[i].Collection != coll:
			drift = append(drift, fmt.Sprintf("%s changed between collection and plain field", path))
		case infos[i].Type != typ:
			drift = append(drift, fmt.Sprintf("%s is stored as %s but the contract declares %s", path, typ, infos[i].Type))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(drift) > 0 {
		slices.Sort(drift)
		return &DriftError{Paths: drift}
	}
	return nil
}
