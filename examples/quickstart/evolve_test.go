package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// earlierUser is domain.user as an earlier contract declared it: no
// verified flag yet, and a nickname since removed.
type earlierUser struct {
	ID       string   `json:"id"`
	Email    string   `json:"email"`
	Nickname string   `json:"nickname"`
	Tags     []string `json:"tags"`
}

type earlierState struct {
	User   earlierUser
	Logins int32
	Max    int
}

// A compatible change of the contract survives a restart: data written by
// an earlier contract (domain.user without verified, with a nickname;
// domain.logins an int32) is recovered by this one, the new field at its
// zero value, the removed one ignored, the widened integer kept, and
// the engine goes on committing and restarting.
func TestCompatibleChangeSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "theus.db")
	earlier := &engine.Schema[earlierState]{
		Paths: []string{"domain.logins"},
		Clone: func(s *earlierState) earlierState { return *s },
		State: []engine.StateField[earlierState]{
			engine.ValueField("domain.user", "User{id string, email string, nickname string, tags []string}", func(s *earlierState) *earlierUser { return &s.User }),
			engine.ValueField("domain.logins", "int32", func(s *earlierState) *int32 { return &s.Logins }),
			engine.ValueField("global.max_email_len", "int", func(s *earlierState) *int { return &s.Max }),
		},
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := engine.New(ctx, earlier, earlierState{User: earlierUser{ID: "u-1", Email: "a@x", Nickname: "al", Tags: []string{"t"}}, Logins: 7, Max: 64}, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.CompareAndSwap(ctx, 0, setLogins(8)); err != nil {
		t.Fatal(err)
	}
	old.Close()
	st.Close()

	for i := range 2 {
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		eng, err := NewEngine(ctx, State{}, app{}, engine.WithStore(st))
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		s := eng.Snapshot()
		u := s.User().Clone()
		wantEmail := []string{"a@x", "b@x"}[i]
		if u.ID != "u-1" || u.Email != wantEmail || u.Verified || len(u.Tags) != 1 || s.Logins() != 8+i || s.MaxEmailLen() != 64 {
			t.Fatalf("start %d recovered %+v, logins %d, max %d", i, u, s.Logins(), s.MaxEmailLen())
		}
		if i == 0 {
			if _, err := eng.UpdateUserEmail(ctx, UpdateUserEmailArgs{Email: "b@x"}); err != nil {
				t.Fatal(err)
			}
			if _, err := eng.RecordLogin(ctx, RecordLoginArgs{}); err != nil {
				t.Fatal(err)
			}
		}
		eng.Close()
		st.Close()
	}
}

// setLogins is the earlier contract's one commit.
type setLogins int32

func (c setLogins) Record(tx *engine.Tx)            { tx.Write(0) }
func (c setLogins) Apply(s *earlierState, _ uint64) { s.Logins = int32(c) }

// Configuration at start: WithGlobals commits the globals that changed,
// once, in the history; the same values at the next start commit nothing.
func TestWithGlobalsOnSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "theus.db")
	start := func(max int) (*Engine, func()) {
		t.Helper()
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		eng, err := NewEngine(ctx, State{Global: GlobalState{MaxEmailLen: 100}}, app{}, engine.WithStore(st),
			engine.WithGlobals(func(s *State) { s.Global.MaxEmailLen = max }))
		if err != nil {
			t.Fatal(err)
		}
		return eng, func() { eng.Close(); st.Close() }
	}
	for i, c := range []struct {
		max     int
		version uint64
	}{{100, 0}, {42, 1}, {42, 1}, {50, 2}} {
		eng, stop := start(c.max)
		if s := eng.Snapshot(); s.Version() != c.version || s.MaxEmailLen() != c.max {
			t.Fatalf("start %d: version %d, max %d; want %d, %d", i, s.Version(), s.MaxEmailLen(), c.version, c.max)
		}
		if c.version > 0 {
			h, err := eng.History(ctx, c.version, c.version)
			if err != nil {
				t.Fatal(err)
			}
			if len(h) != 1 || len(h[0].Writes) != 1 || h[0].Writes[0].Path != "global.max_email_len" || h[0].Process != "" {
				t.Fatalf("start %d: history %+v", i, h)
			}
		}
		stop()
	}
}
