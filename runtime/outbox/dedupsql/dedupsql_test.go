package dedupsql_test

import (
	"context"
	"database/sql"
	"fmt"
	"github.com/theus-go/theus/runtime/internal/servicetest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/outbox/dedupsql"
)

func openSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// openPostgres connects to THEUS_TEST_POSTGRES (see servicetest).
func openPostgres(t *testing.T) *sql.DB { return servicetest.Postgres(t) }

func m(topic, key string, seq uint64) outbox.Message {
	return outbox.Message{ID: outbox.MessageID(0, seq, 0), Topic: topic, Key: key, KeySeq: seq}
}

type step struct {
	msg   outbox.Message
	fresh bool
	gap   uint64
}

// Both the persisted Dedup and outbox.Dedup must give these answers.
var script = []step{
	{m("t", "a", 1), true, 0},
	{m("t", "a", 1), false, 0},
	{m("t", "a", 2), true, 0},
	{m("t", "b", 1), true, 0},
	{m("u", "a", 3), true, 2}, // another topic, same key: its own sequence
	{m("t", "a", 5), true, 2},
	{m("t", "a", 4), false, 0}, // late: below the mark
	{m("t", "a", 5), false, 0},
	{m("t", "", 1), true, 0},
	{m("t", "a", 0), false, 0},
}

// mi is a message of the store incarnation inc.
func mi(key string, inc, seq uint64) outbox.Message {
	return outbox.Message{ID: outbox.MessageID(inc, seq, 0), Topic: "r", Key: key, KeySeq: seq}
}

// incarnations: a store restored from a backup (a newer incarnation) hands
// out KeySeqs again; they are fresh, and messages of the older incarnation
// are not. Both the persisted Dedup and outbox.Dedup must give these answers.
var incarnations = []step{
	{mi("a", 0, 1), true, 0},
	{mi("a", 0, 5), true, 3},
	{mi("a", 7, 4), true, 0},  // restored at KeySeq 3: 4 is new again
	{mi("a", 7, 4), false, 0}, // and seen now
	{mi("a", 0, 6), false, 0}, // the old history, late: dropped
	{mi("a", 7, 6), true, 1},
	{mi("a", 9, 9), true, 2}, // a newer incarnation past the mark: the gap counts
	{mi("a", 7, 10), false, 0},
	{mi("b", 7, 1), true, 0},
	{mi("b", 7, 0), false, 0},
}

func run(t *testing.T, d *dedupsql.Dedup, steps []step) {
	t.Helper()
	mem := outbox.NewDedup()
	for i, s := range steps {
		fresh, gap, err := d.Observe(context.Background(), s.msg)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		mf, mg := mem.Observe(s.msg)
		if fresh != s.fresh || gap != s.gap || fresh != mf || gap != mg {
			t.Fatalf("step %d %s/%s#%d: (%v, %d), want (%v, %d); outbox.Dedup says (%v, %d)",
				i, s.msg.Topic, s.msg.Key, s.msg.KeySeq, fresh, gap, s.fresh, s.gap, mf, mg)
		}
	}
}

func TestSQLitePersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "consumer.db")
	db := openSQLite(t, path)
	d, err := dedupsql.New(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	run(t, d, script)
	db.Close()

	db = openSQLite(t, path)
	defer db.Close()
	d, err = dedupsql.New(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateTable(ctx); err != nil { // idempotent
		t.Fatal(err)
	}
	if last, err := d.Last(ctx, "t", "a"); err != nil || last != 5 {
		t.Fatalf("Last after reopen = %d, %v; want 5", last, err)
	}
	if last, err := d.Last(ctx, "t", "zzz"); err != nil || last != 0 {
		t.Fatalf("Last of unseen = %d, %v", last, err)
	}
	after := []step{
		{m("t", "a", 1), false, 0}, // duplicates of before the restart are dropped
		{m("t", "a", 5), false, 0},
		{m("t", "b", 1), false, 0},
		{m("u", "a", 3), false, 0},
		{m("t", "a", 6), true, 0},
		{m("t", "b", 4), true, 2}, // gap reported across the restart
		{m("u", "a", 4), true, 0},
	}
	for i, s := range after {
		fresh, gap, err := d.Observe(ctx, s.msg)
		if err != nil || fresh != s.fresh || gap != s.gap {
			t.Fatalf("after reopen, step %d: (%v, %d, %v), want (%v, %d)", i, fresh, gap, err, s.fresh, s.gap)
		}
	}
}

// A table made before incarnations existed gets its column from
// CreateTable, and its marks count as incarnation 0.
func testOldTable(t *testing.T, db *sql.DB, table, intType string) {
	ctx := context.Background()
	if _, err := db.Exec(`CREATE TABLE ` + table + ` (topic TEXT NOT NULL, "key" TEXT NOT NULL, last_seq ` + intType + ` NOT NULL, PRIMARY KEY (topic, "key"))`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO ` + table + ` VALUES ('r', 'a', 5)`); err != nil {
		t.Fatal(err)
	}
	d, err := dedupsql.New(db, dedupsql.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Observe(ctx, mi("a", 0, 6)); err == nil {
		t.Fatal("Observe on a table without the incarnation column succeeded")
	}
	for range 2 { // idempotent
		if err := d.CreateTable(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range []step{{mi("a", 0, 5), false, 0}, {mi("a", 0, 6), true, 0}, {mi("a", 3, 2), true, 0}, {mi("a", 0, 7), false, 0}} {
		fresh, gap, err := d.Observe(ctx, s.msg)
		if err != nil || fresh != s.fresh || gap != s.gap {
			t.Fatalf("old table, step %d: (%v, %d, %v), want (%v, %d)", i, fresh, gap, err, s.fresh, s.gap)
		}
	}
}

func TestSQLiteIncarnations(t *testing.T) {
	dir := t.TempDir()
	db := openSQLite(t, filepath.Join(dir, "consumer.db"))
	defer db.Close()
	d, err := dedupsql.New(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	run(t, d, incarnations)
	testOldTable(t, db, "old_dedup", "INTEGER")
}

func testObserveTx(t *testing.T, db *sql.DB, d *dedupsql.Dedup, effects string) {
	ctx := context.Background()
	insert := "INSERT INTO " + effects + " (id) VALUES (" + map[bool]string{true: "$1", false: "?"}[isPG(db)] + ")"

	// Rolled back: neither the effect nor the mark is kept.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	fresh, gap, err := d.ObserveTx(ctx, tx, m("t", "k", 1))
	if err != nil || !fresh || gap != 0 {
		t.Fatalf("ObserveTx = %v, %d, %v", fresh, gap, err)
	}
	if _, err := tx.ExecContext(ctx, insert, "k#1"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if last, err := d.Last(ctx, "t", "k"); err != nil || last != 0 {
		t.Fatalf("mark after rollback = %d, %v; want 0", last, err)
	}

	// Re-delivered, now committed with its effect.
	for round := range 2 {
		tx, err = db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		fresh, gap, err = d.ObserveTx(ctx, tx, m("t", "k", 1))
		if err != nil || fresh != (round == 0) || gap != 0 {
			t.Fatalf("round %d: ObserveTx = %v, %d, %v", round, fresh, gap, err)
		}
		if fresh {
			if _, err := tx.ExecContext(ctx, insert, "k#1"); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM " + effects).Scan(&n); err != nil || n != 1 {
		t.Fatalf("effects = %d, %v; want 1", n, err)
	}
	if last, _ := d.Last(ctx, "t", "k"); last != 1 {
		t.Fatalf("mark = %d, want 1", last)
	}
}

func isPG(db *sql.DB) bool { return fmt.Sprintf("%T", db.Driver()) != "*sqlite.Driver" }

func TestSQLiteObserveTxRollback(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "c.db"))
	defer db.Close()
	d, err := dedupsql.New(db, dedupsql.WithTable("main.my_dedup"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE effects (id TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	testObserveTx(t, db, d, "effects")
}

func TestNewValidates(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "c.db"))
	defer db.Close()
	for _, bad := range []string{"", "x;DROP TABLE y", "a.b.c", "1x", `"q"`} {
		if _, err := dedupsql.New(db, dedupsql.WithTable(bad)); err == nil {
			t.Errorf("WithTable(%q) accepted", bad)
		}
	}
	if _, err := dedupsql.New(nil); err == nil {
		t.Error("nil db accepted")
	}
}

// Concurrent consumers of one key: exactly one sees each message as fresh.
func testConcurrent(t *testing.T, d *dedupsql.Dedup) {
	const workers, msgs = 4, 20
	var mu sync.Mutex
	freshCount := map[uint64]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := uint64(1); s <= msgs; s++ {
				fresh, _, err := d.Observe(context.Background(), m("c", "k", s))
				if err != nil {
					t.Error(err)
					return
				}
				if fresh {
					mu.Lock()
					freshCount[s]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for s, n := range freshCount {
		if n != 1 {
			t.Errorf("KeySeq %d fresh %d times", s, n)
		}
	}
}

func TestSQLiteConcurrent(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "c.db"))
	defer db.Close()
	db.SetMaxOpenConns(1) // SQLite: one writer
	d, _ := dedupsql.New(db)
	if err := d.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	testConcurrent(t, d)
}

func TestPostgres(t *testing.T) {
	db := openPostgres(t)
	ctx := context.Background()
	suffix := time.Now().UnixNano()
	table := fmt.Sprintf("theus_dedup_test_%d", suffix)
	effects := fmt.Sprintf("theus_dedup_effects_%d", suffix)
	old := fmt.Sprintf("theus_dedup_old_%d", suffix)
	t.Cleanup(func() {
		db.Exec("DROP TABLE IF EXISTS " + table)
		db.Exec("DROP TABLE IF EXISTS " + effects)
		db.Exec("DROP TABLE IF EXISTS " + old)
	})
	d, err := dedupsql.New(db, dedupsql.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	run(t, d, script)
	run(t, d, incarnations)
	testOldTable(t, db, old, "BIGINT")
	// A second Dedup over the same table (a restarted consumer) remembers.
	d2, _ := dedupsql.New(db, dedupsql.WithTable(table))
	if fresh, _, err := d2.Observe(ctx, m("t", "a", 5)); err != nil || fresh {
		t.Fatalf("after restart: fresh=%v err=%v", fresh, err)
	}
	if _, err := db.Exec("CREATE TABLE " + effects + " (id TEXT PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	testObserveTx(t, db, d, effects)
	testConcurrent(t, d)
}

// A reserved word names a table like any other name.
func TestSQLiteReservedWordTable(t *testing.T) {
	db := openSQLite(t, filepath.Join(t.TempDir(), "consumer.db"))
	defer db.Close()
	for _, table := range []string{"order", "select", "main.user"} {
		d, err := dedupsql.New(db, dedupsql.WithTable(table))
		if err != nil {
			t.Fatal(err)
		}
		if err := d.CreateTable(context.Background()); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if fresh, _, err := d.Observe(context.Background(), m("t", "a", 1)); err != nil || !fresh {
			t.Fatalf("%s: Observe = %v, %v", table, fresh, err)
		}
		if last, err := d.Last(context.Background(), "t", "a"); err != nil || last != 1 {
			t.Fatalf("%s: Last = %d, %v", table, last, err)
		}
	}
}
