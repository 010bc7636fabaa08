package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// layout1 is the schema of a store of layout 1, as the first release of
// the store wrote it.
const layout1 = `
CREATE TABLE theus_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE theus_fields (path TEXT PRIMARY KEY, type TEXT NOT NULL, collection INTEGER NOT NULL, value BLOB, version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE theus_entries (path TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (path, key)) WITHOUT ROWID;
CREATE TABLE theus_messages (id TEXT PRIMARY KEY, version INTEGER NOT NULL, idx INTEGER NOT NULL, topic TEXT NOT NULL, key TEXT NOT NULL,
	key_seq INTEGER NOT NULL, payload BLOB NOT NULL, headers TEXT, created_at INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
	attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, delivered_at INTEGER) WITHOUT ROWID;
CREATE INDEX theus_messages_pending ON theus_messages (id) WHERE state = 'pending';
CREATE INDEX theus_messages_parked ON theus_messages (topic, key) WHERE state = 'parked';
CREATE INDEX theus_messages_delivered ON theus_messages (delivered_at) WHERE state = 'delivered';
CREATE TABLE theus_key_seqs (topic TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (topic, key)) WITHOUT ROWID;
INSERT INTO theus_meta VALUES ('schema', '1'), ('format', 'json'), ('version', '4');
INSERT INTO theus_fields VALUES ('domain.accounts', 'collection[string]Account{id string, owner string, balance int64}', 1, NULL, 4);
INSERT INTO theus_entries VALUES
	('domain.accounts', 'a', '{"id":"a","owner":"Ann","balance":7}', 3),
	('domain.accounts', 'b', '{"id":"b","owner":"Bob","balance":13}', 4);
INSERT INTO theus_messages (id, version, idx, topic, key, key_seq, payload, created_at, state, attempts, last_error, delivered_at) VALUES
	('0000000000000001-0000', 1, 0, 'account.opened', 'a', 1, '{}', 1, 'delivered', 0, NULL, 100),
	('0000000000000002-0000', 2, 0, 'account.opened', 'b', 1, '{}', 2, 'parked', 3, 'refused', NULL),
	('0000000000000003-0000', 3, 0, 'transfer.completed', 'a', 1, '{}', 3, 'pending', 1, 'timeout', NULL),
	('0000000000000004-0000', 4, 0, 'account.opened', 'b', 2, '{}', 4, 'pending', 0, NULL, NULL);
INSERT INTO theus_key_seqs VALUES ('account.opened', 'a', 1);
`

// A store of layout 1 is upgraded when opened: its state becomes the
// snapshot of a checkpoint, its messages keep their states, attempts and
// KeySeqs.
func TestUpgradeFromLayout1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(layout1); err != nil {
		t.Fatal(err)
	}
	db.Close()

	st := open(t, path, sqlite.WithClock(func() time.Time { return time.Unix(0, 200) }), sqlite.WithRetention(50))
	eng := newBank(t, st, bank.State{})
	if v, got := eng.Snapshot().Version(), balances(eng); v != 4 || len(got) != 2 || got["a"].Balance != 7 || got["b"].Owner != "Bob" {
		t.Fatalf("upgraded store: version %d, accounts %v", v, got)
	}
	msgs := undelivered(t, st)
	if len(msgs) != 1 || msgs[0].Version != 3 {
		t.Fatalf("undelivered after the upgrade: %+v (b's message is held back by its parked one)", msgs)
	}
	parked, err := st.Parked(ctx)
	if err != nil || len(parked) != 1 || parked[0].Version != 2 || parked[0].Attempts != 3 || parked[0].LastError != "refused" {
		t.Fatalf("parked after the upgrade: %+v, %v", parked, err)
	}
	// KeySeqs go on, and the delivered message is pruned.
	r, err := eng.OpenAccount(ctx, bank.OpenAccountArgs{ID: "c", Owner: "Cy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "a", To: "c", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	all := undelivered(t, st)
	if last := all[len(all)-1]; r.Version != 5 || last.Key != "a" || last.KeySeq != 2 {
		t.Fatalf("after the upgrade: version %d, last message %+v", r.Version, last)
	}
	if n, err := st.Prune(ctx); n != 1 || err != nil {
		t.Fatalf("Prune = %d, %v; want the delivered message of layout 1", n, err)
	}
	want := balances(eng)
	eng.Close()
	st.Close()
	st = open(t, path)
	eng = newBank(t, st, bank.State{})
	if got := balances(eng); eng.Snapshot().Version() != 6 || got["a"] != want["a"] || len(got) != 3 {
		t.Fatalf("reopened: version %d, %v", eng.Snapshot().Version(), got)
	}
	var m outbox.Message
	for _, u := range undelivered(t, st) {
		m = u
	}
	if m.Version != 6 {
		t.Fatalf("last message after reopening: %+v", m)
	}
}
