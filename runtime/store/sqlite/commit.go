package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/theus-go/theus/runtime/engine"
)

// stmts are the statements of the commit path, prepared once on the write
// connection.
type stmts struct {
	field, entry, delEntry, msg, version *sql.Stmt
}

func prepare(ctx context.Context, db *sql.DB) (*stmts, error) {
	var st stmts
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&st.field, `INSERT INTO theus_fields (path, type, collection, value, version) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (path) DO UPDATE SET value = excluded.value, version = excluded.version`},
		{&st.entry, `INSERT INTO theus_entries (path, key, value, version) VALUES (?, ?, ?, ?)
			ON CONFLICT (path, key) DO UPDATE SET value = excluded.value, version = excluded.version`},
		{&st.delEntry, `DELETE FROM theus_entries WHERE path = ? AND key = ?`},
		{&st.msg, `INSERT INTO theus_messages (id, version, idx, topic, key, key_seq, payload, headers, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.version, `INSERT INTO theus_meta (name, value) VALUES ('version', ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`},
	} {
		var err error
		if *p.dst, err = db.PrepareContext(ctx, p.sql); err != nil {
			st.close()
			return nil, err
		}
	}
	return &st, nil
}

func (st *stmts) close() {
	for _, s := range []*sql.Stmt{st.field, st.entry, st.delEntry, st.msg, st.version} {
		if s != nil {
			s.Close()
		}
	}
}

// fieldRow and entryRow are state values encoded for a commit.
type fieldRow struct {
	i    int
	data []byte
}

type entryRow struct {
	i    int
	key  string
	data []byte // nil: delete
}

// Commit implements engine.Store: every record of the group is written in
// one transaction, which is committed (and synced) before Commit returns.
// On error nothing of the group is in the database.
//
// Values are encoded before the transaction opens, from the state of the
// group's last record: a field or an entry written by several commits of
// the group is stored once, with its final value.
func (s *Store) Commit(ctx context.Context, recs []*engine.Record) error {
	if len(recs) == 0 {
		return nil
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.codec == nil {
		return errors.New("sqlite: Commit before Recover: the store has no state codec (use it through engine.WithStore)")
	}
	if s.broken != nil {
		return fmt.Errorf("sqlite: an earlier commit may or may not be on disk (%w): reopen the store to recover what it holds", s.broken)
	}
	for i, r := range recs {
		if want := s.version + 1 + uint64(i); r.Version != want {
			return fmt.Errorf("sqlite: commit of version %d, want %d: versions must be consecutive", r.Version, want)
		}
	}
	last := recs[len(recs)-1]
	fields, entries, err := s.encode(recs, last)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if err := s.write(ctx, recs, last.Version, fields, entries); err != nil {
		var ce *commitError
		if errors.As(err, &ce) {
			// COMMIT itself failed (a sync error): the group may have
			// reached the disk. Reusing its versions could overwrite it, so
			// refuse every later commit instead.
			s.broken = ce.err
		}
		return fmt.Errorf("sqlite: commit versions %d-%d: %w", recs[0].Version, last.Version, err)
	}
	s.version, s.empty = last.Version, false
	for _, r := range recs {
		if len(r.Messages) > 0 {
			s.wake()
			break
		}
	}
	return nil
}

// encode encodes what recs wrote, from the final state. The first commit
// to an empty store encodes the whole state.
func (s *Store) encode(recs []*engine.Record, last *engine.Record) ([]fieldRow, []entryRow, error) {
	infos := s.codec.Fields()
	var fields []fieldRow
	var entries []entryRow
	if s.empty {
		for i, f := range infos {
			if !f.Collection {
				b, err := s.codec.EncodeField(last.State, i)
				if err != nil {
					return nil, nil, err
				}
				fields = append(fields, fieldRow{i: i, data: b})
				continue
			}
			fields = append(fields, fieldRow{i: i})
			err := s.codec.EncodeEntries(last.State, i, func(key string, data []byte) error {
				entries = append(entries, entryRow{i: i, key: key, data: data})
				return nil
			})
			if err != nil {
				return nil, nil, err
			}
		}
		return fields, entries, nil
	}
	dirty := make([]bool, len(infos))
	type ekey struct {
		i   int
		key string
	}
	var seen map[ekey]bool
	for _, r := range recs {
		for _, w := range r.Writes {
			i := s.codec.Field(w.Path)
			if i < 0 {
				return nil, nil, fmt.Errorf("version %d writes %s, which the state codec does not know", r.Version, w.Path)
			}
			if w.Key == "" && !infos[i].Collection {
				dirty[i] = true
				continue
			}
			k := ekey{i, w.Key}
			if seen[k] {
				continue
			}
			if seen == nil {
				seen = make(map[ekey]bool)
			}
			seen[k] = true
			b, ok, err := s.codec.EncodeEntry(last.State, i, w.Key)
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				b = nil
			}
			entries = append(entries, entryRow{i: i, key: w.Key, data: b})
		}
	}
	for i, d := range dirty {
		if d {
			b, err := s.codec.EncodeField(last.State, i)
			if err != nil {
				return nil, nil, err
			}
			fields = append(fields, fieldRow{i: i, data: b})
		}
	}
	return fields, entries, nil
}

// write writes a group in one transaction and commits it.
func (s *Store) write(ctx context.Context, recs []*engine.Record, version uint64, fields []fieldRow, entries []entryRow) (err error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := s.fault(BeforeWrite); err != nil {
		return err
	}
	st := s.stmts
	field, entry, delEntry := tx.StmtContext(ctx, st.field), tx.StmtContext(ctx, st.entry), tx.StmtContext(ctx, st.delEntry)
	infos := s.codec.Fields()
	for _, f := range fields {
		info := infos[f.i]
		var v any // NULL for a collection, whose values are its entries
		if !info.Collection {
			v = f.data
		}
		if _, err := field.ExecContext(ctx, info.Path, info.Type, info.Collection, v, version); err != nil {
			return err
		}
	}
	for _, e := range entries {
		path := infos[e.i].Path
		if e.data == nil {
			_, err = delEntry.ExecContext(ctx, path, e.key)
		} else {
			_, err = entry.ExecContext(ctx, path, e.key, e.data, version)
		}
		if err != nil {
			return err
		}
	}
	msg := tx.StmtContext(ctx, st.msg)
	for _, r := range recs {
		for i := range r.Messages {
			m := &r.Messages[i]
			var headers any
			if len(m.Headers) > 0 {
				b, err := json.Marshal(m.Headers)
				if err != nil {
					return err
				}
				headers = string(b)
			}
			payload := m.Payload
			if payload == nil {
				payload = []byte{}
			}
			if _, err := msg.ExecContext(ctx, m.ID, int64(m.Version), i, m.Topic, m.Key, int64(m.KeySeq), payload, headers, m.CreatedAt.UnixNano()); err != nil {
				return err
			}
		}
	}
	if _, err := tx.StmtContext(ctx, st.version).ExecContext(ctx, strconv.FormatUint(version, 10)); err != nil {
		return err
	}
	if err := s.fault(BeforeSync); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return &commitError{err}
	}
	return nil
}

// commitError is a failure of COMMIT itself, whose outcome is unknown.
type commitError struct{ err error }

func (e *commitError) Error() string { return e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

func (s *Store) fault(step Step) error {
	if s.opts.fault == nil {
		return nil
	}
	if err := s.opts.fault(step); err != nil {
		return fmt.Errorf("injected fault %s: %w", step, err)
	}
	return nil
}
