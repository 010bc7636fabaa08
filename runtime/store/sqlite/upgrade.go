package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
)

// upgrade1 upgrades a store of layout 1 to the current layout, in tx.
// Layout 1 kept the latest state in two tables updated by every commit:
// theus_fields (path, type, collection, value, version) and theus_entries
// (path, key, value, version), with the last version in theus_meta, and
// every message in theus_messages. Those values become the snapshot of a
// checkpoint at that version, with an empty log; the messages move to
// theus_outbox, the delivered ones marked delivered.
func upgrade1(ctx context.Context, tx *sql.Tx) error {
	var version uint64
	var v string
	err := tx.QueryRowContext(ctx, `SELECT value FROM theus_meta WHERE name = 'version'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows): // no commit yet
	case err != nil:
		return err
	default:
		if version, err = strconv.ParseUint(v, 10, 64); err != nil {
			return err
		}
	}
	// The values, as a snapshot.
	var paths []string
	var plain [][]byte // per path; nil for a collection
	err = queryRows(ctx, tx, `SELECT path, value FROM theus_fields ORDER BY path`, func(rows *sql.Rows) error {
		var path string
		var value []byte
		if err := rows.Scan(&path, &value); err != nil {
			return err
		}
		paths, plain = append(paths, path), append(plain, value)
		return nil
	})
	if err != nil {
		return err
	}
	var snap [][]byte
	w := snapshotWriter{paths: paths, flush: func(data []byte) error {
		snap = append(snap, bytes.Clone(data))
		return nil
	}}
	for i, value := range plain {
		if value != nil {
			if err := w.add(i, setField, "", value); err != nil {
				return err
			}
		}
	}
	err = queryRows(ctx, tx, `SELECT path, key, value FROM theus_entries ORDER BY path, key`, func(rows *sql.Rows) error {
		var path, key string
		var value []byte
		if err := rows.Scan(&path, &key, &value); err != nil {
			return err
		}
		i, ok := slices.BinarySearch(paths, path)
		if !ok {
			return errors.New("theus_entries holds an entry of " + path + ", which theus_fields does not record")
		}
		return w.add(i, putEntry, key, value)
	})
	if err != nil {
		return err
	}
	if err := w.close(); err != nil {
		return err
	}
	for _, q := range []string{
		`DROP TABLE theus_entries`,
		`ALTER TABLE theus_fields RENAME TO theus_fields_1`,
		`ALTER TABLE theus_messages RENAME TO theus_messages_1`,
		schema,
		`INSERT INTO theus_fields (path, type, collection) SELECT path, type, collection FROM theus_fields_1`,
		`INSERT INTO theus_outbox (id, version, idx, topic, key, key_seq, payload, headers, created_at, state, attempts, last_error, delivered_at)
			SELECT id, version, idx, topic, key, key_seq, payload, headers, created_at, state, attempts, last_error,
				CASE WHEN state = 'delivered' THEN coalesce(delivered_at, 0) END
			FROM theus_messages_1`,
		`DROP TABLE theus_fields_1`,
		`DROP TABLE theus_messages_1`,
		`UPDATE theus_meta SET name = 'checkpoint' WHERE name = 'version'`,
		foldAll,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	for _, data := range snap {
		if _, err := tx.ExecContext(ctx, `INSERT INTO theus_snapshot (version, data) VALUES (?, ?)`, int64(version), data); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `UPDATE theus_meta SET value = ? WHERE name = 'schema'`, schemaVersion)
	return err
}

// upgrade2 upgrades a store of layout 2 to the current layout, in tx.
// Layout 2 moved every delivered message from theus_outbox to
// theus_delivered when it was acked, and kept theus_key_seqs up to date
// then. The delivered messages move back into theus_outbox, marked
// delivered with their delivered_at; the cursor starts before every
// message; every KeySeq is folded.
func upgrade2(ctx context.Context, tx *sql.Tx) error {
	for _, q := range []string{
		`DROP VIEW IF EXISTS theus_messages`,
		`ALTER TABLE theus_outbox ADD COLUMN delivered_at INTEGER`,
		`INSERT INTO theus_outbox (id, version, idx, topic, key, key_seq, payload, headers, created_at, state, attempts, last_error, delivered_at)
			SELECT id, version, idx, topic, key, key_seq, payload, headers, created_at, 'delivered', attempts, last_error, delivered_at
			FROM theus_delivered`,
		`DROP TABLE theus_delivered`,
		`ALTER TABLE theus_log ADD COLUMN commits BLOB`,
		`ALTER TABLE theus_log ADD COLUMN at INTEGER`,
		schema,
		foldAll,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `UPDATE theus_meta SET value = ? WHERE name = 'schema'`, schemaVersion)
	return err
}

// foldAll folds the KeySeqs of every message (see foldKeySeqs).
const foldAll = `
INSERT INTO theus_key_seqs (topic, key, seq)
	SELECT topic, key, max(key_seq) FROM theus_outbox WHERE true GROUP BY topic, key
	ON CONFLICT (topic, key) DO UPDATE SET seq = max(seq, excluded.seq);
UPDATE theus_meta SET value = (SELECT coalesce(max(id), '') FROM theus_outbox) WHERE name = 'folded';
`
