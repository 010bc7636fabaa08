package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Incarnation implements engine.Incarnated: the incarnation of the history
// the store holds, which every message ID it is given carries. A new store
// starts one (the time of its creation in Unix milliseconds); so does
// Restore. A store created before incarnations existed has incarnation 0
// until it is restored.
func (s *Store) Incarnation() uint64 { return s.inc }

// readIncarnation reads the store's incarnation; 0 when it has none.
func readIncarnation(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (uint64, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM theus_meta WHERE name = 'incarnation'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	inc, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("incarnation %q: %w", v, err)
	}
	return inc, nil
}

// newIncarnation returns the incarnation that follows prev: the time in
// Unix milliseconds, or prev+1 if the clock reads no later than prev.
func newIncarnation(prev uint64) uint64 {
	return max(uint64(time.Now().UnixMilli()), prev+1)
}

// Backup writes a consistent copy of the store to the file to, which must
// not exist, while commits go on (SQLite's VACUUM INTO, in a read
// transaction). The copy is one self-contained file. Bring it back with
// Restore, never by copying it into place: see Restore.
func (s *Store) Backup(ctx context.Context, to string) error {
	if _, err := os.Stat(to); err == nil {
		return fmt.Errorf("sqlite: backup to %s: the file exists", to)
	}
	if err := vacuumInto(ctx, s.path, to); err != nil {
		return fmt.Errorf("sqlite: backup to %s: %w", to, err)
	}
	return syncFile(to)
}

// vacuumInto writes a consistent copy of the database at from to the new
// file to, in a read transaction of a read-only connection of its own (the
// store's readers are query_only, which refuses VACUUM INTO).
func vacuumInto(ctx context.Context, from, to string) error {
	db, err := sql.Open("sqlite", "file:"+from+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, `VACUUM INTO ?`, to)
	return err
}

// Restore makes the database at path a copy of the backup from (a file
// made by Backup, or any consistent copy of a store, such as sqlite3's
// .backup), in a new incarnation. No engine may have the store at path
// open: Restore fails with ErrInUse if one has.
//
// The new incarnation is what makes a restore safe for consumers. A
// restored store hands out again the versions and KeySeqs that followed
// the backup, for commits that are not those consumers saw before it was
// restored; message IDs carry the incarnation, so broker-side dedup
// (Nats-Msg-Id, the sqltable sink's primary key, webhook Idempotency-Key)
// and outbox.Dedup take the new messages as new. A backup copied into
// place by hand keeps the old incarnation, and consumers drop the new
// messages as duplicates of ones they saw.
//
// Restore copies the backup beside path, gives the copy its new
// incarnation and syncs it, then removes the old database's -wal and -shm
// files and renames the copy over path. If it fails or the machine stops
// on the way, run it again.
func Restore(ctx context.Context, from, path string) error {
	if _, err := os.Stat(from); err != nil {
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	// Hold the file as an engine does, so that none starts meanwhile.
	d, err := openFile(path)
	if err != nil {
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	holder := new(Store)
	defer d.release(holder)
	if err := d.claim(holder); err != nil {
		return fmt.Errorf("sqlite: restore %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".restore-*")
	if err != nil {
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	name := tmp.Name()
	tmp.Close()
	os.Remove(name) // VACUUM INTO wants to create it
	defer os.Remove(name)
	if err := copyWithIncarnation(ctx, from, name); err != nil {
		return fmt.Errorf("sqlite: restore %s from %s: %w", path, from, err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		// They belong to the database being replaced: SQLite would read
		// the old log into the new file.
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sqlite: restore: %w", err)
		}
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("sqlite: restore: %w", err)
	}
	return syncFile(filepath.Dir(path))
}

// copyWithIncarnation copies the store in the file from into the new file
// to, which it gives a new incarnation, and syncs it.
func copyWithIncarnation(ctx context.Context, from, to string) error {
	if err := vacuumInto(ctx, from, to); err != nil {
		return err
	}
	dst, err := sql.Open("sqlite", to+"?_pragma=journal_mode(DELETE)&_pragma=synchronous(FULL)")
	if err != nil {
		return err
	}
	defer dst.Close()
	tx, err := dst.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var layout string
	if err := tx.QueryRowContext(ctx, `SELECT value FROM theus_meta WHERE name = 'schema'`).Scan(&layout); err != nil {
		return fmt.Errorf("not a Theus store: %w", err)
	}
	prev, err := readIncarnation(ctx, tx)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO theus_meta (name, value) VALUES ('incarnation', ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, strconv.FormatUint(newIncarnation(prev), 10)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return syncFile(to)
}

// syncFile syncs the file or directory at name.
func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
