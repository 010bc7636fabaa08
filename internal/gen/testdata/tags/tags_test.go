package golden

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/engine"
)

type impl struct{}

func (impl) UpdateUserEmail(_ context.Context, in UpdateUserEmailIn, out *UpdateUserEmailOut) error {
	if len(in.Args.Email) > in.MaxLen() {
		return ErrInvalidEmail
	}
	u := in.User().Clone()
	out.SetResult(u.Email)
	u.Email = in.Args.Email
	out.SetUser(u)
	out.EmitUserUpdated(UserUpdated{ID: u.ID, Email: u.Email, Note: "it's"})
	return nil
}

func (impl) Transfer(_ context.Context, in TransferIn, out *TransferOut) error {
	from, ok1 := in.Accounts().Get(in.Args.From)
	to, ok2 := in.Accounts().Get(in.Args.To)
	if !ok1 || !ok2 {
		return errors.New("no such account")
	}
	fee, _ := in.Fees().Get("transfer")
	f, t := from.Clone(), to.Clone()
	f.Balance -= in.Args.Amount + fee
	t.Balance += in.Args.Amount
	out.Accounts().Put(f.ID, f)
	out.Accounts().Put(t.ID, t)
	out.EmitTransferCompleted(TransferCompleted{From: f.ID, To: t.ID, Amount: in.Args.Amount,
		Legs: []Leg{{Account: f.ID, Delta: -in.Args.Amount - fee}, {Account: t.ID, Delta: in.Args.Amount}}})
	return nil
}

func (impl) CurrentEmail(_ context.Context, in CurrentEmailIn, out *CurrentEmailOut) error {
	out.SetResult(in.Email())
	return nil
}

func initial() State {
	var s State
	s.Domain.User = User{ID: "u1", Email: "a@x", Tags: []string{"t"}, Seen: time.Unix(0, 0).UTC()}
	s.Domain.Accounts = map[string]Account{"a": {ID: "a", Balance: 10}, "b": {ID: "b"}}
	s.Global.MaxEmailLen = 20
	s.Global.Fees = map[string]int64{"transfer": 1}
	return s
}

// The messages are what encoding/json makes of the user's own structs.
func TestTagsEngine(t *testing.T) {
	ctx := context.Background()
	eng, err := NewEngine(ctx, initial(), impl{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	r, err := eng.UpdateUserEmail(ctx, UpdateUserEmailArgs{Email: "b@x"})
	if err != nil || r.Result != "a@x" {
		t.Fatalf("UpdateUserEmail: %+v, %v", r, err)
	}
	if _, err := eng.UpdateUserEmail(ctx, UpdateUserEmailArgs{Email: "not an email"}); !errors.Is(err, engine.ErrRuleViolation) {
		t.Fatalf("rule: %v", err)
	}
	if _, err := eng.UpdateUserEmail(ctx, UpdateUserEmailArgs{Email: strings.Repeat("x", 30) + "@x"}); !errors.Is(err, ErrInvalidEmail) {
		t.Fatalf("domain error: %v", err)
	}
	if _, err := eng.Transfer(ctx, TransferArgs{From: "a", To: "b", Amount: 9}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Transfer(ctx, TransferArgs{From: "a", To: "b", Amount: 1}); !errors.Is(err, engine.ErrRuleViolation) {
		t.Fatalf("negative balance: %v", err)
	}
	r2, err := eng.CurrentEmail(ctx, CurrentEmailArgs{})
	if err != nil || r2.Result != "b@x" {
		t.Fatalf("CurrentEmail: %+v, %v", r2, err)
	}
	msgs, err := eng.Store().Undelivered(ctx, 10)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("messages: %d, %v", len(msgs), err)
	}
	want := []any{
		UserUpdated{ID: "u1", Email: "b@x", Note: "it's"},
		TransferCompleted{From: "a", To: "b", Amount: 9, Legs: []Leg{{"a", -10}, {"b", 9}}},
	}
	for i, m := range msgs {
		b, _ := json.Marshal(want[i])
		if string(m.Payload) != string(b) {
			t.Errorf("message %d: %s, encoding/json gives %s", i, m.Payload, b)
		}
	}
	if msgs[0].Key != "u1" || msgs[1].Key != "a" {
		t.Errorf("keys %q %q", msgs[0].Key, msgs[1].Key)
	}
	var p Patch
	p.SetMaxEmailLen(3)
	if _, err := eng.CompareAndSwap(ctx, eng.Snapshot().Version(), p); err != nil {
		t.Fatal(err)
	}
	if got := eng.Snapshot().MaxEmailLen(); got != 3 {
		t.Errorf("MaxEmailLen after CompareAndSwap = %d", got)
	}
}

func TestTagsRun(t *testing.T) {
	s := initial()
	eff, err := RunTransfer(impl{}, s, TransferArgs{From: "a", To: "b", Amount: 2})
	if err != nil {
		t.Fatal(err)
	}
	if eff.Accounts["a"].Balance != 7 || eff.Accounts["b"].Balance != 2 || len(eff.TransferCompleted) != 1 {
		t.Fatalf("effects %+v", eff)
	}
	if s.Domain.Accounts["a"].Balance != 10 {
		t.Fatal("RunTransfer modified its state")
	}
}

// A value that cannot be encoded (a time.Time in the year 10000) fails the
// call or the CompareAndSwap that set it, as with a YAML contract.
func TestTagsUnencodable(t *testing.T) {
	ctx := context.Background()
	s := initial()
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	s.Domain.User.Seen = far
	e, err := NewEngine(ctx, s, impl{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var me *json.MarshalerError
	_, err = e.UpdateUserEmail(ctx, UpdateUserEmailArgs{Email: "b@x"})
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "theus: encode domain.user: ") {
		t.Errorf("UpdateUserEmail with a user seen in the year 10000: %v, want a refusal naming domain.user", err)
	}
	var p Patch
	p.SetUser(User{ID: "u1", Seen: far})
	_, err = e.CompareAndSwap(ctx, e.Snapshot().Version(), p)
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "theus: encode domain.user: ") {
		t.Errorf("CompareAndSwap of a user seen in the year 10000: %v, want a refusal naming domain.user", err)
	}
}
