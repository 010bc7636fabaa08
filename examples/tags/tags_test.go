package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
)

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"previous email old@example.com",
		"current_email: new@example.com (at version 2)",
		`outbox: user.updated key=u-1 {"id":"u-1","email":"new@example.com"}`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// The generated code is used as for a contracts.yaml: the engine, and
// RunXxx for a test without one.
func TestEngineAndRun(t *testing.T) {
	ctx := context.Background()
	var s State
	s.Domain.User = User{ID: "u-1", Email: "a@x", Tags: []string{"t"}}
	s.Global.MaxEmailLen = 10

	eff, err := RunUpdateUserEmail(app{}, s, UpdateUserEmailArgs{Email: "b@x"})
	if err != nil {
		t.Fatal(err)
	}
	if eff.User == nil || eff.User.Email != "b@x" || eff.Result != "a@x" || len(eff.UserUpdated) != 1 {
		t.Fatalf("effects %+v", eff)
	}
	if s.Domain.User.Email != "a@x" {
		t.Fatal("RunUpdateUserEmail modified its state")
	}
	logins, err := RunRecordLogin(app{}, s, RecordLoginArgs{})
	if err != nil || logins.Logins == nil || *logins.Logins != 1 {
		t.Fatalf("RunRecordLogin: %+v, %v", logins, err)
	}

	eng, err := NewEngine(ctx, s, app{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	_, err = eng.UpdateUserEmail(ctx, UpdateUserEmailArgs{Email: "much-too-long@example.com"})
	if pe := (*engine.ProcessError)(nil); !errors.As(err, &pe) {
		t.Fatalf("over the global limit: err = %v, want a ProcessError", err)
	}
	var p Patch
	p.SetMaxEmailLen(100)
	if _, err := eng.CompareAndSwap(ctx, eng.Snapshot().Version(), p); err != nil {
		t.Fatal(err)
	}
	r, err := eng.UpdateUserEmail(ctx, UpdateUserEmailArgs{Email: "much-too-long@example.com"})
	if err != nil || r.Result != "a@x" {
		t.Fatalf("after raising the limit: %+v, %v", r, err)
	}
	if got := eng.Snapshot().User().Email(); got != "much-too-long@example.com" {
		t.Fatalf("snapshot email %q", got)
	}
}
