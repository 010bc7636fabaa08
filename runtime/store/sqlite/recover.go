package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
// state at the last committed version: the snapshot of the last
// checkpoint with the commits of the log after it, each field and entry
// decoded once, from its latest value, and each collection built in bulk.
// Fields the contract added since are zero values. Everything is read in
// one read transaction, so a checkpoint running meanwhile does not matter.
// It returns nil for a store that holds no commit.
func (s *Store) Recover(ctx context.Context, codec engine.StateCodec) (*engine.Recovered, error) {
	if codec == nil {
		return nil, errors.New("sqlite: Recover needs the engine's state codec")
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if err := s.file.claim(s); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", s.path, err)
	}
	rec, err := s.recover(ctx, codec)
	if err != nil {
		// No engine came of it: leave the file to the next one.
		if uerr := s.file.unclaim(s); uerr != nil {
			err = errors.Join(err, uerr)
		}
		return rec, err
	}
	s.tail.setWriter()
	return rec, nil
}

// recover is Recover once the engine holds the file. s.cmu is held.
func (s *Store) recover(ctx context.Context, codec engine.StateCodec) (*engine.Recovered, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: recover: %w", err)
	}
	defer tx.Rollback()
	r := recovery{codec: codec}
	if err := r.read(ctx, tx, s); err != nil {
		var de *DriftError
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, fmt.Errorf("sqlite: recover: %w", err)
	}
	tx.Rollback()
	if r.rec == nil {
		// No commit yet: the first one writes the whole state.
		s.codec, s.version, s.empty = codec, 0, true
		s.seqs, s.lastID = make(map[outbox.TopicKey]uint64), ""
		if err := s.setFormat(ctx, codec.Format()); err != nil {
			return nil, fmt.Errorf("sqlite: recover: %w", err)
		}
		return nil, nil
	}
	// The fields the contract added or changed compatibly are recorded
	// with the next commit, in its transaction: until then the file is
	// as the previous contract left it, and opens with it again. A
	// migration records them at once, with the converted state.
	s.pending = r.evolution
	if len(r.evolution.Migrate) > 0 {
		size, err := s.migrate(ctx, codec, r.rec)
		if err != nil {
			s.pending = engine.Evolution{}
			return nil, fmt.Errorf("sqlite: recover: migrate: %w", err)
		}
		s.pending = engine.Evolution{}
		r.checkpoint, r.logBytes, r.snapBytes = r.rec.Version, 0, size
	}
	r.rec.Warnings = r.evolution.Warnings
	s.codec, s.version, s.empty, s.last = codec, r.rec.Version, false, r.rec.State
	s.seqs, s.lastID = r.unfolded, r.lastID
	s.checkpoint.Store(r.checkpoint)
	s.logBytes.Store(r.logBytes)
	s.snapBytes.Store(r.snapBytes)
	if s.checkpointDue() && !s.pendingFields() {
		s.ckpt.trigger()
	}
	return r.rec, nil
}

// recovery is what Recover reads.
type recovery struct {
	codec engine.StateCodec
	rec   *engine.Recovered // nil: the store holds no commit
	// unfolded and lastID are the store's seqs and lastID (see fold).
	unfolded map[outbox.TopicKey]uint64
	lastID   string
	// evolution is how the stored fields differ from the contract's: what
	// to record with the next commit (see Store.pending), what to warn
	// about.
	evolution           engine.Evolution
	checkpoint          uint64
	logBytes, snapBytes int64
}

// logged is the latest change of a field or entry in the log, made by the
// group ending at version.
type logged struct {
	change
	version uint64
}

// read reads the store in tx.
func (r *recovery) read(ctx context.Context, tx *sql.Tx, s *Store) error {
	var cp string
	err := tx.QueryRowContext(ctx, `SELECT value FROM theus_meta WHERE name = 'checkpoint'`).Scan(&cp)
	if errors.Is(err, sql.ErrNoRows) {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM theus_log`).Scan(&n); err != nil || n > 0 {
			return errors.Join(err, fmt.Errorf("the log holds %d rows but no checkpoint is recorded", n))
		}
		return nil
	}
	if err != nil {
		return err
	}
	if r.checkpoint, err = strconv.ParseUint(cp, 10, 64); err != nil {
		return fmt.Errorf("stored checkpoint version %q: %w", cp, err)
	}
	if err := s.checkFormat(ctx, r.codec.Format()); err != nil {
		return err
	}
	infos := r.codec.Fields()
	index := make(map[string]int, len(infos))
	for i, f := range infos {
		index[f.Path] = i
	}
	if r.evolution, err = checkDrift(ctx, tx, r.codec); err != nil {
		return err
	}

	// The log after the checkpoint: the latest change of every field and
	// entry it touches.
	version := r.checkpoint
	latest := make(map[[2]string]logged)
	err = queryRows(ctx, tx, `SELECT version, first, data FROM theus_log WHERE version > ? ORDER BY version`, func(rows *sql.Rows) error {
		var last, first uint64
		var data []byte
		if err := rows.Scan(&last, &first, &data); err != nil {
			return err
		}
		if first != version+1 || last < first {
			return fmt.Errorf("the log holds versions %d-%d after version %d", first, last, version)
		}
		version = last
		r.logBytes += int64(len(data))
		err := readChanges(data, func(c change) error {
			latest[[2]string{c.path, c.key}] = logged{c, last}
			return nil
		})
		if err != nil {
			return fmt.Errorf("log row of version %d: %w", last, err)
		}
		return nil
	}, int64(r.checkpoint))
	if err != nil {
		return err
	}

	// The snapshot, but for what the log changed since.
	dec := r.codec.Decoder()
	apply := func(c change, from string) error {
		i, ok := index[c.path]
		if !ok {
			// A field the contract removed: its values are ignored until
			// a checkpoint leaves them out.
			return nil
		}
		if infos[i].Collection != (c.kind != setField) {
			return fmt.Errorf("%s changes %s, which the contract does not declare as such", from, c.path)
		}
		if convert := r.evolution.Convert[c.path]; convert != nil && c.value != nil {
			v, err := convert(c.value)
			if err != nil {
				if c.key != "" {
					return fmt.Errorf("%s, entry %q: %w", from, c.key, err)
				}
				return fmt.Errorf("%s: %w", from, err)
			}
			c.value = v
		}
		switch c.kind {
		case setField:
			return dec.Field(i, c.value)
		case putEntry:
			return dec.Entry(i, c.key, c.value)
		}
		return nil
	}
	from := fmt.Sprintf("the snapshot of version %d", r.checkpoint)
	err = queryRows(ctx, tx, `SELECT data FROM theus_snapshot WHERE version = ? ORDER BY id`, func(rows *sql.Rows) error {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return err
		}
		r.snapBytes += int64(len(data))
		return readChanges(data, func(c change) error {
			if _, ok := latest[[2]string{c.path, c.key}]; ok {
				return nil // changed in the log
			}
			return apply(c, from)
		})
	}, int64(r.checkpoint))
	if err != nil {
		return err
	}
	for _, l := range latest {
		if err := apply(l.change, fmt.Sprintf("the log of version %d", l.version)); err != nil {
			return err
		}
	}
	state, err := dec.State()
	if err != nil {
		return err
	}
	seqs, unfolded, last, err := recoverKeySeqs(ctx, tx)
	if err != nil {
		return err
	}
	r.rec = &engine.Recovered{Version: version, State: state, KeySeqs: seqs}
	r.unfolded, r.lastID = unfolded, last
	return nil
}

// checkDrift compares the stored fields with the contract's
// (engine.CompareFields) and returns what the store must record with its
// next commit, or a DriftError. A field recorded with the previous form of
// fingerprint that matches the contract's in that form (see
// legacyFingerprint) is not drift either: it is recorded again in the
// current form.
func checkDrift(ctx context.Context, tx *sql.Tx, codec engine.StateCodec) (engine.Evolution, error) {
	infos := codec.Fields()
	declared := make(map[string]string, len(infos))
	for _, f := range infos {
		declared[f.Path] = f.Type
	}
	var stored []engine.FieldInfo
	var legacy []engine.FieldInfo
	err := queryRows(ctx, tx, `SELECT path, type, collection FROM theus_fields ORDER BY path`, func(rows *sql.Rows) error {
		var f engine.FieldInfo
		if err := rows.Scan(&f.Path, &f.Type, &f.Collection); err != nil {
			return err
		}
		if d, ok := declared[f.Path]; ok && d != f.Type && legacyFingerprint(d) == f.Type {
			f.Type = d
			legacy = append(legacy, f)
		}
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
	ev.Record = append(ev.Record, legacy...)
	return ev, nil
}

// legacyFingerprint returns fp in the form theusgen wrote before it
// described the types of other packages by their structure: a qualified
// name alone ("example.com/money.Amount", not "example.com/money.Amount{units
// int64}" or "example.com/money.Cents(int64)"). A store recorded in that
// form cannot tell whether such a type changed before the upgrade; it is
// taken as it is and recorded in the full form, and any change after that
// is drift.
func legacyFingerprint(fp string) string {
	var b strings.Builder
	for i := 0; i < len(fp); {
		if !isNameByte(fp[i]) {
			b.WriteByte(fp[i])
			i++
			continue
		}
		j := i
		for j < len(fp) && isNameByte(fp[j]) {
			j++
		}
		b.WriteString(fp[i:j])
		// A qualified name holds a dot (the contract's own types do not);
		// its description follows it.
		if strings.Contains(fp[i:j], ".") && j < len(fp) && (fp[j] == '{' || fp[j] == '(') {
			j = skipBalanced(fp, j)
		}
		i = j
	}
	return b.String()
}

// isNameByte reports whether c belongs to a name in a fingerprint: a type
// name, a field name, or an import path with its package's type.
func isNameByte(c byte) bool { return !strings.ContainsRune(" ,{}[]()", rune(c)) }

// skipBalanced returns the index after the bracket that closes the one at
// fp[i] ('{' or '('), or len(fp).
func skipBalanced(fp string, i int) int {
	depth := 0
	for ; i < len(fp); i++ {
		switch fp[i] {
		case '{', '(':
			depth++
		case '}', ')':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return len(fp)
}

// recoverKeySeqs returns the last KeySeq of every key, and of the keys of
// the messages not folded yet: it is in theus_key_seqs up to the last
// message folded (see fold), and among the messages after it. last is the
// ID of the last message.
func recoverKeySeqs(ctx context.Context, tx *sql.Tx) (all, unfolded map[outbox.TopicKey]uint64, last string, err error) {
	all, unfolded = make(map[outbox.TopicKey]uint64), make(map[outbox.TopicKey]uint64)
	for _, q := range []struct {
		sql string
		dst map[outbox.TopicKey]uint64
	}{
		{`SELECT topic, key, seq FROM theus_key_seqs`, nil},
		{`SELECT topic, key, max(key_seq) FROM theus_outbox
			WHERE id > (SELECT value FROM theus_meta WHERE name = 'folded') GROUP BY topic, key`, unfolded},
	} {
		err := queryRows(ctx, tx, q.sql, func(rows *sql.Rows) error {
			var tk outbox.TopicKey
			var seq int64
			if err := rows.Scan(&tk.Topic, &tk.Key, &seq); err != nil {
				return err
			}
			all[tk] = max(all[tk], uint64(seq))
			if q.dst != nil {
				q.dst[tk] = uint64(seq)
			}
			return nil
		})
		if err != nil {
			return nil, nil, "", err
		}
	}
	err = tx.QueryRowContext(ctx, `SELECT coalesce(max(id), '') FROM theus_outbox`).Scan(&last)
	return all, unfolded, last, err
}

// query runs q on the read connections and calls scan for every row.
func (s *Store) query(ctx context.Context, q string, scan func(*sql.Rows) error, args ...any) error {
	return queryRows(ctx, s.r, q, scan, args...)
}

// queryRows runs q on db (a *sql.DB or *sql.Tx) and calls scan for every
// row.
func queryRows(ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, q string, scan func(*sql.Rows) error, args ...any) error {
	rows, err := db.QueryContext(ctx, q, args...)
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
	return err
}

// checkFormat refuses a store whose values were encoded another way.
func (s *Store) checkFormat(ctx context.Context, format string) error {
	var f string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM theus_meta WHERE name = 'format'`).Scan(&f)
	if errors.Is(err, sql.ErrNoRows) {
		return s.setFormat(ctx, format)
	}
	if err != nil {
		return err
	}
	if f != format {
		return fmt.Errorf("the store's state values are encoded as %s, the engine's codec is %s", f, format)
	}
	return nil
}
