package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// DriftError reports that the store was written by a contract whose state
// does not match the one opening it. Nothing was read: migrate the data or
// open another file.
type DriftError struct {
	// Paths describes each mismatch, one per state path, sorted.
	Paths []string
}

func (e *DriftError) Error() string {
	return "sqlite: the store's state does not match the contract: " + strings.Join(e.Paths, "; ")
}

// Recover implements engine.Store. It keeps codec for later commits,
// checks the stored fields against it (see DriftError) and rebuilds the
// state: each plain field from its stored value, each collection from its
// entries in one bulk build. Fields the contract added since are zero
// values. It returns nil for a store that holds no commit.
func (s *Store) Recover(ctx context.Context, codec engine.StateCodec) (*engine.Recovered, error) {
	if codec == nil {
		return nil, errors.New("sqlite: Recover needs the engine's state codec")
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	var version uint64
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM theus_meta WHERE name = 'version'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// No commit yet: the first one writes the whole state.
		s.codec, s.version, s.empty = codec, 0, true
		return nil, s.setFormat(ctx, codec.Format())
	case err != nil:
		return nil, fmt.Errorf("sqlite: recover: %w", err)
	}
	if version, err = strconv.ParseUint(v, 10, 64); err != nil {
		return nil, fmt.Errorf("sqlite: recover: stored version %q: %w", v, err)
	}
	if err := s.checkFormat(ctx, codec.Format()); err != nil {
		return nil, err
	}
	infos := codec.Fields()
	index := make(map[string]int, len(infos))
	for i, f := range infos {
		index[f.Path] = i
	}
	dec := codec.Decoder()
	stored := make(map[string]bool, len(infos))
	var drift []string
	err = s.query(ctx, `SELECT path, type, collection, value FROM theus_fields`, func(rows *sql.Rows) error {
		var path, typ string
		var coll bool
		var value []byte
		if err := rows.Scan(&path, &typ, &coll, &value); err != nil {
			return err
		}
		stored[path] = true
		i, ok := index[path]
		switch {
		case !ok:
			drift = append(drift, fmt.Sprintf("%s is stored but the contract no longer declares it", path))
		case infos[i].Type != typ:
			drift = append(drift, fmt.Sprintf("%s is stored as %s but the contract declares %s", path, typ, infos[i].Type))
		case infos[i].Collection != coll:
			drift = append(drift, fmt.Sprintf("%s changed between collection and plain field", path))
		case !coll && value != nil:
			return dec.Field(i, value)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: recover: %w", err)
	}
	if len(drift) > 0 {
		slices.Sort(drift)
		return nil, &DriftError{Paths: drift}
	}
	err = s.query(ctx, `SELECT path, key, value FROM theus_entries ORDER BY path, key`, func(rows *sql.Rows) error {
		var path, key string
		var value []byte
		if err := rows.Scan(&path, &key, &value); err != nil {
			return err
		}
		i, ok := index[path]
		if !ok {
			return fmt.Errorf("entry %q of %s, a field the store does not record", key, path)
		}
		return dec.Entry(i, key, value)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: recover: %w", err)
	}
	state, err := dec.State()
	if err != nil {
		return nil, fmt.Errorf("sqlite: recover: %w", err)
	}
	// The last KeySeq of a key is in theus_key_seqs up to its last
	// delivered message (see keepKeySeqs), and among its undelivered
	// messages after that.
	seqs := make(map[outbox.TopicKey]uint64)
	for _, q := range []string{
		`SELECT topic, key, seq FROM theus_key_seqs`,
		`SELECT topic, key, max(key_seq) FROM theus_messages WHERE state = 'pending' GROUP BY topic, key`,
		`SELECT topic, key, max(key_seq) FROM theus_messages WHERE state = 'parked' GROUP BY topic, key`,
	} {
		err = s.query(ctx, q, func(rows *sql.Rows) error {
			var tk outbox.TopicKey
			var seq int64
			if err := rows.Scan(&tk.Topic, &tk.Key, &seq); err != nil {
				return err
			}
			seqs[tk] = max(seqs[tk], uint64(seq))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("sqlite: recover: %w", err)
		}
	}
	// Record the fields the contract added, so that a later change of
	// their type is caught too; they hold zero values until written.
	for i, f := range infos {
		if stored[f.Path] {
			continue
		}
		if _, err := s.w.ExecContext(ctx, `INSERT INTO theus_fields (path, type, collection, value, version) VALUES (?, ?, ?, NULL, ?)`,
			f.Path, f.Type, f.Collection, int64(version)); err != nil {
			return nil, fmt.Errorf("sqlite: recover: record new field %s: %w", infos[i].Path, err)
		}
	}
	s.codec, s.version, s.empty = codec, version, false
	return &engine.Recovered{Version: version, State: state, KeySeqs: seqs}, nil
}

// query runs q on the read connections and calls scan for every row.
func (s *Store) query(ctx context.Context, q string, scan func(*sql.Rows) error, args ...any) error {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// setFormat records the encoding of state values, for a store without
// state yet.
func (s *Store) setFormat(ctx context.Context, format string) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO theus_meta (name, value) VALUES ('format', ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, format)
	if err != nil {
		return fmt.Errorf("sqlite: recover: %w", err)
	}
	return nil
}

// checkFormat refuses a store whose values were encoded another way.
func (s *Store) checkFormat(ctx context.Context, format string) error {
	var f string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM theus_meta WHERE name = 'format'`).Scan(&f)
	if errors.Is(err, sql.ErrNoRows) {
		return s.setFormat(ctx, format)
	}
	if err != nil {
		return fmt.Errorf("sqlite: recover: %w", err)
	}
	if f != format {
		return fmt.Errorf("sqlite: the store's state values are encoded as %s, the engine's codec is %s", f, format)
	}
	return nil
}
