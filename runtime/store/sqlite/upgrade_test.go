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

// toLayout2 turns a store of the current layout into what layout 2 held:
// delivered messages in theus_delivered, theus_key_seqs kept up to the
// last delivered message of each key, no cursor.
const toLayout2 = `
CREATE TABLE theus_delivered (id TEXT PRIMARY KEY, version INTEGER NOT NULL, idx INTEGER NOT NULL, topic TEXT NOT NULL, key TEXT NOT NULL,
	key_seq INTEGER NOT NULL, payload BLOB NOT NULL, headers TEXT, created_at INTEGER NOT NULL, attempts INTEGER NOT NULL,
	last_error TEXT, delivered_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX theus_delivered_at ON theus_delivered (delivered_at);
INSERT INTO theus_delivered SELECT id, version, idx, topic, key, key_seq, payload, headers, created_at, attempts, last_error, 100
	FROM theus_outbox WHERE state = 'delivered' OR (state = 'pending' AND id <= (SELECT value FROM theus_meta WHERE name = 'cursor'));
DELETE FROM theus_outbox WHERE id IN (SELECT id FROM theus_delivered);
DELETE FROM theus_key_seqs;
INSERT INTO theus_key_seqs SELECT topic, key, max(key_seq) FROM theus_delivered GROUP BY topic, key;
DROP VIEW theus_messages;
DROP INDEX theus_outbox_held;
DROP INDEX theus_outbox_ready;
DROP INDEX theus_outbox_delivered;
ALTER TABLE theus_outbox DROP COLUMN delivered_at;
DROP TABLE theus_acks;
ALTER TABLE theus_log DROP COLUMN commits;
ALTER TABLE theus_log DROP COLUMN at;
DELETE FROM theus_meta WHERE name IN ('cursor', 'folded');
UPDATE theus_meta SET value = '2' WHERE name = 'schema';
CREATE VIEW theus_messages AS
	SELECT id, version, idx, topic, key, key_seq, payload, headers, created_at, state, attempts, last_error, NULL AS delivered_at
	FROM theus_outbox
	UNION ALL
	SELECT id, version, idx, topic, key, key_seq, payload, headers, created_at, 'delivered', attempts, last_error, delivered_at
	FROM theus_delivered;
`

// A store of layout 2 is upgraded when opened: its delivered messages
// become messages marked delivered, the others keep their states and
// attempts, KeySeqs go on, and retention prunes the delivered ones.
func TestUpgradeFromLayout2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	st := open(t, path)
	eng := newBank(t, st, accounts(3, 100))
	for _, from := range []string{"acc-000", "acc-001", "acc-000", "acc-002", "acc-000", "acc-001"} {
		to := "acc-002"
		if from == to {
			to = "acc-000"
		}
		if _, err := eng.Transfer(ctx, bank.TransferArgs{From: from, To: to, Amount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	msgs := undelivered(t, st) // acc-000 #1, acc-001 #1, acc-000 #2, acc-002 #1, acc-000 #3, acc-001 #2
	if err := st.Ack(ctx, []string{msgs[0].ID, msgs[3].ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Failed(ctx, msgs[1].ID, "refused", true, 0); err != nil { // parks acc-001
		t.Fatal(err)
	}
	eng.Close()
	st.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(toLayout2); err != nil {
		t.Fatal(err)
	}
	var delivered int
	if err := db.QueryRow(`SELECT count(*) FROM theus_delivered`).Scan(&delivered); err != nil || delivered != 2 {
		t.Fatalf("the layout-2 store holds %d delivered messages (%v), want 2", delivered, err)
	}
	db.Close()

	st = open(t, path, sqlite.WithClock(func() time.Time { return time.Unix(0, 200) }), sqlite.WithRetention(50))
	eng = newBank(t, st, bank.State{})
	got := undelivered(t, st)
	if len(got) != 2 || got[0].ID != msgs[2].ID || got[1].ID != msgs[4].ID {
		t.Fatalf("undelivered after the upgrade: %v, want acc-000's #2 and #3 (acc-001 is parked)", got)
	}
	parked, err := st.Parked(ctx)
	if err != nil || len(parked) != 1 || parked[0].ID != msgs[1].ID || parked[0].Attempts != 1 || parked[0].LastError != "refused" {
		t.Fatalf("parked after the upgrade: %+v, %v", parked, err)
	}
	r, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-002", To: "acc-000", Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	all := undelivered(t, st)
	if last := all[len(all)-1]; last.ID != r.MessageIDs[0] || last.KeySeq != 2 {
		t.Fatalf("after the upgrade, acc-002's next message is %+v, want KeySeq 2", last)
	}
	if n, err := st.Prune(ctx); n != 2 || err != nil {
		t.Fatalf("Prune = %d, %v; want the 2 messages layout 2 delivered", n, err)
	}
	if _, err := st.Replay(ctx, "transfer.completed", "acc-001"); err != nil {
		t.Fatal(err)
	}
	if got := undelivered(t, st); len(got) != 5 || got[0].ID != msgs[1].ID || got[4].ID != r.MessageIDs[0] {
		t.Fatalf("after replaying acc-001: %v", got)
	}
}
