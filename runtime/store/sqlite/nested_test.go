package sqlite_test

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/sqlite"
	"github.com/theus-go/theus/runtime/store/sqlite/internal/nested"
)

// nestedState reads the whole state of a nested engine.
func nestedState(eng *nested.Engine) (uint64, nested.User, []string) {
	snap := eng.Snapshot()
	return snap.Version(), snap.User().Clone(), snap.Audit().Clone()
}

// Processes that write below a state field (domain.user.email,
// domain.user.address) and one that replaces a map-valued field survive
// a restart, whether their commits were checkpointed or are replayed from
// the log; a map replaced in the log is not merged with the snapshot's.
func TestNestedPathWritesSurviveRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "nested.db")
	initial := nested.State{Domain: nested.DomainState{
		User: nested.User{ID: "u-1", Email: "a@x", Address: nested.Address{City: "Paris", Lines: []string{"1 rue A"}},
			Prefs: map[string]string{"lang": "fr", "tz": "CET"}},
	}}
	open := func() (*sqlite.Store, *nested.Engine) {
		st := open(t, path, sqlite.WithCheckpointEvery(0))
		eng, err := nested.NewEngine(ctx, initial, nested.App{}, engine.WithStore(st))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { eng.Close() })
		return st, eng
	}
	reopen := func(st *sqlite.Store, eng *nested.Engine, when string) (*sqlite.Store, *nested.Engine) {
		t.Helper()
		v, user, audit := nestedState(eng)
		eng.Close()
		st.Close()
		st, eng = open()
		gv, guser, gaudit := nestedState(eng)
		if gv != v || !reflect.DeepEqual(guser, user) || !reflect.DeepEqual(gaudit, audit) {
			t.Fatalf("%s: recovered version %d %+v %q, want version %d %+v %q", when, gv, guser, gaudit, v, user, audit)
		}
		return st, eng
	}
	st, eng := open()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(eng.ChangeEmail(ctx, nested.ChangeEmailArgs{Email: "b@x"}))
	must(eng.SetPrefs(ctx, nested.SetPrefsArgs{Prefs: map[string]string{"lang": "en"}}))
	st, eng = reopen(st, eng, "all in the log")

	if err := st.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	st, eng = reopen(st, eng, "all in the snapshot")

	must(eng.Move(ctx, nested.MoveArgs{City: "Lyon", Lines: []string{"2 place B", "3e étage"}}))
	must(eng.SetPrefs(ctx, nested.SetPrefsArgs{Prefs: map[string]string{"theme": "dark"}}))
	must(eng.ChangeEmail(ctx, nested.ChangeEmailArgs{Email: "c@x"}))
	st, eng = reopen(st, eng, "a snapshot and a log")

	_, user, audit := nestedState(eng)
	want := nested.User{ID: "u-1", Email: "c@x", Address: nested.Address{City: "Lyon", Lines: []string{"2 place B", "3e étage"}},
		Prefs: map[string]string{"theme": "dark"}}
	if !reflect.DeepEqual(user, want) || !reflect.DeepEqual(audit, []string{"moved to Lyon"}) {
		t.Fatalf("after the restarts: %+v %q, want %+v [moved to Lyon]", user, audit, want)
	}
	if msgs := undelivered(t, st); len(msgs) != 2 || msgs[1].KeySeq != 2 || msgs[1].Key != "u-1" {
		t.Fatalf("messages after the restarts: %+v", msgs)
	}
}
