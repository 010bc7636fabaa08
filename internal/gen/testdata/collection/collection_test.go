package golden

import (
	"context"
	"errors"
	"testing"
)

type impl struct{}

func (impl) Move(_ context.Context, in MoveIn, out *MoveOut) error {
	from, ok1 := in.Accounts().Get(in.Args.From)
	to, ok2 := in.Accounts().Get(in.Args.To)
	if !ok1 || !ok2 {
		return errors.New("no such account")
	}
	f, t := from.Clone(), to.Clone()
	f.Balance -= in.Args.Amount + in.Fee()
	t.Balance += in.Args.Amount
	out.Accounts().Put(f.ID, f)
	out.Accounts().Put(t.ID, t)
	out.EmitMoved(Moved{From: f.ID, To: t.ID, Amount: in.Args.Amount})
	return nil
}

func (impl) Count(_ context.Context, in CountIn, out *CountOut) error {
	n, _ := in.Counters().Get(in.Args.N)
	out.Counters().Put(in.Args.N, n+1)
	if n > 0 {
		out.Counters().Delete(in.Args.N - 1)
	}
	out.SetNote("counted")
	return nil
}

func (impl) Total(_ context.Context, in TotalIn, out *TotalOut) error {
	var sum int64
	for _, a := range in.Accounts().All() {
		sum += a.Balance()
	}
	out.SetResult(sum)
	return nil
}

func initial() State {
	return State{
		Domain: DomainState{Accounts: map[string]Account{
			"a": {ID: "a", Balance: 100, Tags: []string{"x"}},
			"b": {ID: "b", Balance: 50},
		}},
		Global: GlobalState{Fee: 1},
	}
}

func TestCollectionEngine(t *testing.T) {
	ctx := context.Background()
	init := initial()
	e, err := NewEngine(ctx, init, impl{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	init.Domain.Accounts["a"] = Account{ID: "a", Balance: -1} // the engine copied the map
	before := e.Snapshot()
	if _, err := e.Move(ctx, MoveArgs{From: "a", To: "b", Amount: 10}); err != nil {
		t.Fatal(err)
	}
	r, err := e.Total(ctx, TotalArgs{})
	if err != nil || r.Result != 149 {
		t.Fatalf("total = %d, %v; want 149 (one fee paid)", r.Result, err)
	}
	if a, _ := before.Accounts().Get("a"); a.Balance() != 100 || a.Tags().At(0) != "x" {
		t.Fatalf("the old snapshot changed: %+v", a.Clone())
	}
	if a, _ := e.Snapshot().Accounts().Get("a"); a.Balance() != 89 {
		t.Fatalf("a = %d, want 89", a.Balance())
	}
	var p Patch
	p.PutAccounts("c", Account{ID: "c", Balance: 7})
	p.DeleteAccounts("b")
	p.SetNote("patched")
	if _, err := e.CompareAndSwap(ctx, e.Snapshot().Version(), p); err != nil {
		t.Fatal(err)
	}
	s := e.Snapshot()
	if _, ok := s.Accounts().Get("b"); ok || s.Accounts().Len() != 2 || s.Note() != "patched" {
		t.Fatalf("after the patch: len %d note %q", s.Accounts().Len(), s.Note())
	}
	var keys []string
	for k := range s.Accounts().All() {
		keys = append(keys, k)
	}
	if len(keys) != 2 || keys[0] != "a" || keys[1] != "c" {
		t.Fatalf("keys %v, want [a c]", keys)
	}
}

func TestCollectionRunEffects(t *testing.T) {
	s := initial()
	eff, err := RunMove(impl{}, s, MoveArgs{From: "a", To: "b", Amount: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(eff.Accounts) != 2 || eff.Accounts["a"].Balance != 94 || eff.Accounts["b"].Balance != 55 || len(eff.Moved) != 1 {
		t.Fatalf("effects %+v", eff)
	}
	if s.Domain.Accounts["a"].Balance != 100 {
		t.Fatal("RunMove modified its input")
	}
	s.Domain.Counters = map[int]int64{3: 1}
	ceff, err := RunCount(impl{}, s, CountArgs{N: 3})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := ceff.Counters[2]; !ok || v != nil || *ceff.Counters[3] != 2 || ceff.Note == nil || *ceff.Note != "counted" {
		t.Fatalf("count effects %+v", ceff)
	}
}
