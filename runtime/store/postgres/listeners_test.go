package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// listenCommits returns a connection of pool that listens to schema's
// commits, released when t ends.
func listenCommits(ctx context.Context, t *testing.T, pool *pgxpool.Pool, schema string) *pgxpool.Conn {
	t.Helper()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Release)
	if _, err := conn.Exec(ctx, `LISTEN `+schema+`_commits`); err != nil {
		t.Fatal(err)
	}
	return conn
}

// waitListeners waits until schema has n live registrations of
// listeners.
func waitListeners(ctx context.Context, t *testing.T, pool *pgxpool.Pool, schema string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.theus_listeners WHERE expires > clock_timestamp()`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d listeners registered, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// firstNotice commits with deposit, then notifies a marker on channel
// and returns the first notification conn hears: the marker if the
// commit notified nothing, since notifications arrive in commit order.
func firstNotice(ctx context.Context, t *testing.T, conn *pgxpool.Conn, pool *pgxpool.Pool, channel string, deposit func()) string {
	t.Helper()
	deposit()
	if _, err := pool.Exec(ctx, `SELECT pg_notify($1, 'marker')`, channel); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Conn().WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n.Payload != "marker" {
		// Drain up to the marker, for the next call.
		for {
			m, err := conn.Conn().WaitForNotification(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Payload == "marker" {
				break
			}
		}
	}
	return n.Payload
}

// An instance notifies its commits only while another Store listens:
// alone, it sends nothing; with a second instance, every group (the first
// naming its version only, having built no payload while alone); once
// that one has closed, nothing again.
func TestGroupsNotifyOnlyOtherListeners(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	schema := freshSchema(t)
	pool := userPool(t)
	a := newBank(t, openStore(t, schema), accounts(2, 50))
	waitListeners(ctx, t, pool, schema, 1) // a's own
	conn := listenCommits(ctx, t, pool, schema)
	var head uint64
	deposit := func() {
		r, err := a.Deposit(ctx, bank.DepositArgs{ID: accountID(0), Amount: 1})
		if err != nil {
			t.Fatal(err)
		}
		head = r.Version
	}
	if got := firstNotice(ctx, t, conn, pool, schema+"_commits", deposit); got != "marker" {
		t.Fatalf("alone, a commit notified %.20q…", got)
	}

	bs := openStore(t, schema)
	b := newBank(t, bs, accounts(2, 50))
	waitListeners(ctx, t, pool, schema, 2)
	// The group after one that notified nobody names its version only
	// (b reads the log); the next carries its commit.
	if got := firstNotice(ctx, t, conn, pool, schema+"_commits", deposit); got != fmt.Sprint(head) {
		t.Fatalf("with another instance listening, version %d notified %.20q…, want its version only", head, got)
	}
	if got := firstNotice(ctx, t, conn, pool, schema+"_commits", deposit); !strings.HasPrefix(got, fmt.Sprintf("%d %d ", head, head)) {
		t.Fatalf("version %d notified %.20q…, want one that carries the commit", head, got)
	}
	syncAll(ctx, t, b)
	if v := b.Snapshot().Version(); v != head {
		t.Fatalf("b is at version %d, want %d", v, head)
	}

	b.Close()
	bs.Close()
	waitListeners(ctx, t, pool, schema, 1)
	if got := firstNotice(ctx, t, conn, pool, schema+"_commits", deposit); got != "marker" {
		t.Fatalf("alone again, a commit notified %.20q…", got)
	}
}

// A listener registers only once the group that holds the head row has
// committed: that group may have decided not to notify, and the listener
// reads the log after registering, so it sees it.
func TestListenerRegistersAfterTheGroupHoldingTheHead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	schema := freshSchema(t)
	pool := userPool(t)
	openStore(t, schema).Close() // the tables
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var xid string
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text FROM `+schema+`.theus_head WHERE id = 1 FOR UPDATE`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, schema)
	st.Notify() // starts the listener, which registers
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid' AND transactionid::text = $1`, xid).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the listener's registration does not wait for the transaction that holds the head row")
		}
		time.Sleep(time.Millisecond)
	}
	waitListeners(ctx, t, pool, schema, 0)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	waitListeners(ctx, t, pool, schema, 1)
}

// A listener whose registration expired (its process stalled) registers
// again at its next beat and reads the log for what it was not told.
func TestExpiredListenerRegistersAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	schema := freshSchema(t)
	pool := userPool(t)
	a := newBank(t, openStore(t, schema), accounts(2, 50))
	bs := openStore(t, schema, postgres.WithPollInterval(time.Hour))
	b := newBank(t, bs, accounts(2, 50))
	waitListeners(ctx, t, pool, schema, 2)
	if _, err := pool.Exec(ctx, `UPDATE `+schema+`.theus_listeners SET expires = clock_timestamp() - interval '1 second' WHERE id = $1`, bs.Listener()); err != nil {
		t.Fatal(err)
	}
	r, err := a.Deposit(ctx, bank.DepositArgs{ID: accountID(0), Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Renew(ctx); err != nil {
		t.Fatal(err)
	}
	waitListeners(ctx, t, pool, schema, 2)
	syncAll(ctx, t, b)
	if v := b.Snapshot().Version(); v < r.Version {
		t.Fatalf("b is at version %d after its beat, want %d", v, r.Version)
	}
}
