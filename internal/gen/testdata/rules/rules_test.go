package golden

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
)

type procs struct{}

func (procs) UpdateUser(_ context.Context, in UpdateUserIn, out *UpdateUserOut) error {
	out.SetUser(in.Args.User)
	out.SetCount(in.Args.Count)
	out.EmitUserUpdated(UserUpdated{ID: in.Args.User.ID, Email: in.Args.User.Email})
	return failure(in.Args.Fail)
}

func (procs) Rename(_ context.Context, in RenameIn, out *RenameOut) error {
	out.SetUserName(in.Args.Name)
	return failure(in.Args.Fail)
}

func (procs) Transfer(_ context.Context, in TransferIn, out *TransferOut) error {
	from, _ := in.Accounts().Get(in.Args.From)
	to, _ := in.Accounts().Get(in.Args.To)
	f, t := from.Clone(), to.Clone()
	f.Balance -= in.Args.Amount
	t.Balance += in.Args.Amount
	w := out.Accounts()
	w.Put(f.ID, Account{ID: f.ID, Balance: -1}) // overwritten below, so not checked
	w.Put(f.ID, f)
	w.Put(t.ID, t)
	return nil
}

func (procs) SetLimit(_ context.Context, in SetLimitIn, out *SetLimitOut) error {
	out.Limits().Put(in.Args.Key, in.Args.Limit)
	if in.Args.Then != 0 {
		out.Limits().Put(in.Args.Key, in.Args.Then)
	}
	return nil
}

// failure is the error a process returns for its "fail" argument.
func failure(name string) error {
	switch name {
	case "":
		return nil
	case "not_found":
		return fmt.Errorf("user 7: %w", ErrNotFound)
	case "invalid_email":
		return ErrInvalidEmail
	}
	return engine.DomainError(name)
}

func validUser() User {
	return User{
		ID: "u1", Email: "ann@example.com", Name: "Ann", Age: 30, Score: 1, Role: "member",
		Tags: []string{"a"}, Prefs: map[string]string{"lang": "en"}, Address: Address{City: "Oslo"}, Verified: true,
	}
}

// newEngine starts an engine that logs to a buffer and counts events.
func newEngine(t *testing.T) (*Engine, *bytes.Buffer, *engine.Counters) {
	t.Helper()
	var logs bytes.Buffer
	var m engine.Counters
	e, err := NewEngine(context.Background(), State{}, procs{},
		engine.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))), engine.WithMetrics(&m))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, &logs, &m
}

// logged returns the log records in buf.
func logged(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// nothingCommitted fails unless e is still at version 0 with no message.
func nothingCommitted(t *testing.T, e *Engine) {
	t.Helper()
	if v := e.Snapshot().Version(); v != 0 {
		t.Errorf("a refused call committed version %d", v)
	}
	msgs, err := e.Store().Undelivered(context.Background(), 10)
	if err != nil || len(msgs) != 0 {
		t.Errorf("a refused call left %d messages (%v)", len(msgs), err)
	}
}

func TestRulesPass(t *testing.T) {
	e, logs, m := newEngine(t)
	r, err := e.UpdateUser(context.Background(), UpdateUserArgs{User: validUser(), Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r.Version != 1 || len(r.MessageIDs) != 1 || e.Snapshot().User().Email() != "ann@example.com" {
		t.Fatalf("receipt %+v", r)
	}
	if logs.Len() != 0 || m.RuleViolations.Load() != 0 {
		t.Errorf("a call that broke no rule logged %q", logs)
	}
}

func TestRejectRules(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*UpdateUserArgs)
		path  string
		rule  string
		value any
	}{
		{"regex", func(a *UpdateUserArgs) { a.User.Email = "nope" }, "domain.user.email", "regex", "nope"},
		{"max_len", func(a *UpdateUserArgs) { a.User.Email = strings.Repeat("é", 31) + "@x" }, "domain.user.email", "max_len", strings.Repeat("é", 31) + "@x"},
		{"required string", func(a *UpdateUserArgs) { a.User.Name = "" }, "domain.user.name", "required", ""},
		{"min_len counts runes", func(a *UpdateUserArgs) { a.User.Name = "é" }, "domain.user.name", "min_len", "é"},
		{"min", func(a *UpdateUserArgs) { a.User.Age = 17 }, "domain.user.age", "min", uint8(17)},
		{"max", func(a *UpdateUserArgs) { a.User.Age = 131 }, "domain.user.age", "max", uint8(131)},
		{"float min", func(a *UpdateUserArgs) { a.User.Score = -1.75 }, "domain.user.score", "min", -1.75},
		{"float max", func(a *UpdateUserArgs) { a.User.Score = 1000.5 }, "domain.user.score", "max", 1000.5},
		{"one_of", func(a *UpdateUserArgs) { a.User.Role = "owner" }, "domain.user.role", "one_of", "owner"},
		{"required struct", func(a *UpdateUserArgs) { a.User.Address = Address{} }, "domain.user.address", "required", Address{}},
		{"rule on an output", func(a *UpdateUserArgs) { a.Count = -1 }, "domain.count", "min", int64(-1)},
		{"reject wins over warn", func(a *UpdateUserArgs) { a.User.Age = 17; a.User.Tags = []string{"a", "b", "c"} }, "domain.user.age", "min", uint8(17)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, logs, m := newEngine(t)
			args := UpdateUserArgs{User: validUser(), Count: 3}
			tt.edit(&args)
			_, err := e.UpdateUser(context.Background(), args)
			_, runErr := RunUpdateUser(procs{}, State{}, args)
			for _, err := range []error{err, runErr} {
				var re *engine.RuleError
				if !errors.Is(err, engine.ErrRuleViolation) || !errors.As(err, &re) {
					t.Fatalf("err = %v, want a rule violation", err)
				}
				if re.Process != "update_user" || re.Path != tt.path || re.Rule != tt.rule || !reflect.DeepEqual(re.Value, tt.value) {
					t.Errorf("got %+v, want path %s, rule %s, value %#v", re, tt.path, tt.rule, tt.value)
				}
			}
			nothingCommitted(t, e)
			if logs.Len() != 0 {
				t.Errorf("a refused call logged %s", logs)
			}
			if n := m.RuleViolations.Load(); n != 1 {
				t.Errorf("counted %d rule violations, want 1", n)
			}
		})
	}
}

func TestWarnRulesCommitAndLog(t *testing.T) {
	e, logs, m := newEngine(t)
	args := UpdateUserArgs{User: validUser()}
	args.User.Tags = []string{"a", "b", "c"}
	args.User.Prefs = nil
	args.User.Verified = false
	r, err := e.UpdateUser(context.Background(), args)
	if err != nil {
		t.Fatalf("warn rules refused the call: %v", err)
	}
	if r.Version != 1 || e.Snapshot().User().Tags().Len() != 3 {
		t.Fatalf("the call did not commit: %+v", r)
	}
	var got []string
	for _, rec := range logged(t, logs) {
		if rec["level"] != "WARN" || rec["process"] != "update_user" || rec["version"] != 1.0 {
			t.Errorf("log record %v", rec)
		}
		got = append(got, fmt.Sprintf("%s %s %v", rec["path"], rec["rule"], rec["value"]))
	}
	want := []string{"domain.user.tags max_len [a b c]", "domain.user.prefs min_len <nil>", "domain.user.verified required false"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
	if n := m.RuleViolations.Load(); n != 3 {
		t.Errorf("counted %d rule violations, want 3", n)
	}
	// Without an engine, warnings do not fail the run.
	if _, err := RunUpdateUser(procs{}, State{}, args); err != nil {
		t.Errorf("RunUpdateUser: %v", err)
	}
}

func TestRuleOnNestedOutput(t *testing.T) {
	e, _, _ := newEngine(t)
	_, err := e.Rename(context.Background(), RenameArgs{})
	var re *engine.RuleError
	if !errors.As(err, &re) || re.Process != "rename" || re.Path != "domain.user.name" || re.Rule != "required" {
		t.Fatalf("err = %v, want required on domain.user.name", err)
	}
	nothingCommitted(t, e)
	if _, err := e.Rename(context.Background(), RenameArgs{Name: "Bo"}); err != nil {
		t.Fatal(err)
	}
}

func TestDomainErrors(t *testing.T) {
	tests := []struct {
		name       string
		run        func(e *Engine) (error, error) // via the engine, via RunX
		want       error
		undeclared bool
	}{
		{"declared, wrapped", func(e *Engine) (error, error) {
			args := UpdateUserArgs{User: validUser(), Fail: "not_found"}
			_, err := e.UpdateUser(context.Background(), args)
			_, runErr := RunUpdateUser(procs{}, State{}, args)
			return err, runErr
		}, ErrNotFound, false},
		{"declared by another process", func(e *Engine) (error, error) {
			args := RenameArgs{Name: "Bo", Fail: "invalid_email"}
			_, err := e.Rename(context.Background(), args)
			_, runErr := RunRename(procs{}, State{}, args)
			return err, runErr
		}, ErrInvalidEmail, true},
		{"declared by none", func(e *Engine) (error, error) {
			args := UpdateUserArgs{User: validUser(), Fail: "quota_exceeded"}
			_, err := e.UpdateUser(context.Background(), args)
			_, runErr := RunUpdateUser(procs{}, State{}, args)
			return err, runErr
		}, engine.DomainError("quota_exceeded"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _, _ := newEngine(t)
			err, runErr := tt.run(e)
			for _, err := range []error{err, runErr} {
				if !errors.Is(err, tt.want) {
					t.Errorf("err = %v, want it to match %v", err, tt.want)
				}
				if got := errors.Is(err, engine.ErrUndeclaredError); got != tt.undeclared {
					t.Errorf("err = %v: matches ErrUndeclaredError = %v, want %v", err, got, tt.undeclared)
				}
			}
			nothingCommitted(t, e)
		})
	}
}

func TestEachRules(t *testing.T) {
	initial := State{Domain: DomainState{Accounts: map[string]Account{
		"a": {ID: "a", Balance: 10, Owner: "ann"},
		"b": {ID: "b", Owner: "bob"},
		"c": {ID: "c"},
	}}}
	var logs bytes.Buffer
	e, err := NewEngine(context.Background(), initial, procs{}, engine.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()

	_, err = e.Transfer(ctx, TransferArgs{From: "a", To: "b", Amount: 15})
	var re *engine.RuleError
	if !errors.As(err, &re) || re.Path != "domain.accounts[*].balance" || re.Rule != "min" || re.Key != "a" || re.Value != int64(-5) {
		t.Fatalf("err = %v, want min broken by entry a", err)
	}
	if v := e.Snapshot().Version(); v != 0 {
		t.Fatalf("a refused transfer committed version %d", v)
	}
	if _, err := RunTransfer(procs{}, initial, TransferArgs{From: "a", To: "b", Amount: 15}); !errors.Is(err, engine.ErrRuleViolation) {
		t.Errorf("RunTransfer: err = %v, want a rule violation", err)
	}

	// The first write of a is overwritten in the same call: not checked.
	if _, err := e.Transfer(ctx, TransferArgs{From: "a", To: "b", Amount: 10}); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Errorf("logged %s", &logs)
	}
	if _, err := e.Transfer(ctx, TransferArgs{From: "b", To: "c", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	recs := logged(t, &logs)
	if len(recs) != 1 || recs[0]["path"] != "domain.accounts[*].owner" || recs[0]["key"] != "c" || recs[0]["rule"] != "required" {
		t.Errorf("logged %v, want one warning for the owner of c", recs)
	}

	_, err = e.SetLimit(ctx, SetLimitArgs{Key: 7, Limit: 11})
	if !errors.As(err, &re) || re.Path != "domain.limits[*]" || re.Key != 7 || re.Value != 11 {
		t.Fatalf("err = %v, want max broken by entry 7", err)
	}
	if _, err := e.SetLimit(ctx, SetLimitArgs{Key: 7, Limit: 11, Then: 10}); err != nil {
		t.Fatalf("a value overwritten in the same call was checked: %v", err)
	}
	if got, _ := e.Snapshot().Limits().Get(7); got != 10 {
		t.Errorf("limit 7 = %d, want 10", got)
	}
}

// A [*] rule holds for every entry a call writes, not only the first: a
// transfer of -5 from a to b leaves a at 15 and breaks the rule with b.
func TestEachRuleBrokenBySecondEntry(t *testing.T) {
	initial := State{Domain: DomainState{Accounts: map[string]Account{
		"a": {ID: "a", Balance: 10, Owner: "ann"},
		"b": {ID: "b", Owner: "bob"},
	}}}
	e, err := NewEngine(context.Background(), initial, procs{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	args := TransferArgs{From: "a", To: "b", Amount: -5}
	_, err = e.Transfer(context.Background(), args)
	_, runErr := RunTransfer(procs{}, initial, args)
	for _, err := range []error{err, runErr} {
		var re *engine.RuleError
		if !errors.Is(err, engine.ErrRuleViolation) || !errors.As(err, &re) ||
			re.Path != "domain.accounts[*].balance" || re.Rule != "min" || re.Key != "b" || re.Value != int64(-5) {
			t.Fatalf("err = %v, want min broken by entry b (-5)", err)
		}
	}
	nothingCommitted(t, e)
	if a, _ := e.Snapshot().Accounts().Get("a"); a.Balance() != 10 {
		t.Errorf("a = %d, want 10", a.Balance())
	}
}

// The checks run on every call: while the rules hold and the values can be
// encoded (the user holds a float: it is encoded to be sure) they must not
// allocate. The process sets its outputs as SetUser would without the deep
// copy, so that only the call and its checks run. (A call's runs take
// their Out handles from batches of sixteen: that is less than one
// allocation a run, which AllocsPerRun rounds down.)
func TestOutputChecksDoNotAllocate(t *testing.T) {
	c := engine.NewFrameCall(&theusSchema, theusProcUpdateUser, new(Processes(presetUser{u: validUser()})), &UpdateUserArgs{})
	var s theusState
	var err error
	if n := testing.AllocsPerRun(100, func() { err = c.Run(context.Background(), &s) }); n != 0 {
		t.Errorf("the checks allocate %v times per call", n)
	}
	if err != nil || len(c.Tx().Messages()) != 0 || !c.Tx().Written(theusPathDomainUser) || !c.Tx().Written(theusPathDomainCount) {
		t.Fatalf("the run did not set the user and the count alone: %v", err)
	}
}

type presetUser struct {
	procs
	u User
}

func (p presetUser) UpdateUser(_ context.Context, _ UpdateUserIn, out *UpdateUserOut) error {
	engine.SetOutput((*engine.Out)(out), 0, p.u)
	engine.SetOutput((*engine.Out)(out), 1, int64(3))
	return nil
}
