package main

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// The demo on SQLite, twice on one data directory, through an embedded
// nats-server (a new stream each run): the second run recovers the first's
// state and the summary holds across runs.
func TestQuickstartTwiceOnSQLite(t *testing.T) {
	dir := t.TempDir()
	cfg := config{workers: 4, updates: 50, logins: 20, timeout: time.Minute, data: dir}
	var first summary
	for i := range 2 {
		var out strings.Builder
		s, err := run(context.Background(), cfg, &out)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, out.String())
		}
		if s.Lost != 0 || s.Duplicates != 0 || s.Gaps != 0 || s.Committed != 4*50 || s.Unique != s.Committed {
			t.Fatalf("run %d: summary %+v\n%s", i, s, out.String())
		}
		if i == 0 {
			first = s
			continue
		}
		if s.StartVersion != first.Version || s.Version != first.Version+s.Commits {
			t.Fatalf("second run started at %d, ended at %d; the first ended at %d", s.StartVersion, s.Version, first.Version)
		}
		if !strings.Contains(out.String(), "NATS JetStream (embedded nats-server") || strings.Count(out.String(), "\nreceived:") != 3 {
			t.Fatalf("run %d did not go through the embedded nats-server or print the first events:\n%s", i, out.String())
		}
		if !strings.Contains(out.String(), "logins 160") {
			t.Fatalf("logins did not accumulate over the two runs:\n%s", out.String())
		}
	}
}

// The quickstart's state (a nested struct with a slice, an int and a
// global) and its outbox survive closing and reopening the store.
func TestQuickstartStateRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "theus.db")
	initial := State{
		Domain: DomainState{User: User{ID: "u-1", Email: "a@x", Verified: true, Tags: []string{"t1", "t2"}}, Logins: 3},
		Global: GlobalState{MaxEmailLen: 100},
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := NewEngine(ctx, initial, app{}, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	for _, email := range []string{"b@x", "c@x"} {
		if _, err := eng.UpdateUserEmail(ctx, UpdateUserEmailArgs{Email: email}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eng.RecordLogin(ctx, RecordLoginArgs{}); err != nil {
		t.Fatal(err)
	}
	var p Patch
	p.SetMaxEmailLen(50)
	if _, err := eng.CompareAndSwap(ctx, 3, p); err != nil {
		t.Fatal(err)
	}
	snap := eng.Snapshot()
	want := struct {
		User      User
		Logins, L int
		V         uint64
	}{snap.User().Clone(), snap.Logins(), snap.MaxEmailLen(), snap.Version()}
	eng.Close()
	st.Close()

	st2, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	eng2, err := NewEngine(ctx, State{}, app{}, engine.WithStore(st2))
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Close()
	s2 := eng2.Snapshot()
	got := struct {
		User      User
		Logins, L int
		V         uint64
	}{s2.User().Clone(), s2.Logins(), s2.MaxEmailLen(), s2.Version()}
	if !reflect.DeepEqual(got, want) || got.User.Email != "c@x" || got.L != 50 || got.Logins != 4 {
		t.Fatalf("recovered %+v, want %+v", got, want)
	}
	r, err := eng2.UpdateUserEmail(ctx, UpdateUserEmailArgs{Email: "d@x"})
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := st2.Undelivered(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[2].ID != r.MessageIDs[0] || msgs[2].KeySeq != 3 || msgs[0].KeySeq != 1 {
		t.Fatalf("outbox after reopening: %+v", msgs)
	}
}
