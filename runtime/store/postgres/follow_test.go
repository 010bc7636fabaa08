package postgres_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// stateOf returns an engine's version and accounts.
func stateOf(eng *bank.Engine) (uint64, map[string]bank.Account) {
	s := eng.Snapshot()
	out := map[string]bank.Account{}
	for id, v := range s.Accounts().All() {
		out[id] = bank.Account{ID: v.ID(), Owner: v.Owner(), Balance: v.Balance()}
	}
	return s.Version(), out
}

// sameState fails t unless the engines hold the same version and accounts.
func sameState(t interface{ Fatalf(string, ...any) }, names []string, engines ...*bank.Engine) {
	v0, s0 := stateOf(engines[0])
	for i, e := range engines[1:] {
		v, s := stateOf(e)
		if v != v0 || !maps.Equal(s, s0) {
			t.Fatalf("%s holds version %d %v, %s version %d %v", names[0], v0, s0, names[i+1], v, s)
		}
	}
}

// syncAll waits until every engine has applied every durable commit.
func syncAll(ctx context.Context, t interface{ Fatalf(string, ...any) }, engines ...*bank.Engine) {
	for _, e := range engines {
		if err := e.Sync(ctx); err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
}

// An idle instance that applies other instances' commits from the
// notifications' payloads ends with the state of one that reads them
// from the log (WithNotifyValues(false)), and of the instance that made
// them, whatever the commits: small ones, ones too large for a payload
// (read from the log), ones of the idle instance itself.
func TestFollowNoticesMatchLog(t *testing.T) {
	fewerChecks(t, 8)
	rapid.Check(t, func(rt *rapid.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		schema := freshSchema(t)
		var closers []func()
		defer func() {
			for _, c := range closers {
				c()
			}
		}()
		open := func(opts ...postgres.Option) *bank.Engine {
			st, err := postgres.Open(ctx, testDSN(), append([]postgres.Option{postgres.WithSchema(schema), postgres.WithPollInterval(time.Hour)}, opts...)...)
			if err != nil {
				rt.Fatal(err)
			}
			eng, err := bank.NewEngine(ctx, accounts(3, 50), bank.Bank{}, engine.WithStore(st))
			if err != nil {
				st.Close()
				rt.Fatal(err)
			}
			closers = append(closers, func() { eng.Close(); st.Close() })
			return eng
		}
		a, b, c := open(), open(), open(postgres.WithNotifyValues(false))
		bs := b.Store().(*postgres.Store)
		// Until b's listener hears a, and takes a commit from a payload.
		for i := 0; bs.NoticeCommits() == 0; i++ {
			if i == 200 {
				rt.Fatal("200 commits and b took none from a notification")
			}
			if _, err := a.Deposit(ctx, bank.DepositArgs{ID: accountID(0), Amount: 1}); err != nil {
				rt.Fatal(err)
			}
			syncAll(ctx, rt, b)
		}
		opened := 0
		for _, op := range rapid.SliceOfN(rapid.IntRange(0, 4), 1, 25).Draw(rt, "ops") {
			var err error
			switch op {
			case 0:
				_, err = a.Deposit(ctx, bank.DepositArgs{ID: accountID(rapid.IntRange(0, 2).Draw(rt, "acc")), Amount: 1 + int64(rapid.IntRange(0, 9).Draw(rt, "amount"))})
			case 1:
				from := rapid.IntRange(0, 2).Draw(rt, "from")
				_, err = a.Transfer(ctx, bank.TransferArgs{From: accountID(from), To: accountID((from + 1) % 3), Amount: 1})
			case 2, 3:
				owner := rapid.String().Draw(rt, "owner")
				if op == 3 {
					owner = strings.Repeat(owner+"é", 9000/(len(owner)+2)+1) // no payload holds it
				}
				_, err = a.OpenAccount(ctx, bank.OpenAccountArgs{ID: fmt.Sprintf("new-%d", opened), Owner: owner, Initial: 5})
				opened++
			case 4:
				_, err = b.Deposit(ctx, bank.DepositArgs{ID: accountID(0), Amount: 3})
			}
			if err != nil && !errorsIsRule(err) {
				rt.Fatal(err)
			}
			if rapid.Bool().Draw(rt, "sync") {
				syncAll(ctx, rt, b, c)
				sameState(rt, []string{"b (payloads)", "c (log)"}, b, c)
			}
		}
		syncAll(ctx, rt, a, b, c)
		sameState(rt, []string{"a", "b (payloads)", "c (log)"}, a, b, c)
		if n := c.Store().(*postgres.Store).NoticeCommits(); n != 0 {
			rt.Fatalf("c, WithNotifyValues(false), took %d commits from payloads", n)
		}
	})
}

// A notification whose payload the store's key does not open (another
// schema's, replayed on this one's channel by any role that can connect)
// is not applied: the instance reads the log, and ends with the state the
// database holds.
func TestFollowIgnoresForeignNotice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s1, s2 := freshSchema(t), freshSchema(t)
	a := newBank(t, openStore(t, s1), accounts(2, 50))
	bs := openStore(t, s1, postgres.WithPollInterval(time.Hour))
	b := newBank(t, bs, accounts(2, 50))
	x := newBank(t, openStore(t, s2), accounts(2, 50))
	// x notifies, with its commits, once another Store listens on s2.
	pool := userPool(t)
	openStore(t, s2).Notify()
	waitListeners(ctx, t, pool, s2, 2)
	// Until b's listener hears a, and takes a commit from a payload.
	var head uint64
	for i := 0; bs.NoticeCommits() == 0; i++ {
		if i == 200 {
			t.Fatal("200 commits and b took none from a notification")
		}
		r, err := a.Deposit(ctx, bank.DepositArgs{ID: accountID(0), Amount: 1})
		if err != nil {
			t.Fatal(err)
		}
		head = r.Version
		syncAll(ctx, t, b)
	}
	for {
		r, err := x.Deposit(ctx, bank.DepositArgs{ID: accountID(0), Amount: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.Version == head {
			break
		}
	}

	// Version head+1 of s2, as its notification carries it.
	conn := listenCommits(ctx, t, pool, s2)
	if _, err := x.Deposit(ctx, bank.DepositArgs{ID: accountID(1), Amount: 40}); err != nil {
		t.Fatal(err)
	}
	n, err := conn.Conn().WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d %d ", head+1, head+1); !strings.HasPrefix(n.Payload, want) {
		t.Fatalf("s2's notification of version %d is %.20q…, want one that carries the commit", head+1, n.Payload)
	}
	// Replayed on s1's channel before s1's own version head+1.
	if _, err := pool.Exec(ctx, `SELECT pg_notify($1, $2)`, s1+"_commits", n.Payload); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Deposit(ctx, bank.DepositArgs{ID: accountID(0), Amount: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Deposit(ctx, bank.DepositArgs{ID: accountID(1), Amount: 2}); err != nil {
		t.Fatal(err)
	}
	syncAll(ctx, t, b)
	sameState(t, []string{"a", "b"}, a, b)
	if _, got := stateOf(b); got[accountID(1)].Balance != 52 {
		t.Fatalf("b holds %s at %d, want 52", accountID(1), got[accountID(1)].Balance)
	}
}

// errorsIsRule tells whether err is the invariant's refusal (a transfer
// from an empty account), which the tests above may provoke.
func errorsIsRule(err error) bool { return errors.Is(err, engine.ErrRuleViolation) }

// An instance recovers exactly the entries the store holds, whatever
// their order in the table (shuffled, then partly rewritten, so that
// PostgreSQL returns them out of key order) and the head version.
func TestRecoverLargeCollection(t *testing.T) {
	const n = 30_000
	schema := freshSchema(t)
	head := fillAccounts(t, schema, n, true)
	db, _ := testDBs.Load(t)
	if _, err := db.(*sql.DB).Exec(`UPDATE ` + schema + `.theus_entries
		SET value = convert_to(replace(convert_from(value, 'UTF8'), '"balance":', '"balance":7'), 'UTF8')
		WHERE key LIKE '%3'`); err != nil {
		t.Fatal(err)
	}
	want := map[string]bank.Account{}
	rows, err := db.(*sql.DB).Query(`SELECT key, value FROM ` + schema + `.theus_entries`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		var a bank.Account
		if err := json.Unmarshal(v, &a); err != nil {
			t.Fatal(err)
		}
		want[k] = a
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(want) != n {
		t.Fatalf("the fixture holds %d entries, want %d", len(want), n)
	}
	eng := newBank(t, openStore(t, schema), bank.State{})
	v, got := stateOf(eng)
	if v != head {
		t.Fatalf("recovered version %d, want %d", v, head)
	}
	if !maps.Equal(got, want) {
		missing, wrong := 0, 0
		for k, w := range want {
			if g, ok := got[k]; !ok {
				missing++
			} else if g != w {
				wrong++
			}
		}
		t.Fatalf("recovered %d entries, want %d: %d missing, %d with another value", len(got), len(want), missing, wrong)
	}
	// Lookups find every entry: the collection is ordered by key.
	accts := eng.Snapshot().Accounts()
	for k, w := range want {
		if g, ok := accts.Get(k); !ok || g.Balance() != w.Balance {
			t.Fatalf("Get(%q) = %v, %v; want balance %d", k, g, ok, w.Balance)
		}
	}
}

// A commit too large for a notification's payload reaches an idle
// instance all the same: the notification names its version, and the
// instance reads the log.
func TestFollowReadsTheLogForLargeCommits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	schema := freshSchema(t)
	a := newBank(t, openStore(t, schema), accounts(1, 50))
	bs := openStore(t, schema, postgres.WithPollInterval(time.Hour))
	b := newBank(t, bs, accounts(1, 50))
	for i := 0; bs.NoticeCommits() == 0; i++ { // until b hears a
		if i == 200 {
			t.Fatal("200 commits and b took none from a notification")
		}
		if _, err := a.Deposit(ctx, bank.DepositArgs{ID: accountID(0), Amount: 1}); err != nil {
			t.Fatal(err)
		}
		syncAll(ctx, t, b)
	}
	owner := strings.Repeat("x", 10_000)
	if _, err := a.OpenAccount(ctx, bank.OpenAccountArgs{ID: "big", Owner: owner, Initial: 1}); err != nil {
		t.Fatal(err)
	}
	syncAll(ctx, t, b)
	sameState(t, []string{"a", "b"}, a, b)
}
