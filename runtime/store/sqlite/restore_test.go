package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/sqltable"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// consumer is what a service downstream of the relay does: it copies
// every message into a table of its own (the sqltable sink, which drops a
// message whose ID it holds) and deduplicates them by KeySeq (outbox.Dedup).
type consumer struct {
	table *sqltable.Sink
	db    *sql.DB
	dedup *outbox.Dedup
	fresh []outbox.Message // what Dedup took as new, in order
}

func newConsumer(t *testing.T, path string) *consumer {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	table, err := sqltable.New(db, "events")
	if err != nil {
		t.Fatal(err)
	}
	if err := table.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &consumer{table: table, db: db, dedup: outbox.NewDedup()}
}

func (c *consumer) Send(ctx context.Context, batch []outbox.Message) (int, error) {
	n, err := c.table.Send(ctx, batch)
	for _, m := range batch[:n] {
		if fresh, _ := c.dedup.Observe(m); fresh {
			c.fresh = append(c.fresh, m)
		}
	}
	return n, err
}

func (c *consumer) rows(t *testing.T) int {
	t.Helper()
	var n int
	if err := c.db.QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// deliverAll runs a relay from st to sink until st holds nothing
// undelivered.
func deliverAll(t *testing.T, st *sqlite.Store, sink outbox.Sink) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := outbox.NewRelay(untilEmpty{st, cancel}, sink).Run(ctx); err != nil {
		t.Fatal(err)
	}
	if left := undelivered(t, st); len(left) != 0 {
		t.Fatalf("%d messages left undelivered", len(left))
	}
}

// untilEmpty is a store whose relay stops once it finds nothing to send:
// the relay reads again only after it acked what it sent.
type untilEmpty struct {
	*sqlite.Store
	stop func()
}

func (s untilEmpty) Undelivered(ctx context.Context, n int) ([]outbox.Message, error) {
	msgs, err := s.Store.Undelivered(ctx, n)
	if err == nil && len(msgs) == 0 {
		s.stop()
	}
	return msgs, err
}

// A store restored from a backup hands out again the versions and KeySeqs
// that followed the backup. Restore starts a new incarnation, so the new
// messages reach a consumer that saw the old ones: neither the sqltable
// sink (ON CONFLICT (id) DO NOTHING) nor Dedup takes them for duplicates.
// A message that was undelivered in the backup keeps its ID and is still
// recognised as a duplicate.
func TestRestoreStartsANewIncarnation(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, backup := filepath.Join(dir, "bank.db"), filepath.Join(dir, "backup.db")
	c := newConsumer(t, filepath.Join(dir, "consumer.db"))

	st := open(t, path)
	eng := newBank(t, st, accounts(2, 100))
	oldInc := st.Incarnation()
	if oldInc == 0 {
		t.Fatal("a new store has incarnation 0")
	}
	transfers(t, eng, 2) // KeySeq 1, 2 of acc-000
	deliverAll(t, st, c)
	transfers(t, eng, 1) // KeySeq 3, undelivered in the backup
	if err := st.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	if err := st.Backup(ctx, backup); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a second backup to the same file: %v", err)
	}
	transfers(t, eng, 2) // KeySeq 4, 5: taken back by the restore
	deliverAll(t, st, c)
	if c.rows(t) != 5 || len(c.fresh) != 5 {
		t.Fatalf("before the restore: %d rows, %d fresh messages, want 5", c.rows(t), len(c.fresh))
	}
	if err := sqlite.Restore(ctx, backup, path); !errors.Is(err, sqlite.ErrInUse) {
		t.Fatalf("Restore over a store an engine has open: %v, want ErrInUse", err)
	}
	eng.Close()
	st.Close()

	if err := sqlite.Restore(ctx, backup, path); err != nil {
		t.Fatal(err)
	}
	st = open(t, path)
	eng = newBank(t, st, bank.State{})
	if v := eng.Snapshot().Version(); v != 3 {
		t.Fatalf("restored at version %d, want the backup's 3", v)
	}
	if st.Incarnation() <= oldInc {
		t.Fatalf("restored incarnation %d, want more than %d", st.Incarnation(), oldInc)
	}
	transfers(t, eng, 2) // versions 4, 5 and KeySeqs 4, 5 again
	deliverAll(t, st, c)

	if c.rows(t) != 7 {
		t.Fatalf("the consumer's table holds %d rows, want 7: the new messages were taken for old ones", c.rows(t))
	}
	if len(c.fresh) != 7 {
		t.Fatalf("Dedup took %d messages as fresh, want 7", len(c.fresh))
	}
	for _, m := range c.fresh[5:] {
		if m.Incarnation() != st.Incarnation() || m.Version < 4 || m.KeySeq != m.Version {
			t.Fatalf("new message %s (KeySeq %d, version %d) is not of the restored history", m.ID, m.KeySeq, m.Version)
		}
	}
	// Restoring the same backup again starts yet another incarnation.
	inc := st.Incarnation()
	eng.Close()
	st.Close()
	if err := sqlite.Restore(ctx, backup, path); err != nil {
		t.Fatal(err)
	}
	st = open(t, path)
	if st.Incarnation() <= inc {
		t.Fatalf("second restore: incarnation %d, want more than %d", st.Incarnation(), inc)
	}
}

// Restore replaces the old database's write-ahead log with nothing of it:
// a log left beside the restored file would be read into it.
func TestRestoreDropsTheOldLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, backup := filepath.Join(dir, "bank.db"), filepath.Join(dir, "backup.db")
	st := open(t, path, sqlite.WithCheckpointEvery(0))
	eng := newBank(t, st, accounts(2, 100))
	transfers(t, eng, 1)
	if err := st.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	transfers(t, eng, 3)
	// A process killed now leaves the log of its last commits beside the
	// file: copy it aside before Close folds it in, and put it back.
	wal, err := os.ReadFile(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	eng.Close()
	st.Close()
	if err := os.WriteFile(path+"-wal", wal, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.Restore(ctx, backup, path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the old log is still there: %v", err)
	}
	st = open(t, path)
	eng = newBank(t, st, bank.State{})
	if v := eng.Snapshot().Version(); v != 1 {
		t.Fatalf("restored at version %d, want the backup's 1", v)
	}
	if got := balances(eng); got["acc-000"].Balance != 99 {
		t.Fatalf("restored balances %+v", got)
	}
}

// Restore refuses a file that is not a store, and leaves the target as
// it was.
func TestRestoreRefusesWhatIsNotAStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, other := filepath.Join(dir, "bank.db"), filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st := open(t, path)
	eng := newBank(t, st, accounts(2, 100))
	transfers(t, eng, 1)
	eng.Close()
	st.Close()
	if err := sqlite.Restore(ctx, other, path); err == nil || !strings.Contains(err.Error(), "not a Theus store") {
		t.Fatalf("Restore from a database that is no store: %v", err)
	}
	if err := sqlite.Restore(ctx, filepath.Join(dir, "missing.db"), path); err == nil {
		t.Fatal("Restore from a missing file succeeded")
	}
	st = open(t, path)
	eng = newBank(t, st, bank.State{})
	if v := eng.Snapshot().Version(); v != 1 {
		t.Fatalf("after refused restores the store is at version %d, want 1", v)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".restore-") {
			t.Fatalf("a refused restore left %s behind", e.Name())
		}
	}
}
