package golden

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

type procs struct{}

func (procs) Sell(_ context.Context, in SellIn, out *SellOut) error {
	ev, ok := in.Events().Get(in.Args.Event)
	if !ok {
		return errors.New("no such event")
	}
	e := ev.Clone()
	e.Sold += in.Args.Seats
	out.Events().Put(e.ID, e)
	return nil
}

func (procs) PutEvent(_ context.Context, in PutEventIn, out *PutEventOut) error {
	out.Events().Put(in.Args.Event.ID, in.Args.Event)
	return nil
}

func (procs) RemoveEvent(_ context.Context, in RemoveEventIn, out *RemoveEventOut) error {
	out.Events().Delete(in.Args.ID)
	return nil
}

func (procs) RenameVenue(_ context.Context, in RenameVenueIn, out *RenameVenueOut) error {
	out.SetVenueName(in.Args.Name)
	return nil
}

func (procs) SetVenue(_ context.Context, in SetVenueIn, out *SetVenueOut) error {
	out.SetVenue(in.Args.Venue)
	return nil
}

func start(t *testing.T, initial State, opts ...engine.Option) *Engine {
	t.Helper()
	if initial.Global.MaxSale == 0 {
		initial.Global.MaxSale = 10
	}
	e, err := NewEngine(context.Background(), initial, procs{}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func ruleError(t *testing.T, err error) *engine.RuleError {
	t.Helper()
	var re *engine.RuleError
	if !errors.Is(err, engine.ErrRuleViolation) || !errors.As(err, &re) {
		t.Fatalf("err = %v, want a RuleError", err)
	}
	return re
}

func concert() State {
	return State{Domain: DomainState{Events: map[string]Event{"e1": {ID: "e1", Name: "Concert", Sold: 8, Capacity: 10}}}}
}

func sold(t *testing.T, e *Engine, id string) int {
	t.Helper()
	ev, ok := e.Snapshot().Events().Get(id)
	if !ok {
		t.Fatalf("no event %s", id)
	}
	return ev.Sold()
}

func TestInvariantRefusesAProcessCommit(t *testing.T) {
	e := start(t, concert())
	if _, err := e.Sell(context.Background(), SellArgs{Event: "e1", Seats: 2}); err != nil {
		t.Fatalf("selling the last seats: %v", err)
	}
	v := e.Snapshot().Version()
	_, err := e.Sell(context.Background(), SellArgs{Event: "e1", Seats: 1})
	re := ruleError(t, err)
	if !re.Invariant || re.Process != "sell" || re.Path != "domain.events[*]" || re.Rule != "check" || re.Key != "e1" || re.Message != "sold out" {
		t.Errorf("RuleError = %+v", re)
	}
	want := `theus: process sell: invariant domain.events[*] must satisfy self.sold <= self.capacity, got {ID:e1 Name:Concert Sold:11 Capacity:10} (key "e1"): sold out`
	if err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
	if got := e.Snapshot().Version(); got != v || sold(t, e, "e1") != 10 {
		t.Errorf("a refused commit changed the state: version %d, sold %d", got, sold(t, e, "e1"))
	}
	// The engine goes on: the next commit gets the next version.
	if r, err := e.PutEvent(context.Background(), PutEventArgs{Event: Event{ID: "e2", Name: "Play", Capacity: 1}}); err != nil || r.Version != v+1 {
		t.Fatalf("next commit: %v, version %d, want %d", err, r.Version, v+1)
	}
}

// Any process that writes the path is checked, not only the one that
// means to keep the invariant.
func TestInvariantHoldsForEveryProcess(t *testing.T) {
	e := start(t, concert())
	_, err := e.PutEvent(context.Background(), PutEventArgs{Event: Event{ID: "e1", Name: "Concert", Sold: 11, Capacity: 10}})
	if re := ruleError(t, err); re.Process != "put_event" || !re.Invariant {
		t.Errorf("RuleError = %+v", re)
	}
	_, err = e.PutEvent(context.Background(), PutEventArgs{Event: Event{ID: "e3", Name: "Minus", Sold: -1, Capacity: 10}})
	re := ruleError(t, err)
	if re.Path != "domain.events[*].sold" || re.Rule != "min" || re.Must != "be >= 0" || re.Value != -1 || re.Key != "e3" {
		t.Errorf("RuleError = %+v", re)
	}
	if want := `theus: process put_event: invariant domain.events[*].sold must be >= 0, got -1 (key "e3")`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestInvariantHoldsForCompareAndSwap(t *testing.T) {
	e := start(t, concert())
	ctx := context.Background()
	v := e.Snapshot().Version()
	var p Patch
	p.PutEvents("e1", Event{ID: "e1", Name: "Concert", Sold: 12, Capacity: 10})
	_, err := e.CompareAndSwap(ctx, v, p)
	re := ruleError(t, err)
	if re.Process != "" || !re.Invariant || re.Key != "e1" {
		t.Errorf("RuleError = %+v", re)
	}
	if !strings.HasPrefix(err.Error(), "theus: CompareAndSwap: invariant domain.events[*] must satisfy") {
		t.Errorf("error %q", err)
	}
	if e.Snapshot().Version() != v || sold(t, e, "e1") != 8 {
		t.Error("a refused CompareAndSwap changed the state")
	}
	var g Patch
	g.SetMaxSale(0)
	if re := ruleError(t, func() error { _, err := e.CompareAndSwap(ctx, v, g); return err }()); re.Path != "global.max_sale" || re.Value != 0 {
		t.Errorf("RuleError = %+v", re)
	}
	var ok Patch
	ok.PutEvents("e1", Event{ID: "e1", Name: "Concert", Sold: 10, Capacity: 10})
	ok.SetMaxSale(4)
	if nv, err := e.CompareAndSwap(ctx, v, ok); err != nil || nv != v+1 {
		t.Fatalf("a valid CompareAndSwap: %v, version %d", err, nv)
	}
}

// A delete has no value to check, and an entry or a field the commit does
// not write is not checked either, even when it breaks an invariant
// (state from before the invariant existed).
func TestInvariantChecksOnlyWhatACommitWrites(t *testing.T) {
	s := concert()
	s.Domain.Events["bad"] = Event{ID: "bad", Name: "Oversold", Sold: 20, Capacity: 10}
	s.Domain.Venue = Venue{Name: "Hall", Seats: 5000}
	e := start(t, s)
	ctx := context.Background()
	if _, err := e.Sell(ctx, SellArgs{Event: "e1", Seats: 1}); err != nil {
		t.Errorf("a commit that writes e1 only: %v", err)
	}
	if _, err := e.RenameVenue(ctx, RenameVenueArgs{Name: "Arena"}); err != nil {
		t.Errorf("renaming does not write domain.venue.seats: %v", err)
	}
	if _, err := e.SetVenue(ctx, SetVenueArgs{Venue: Venue{Name: "Arena", Seats: 5000}}); err == nil {
		t.Error("setting the whole venue writes domain.venue.seats, and was not checked")
	}
	if _, err := e.RemoveEvent(ctx, RemoveEventArgs{ID: "bad"}); err != nil {
		t.Errorf("deleting an entry that breaks an invariant: %v", err)
	}
	var p Patch
	p.DeleteEvents("e1")
	if _, err := e.CompareAndSwap(ctx, e.Snapshot().Version(), p); err != nil {
		t.Errorf("a Patch deleting an entry: %v", err)
	}
}

func TestInvariantWarns(t *testing.T) {
	var logs bytes.Buffer
	var m engine.Counters
	e := start(t, concert(), engine.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))), engine.WithMetrics(&m))
	r, err := e.PutEvent(context.Background(), PutEventArgs{Event: Event{ID: "e2", Capacity: 5}})
	if err != nil {
		t.Fatalf("on_fail: warn refused the commit: %v", err)
	}
	if _, ok := e.Snapshot().Events().Get("e2"); !ok || r.Version != e.Snapshot().Version() {
		t.Error("the warned commit is not there")
	}
	out := logs.String()
	for _, want := range []string{`"path":"domain.events[*].name"`, `"invariant":true`, `"key":"e2"`, `"must":"be set"`, `"process":"put_event"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log %s lacks %s", out, want)
		}
	}
	if n := m.RuleViolations.Load(); n != 1 {
		t.Errorf("counted %d violations, want 1", n)
	}
	var p Patch
	p.PutEvents("e3", Event{ID: "e3", Capacity: 5})
	logs.Reset()
	if _, err := e.CompareAndSwap(context.Background(), e.Snapshot().Version(), p); err != nil || !strings.Contains(logs.String(), `"key":"e3"`) {
		t.Errorf("CompareAndSwap with a warning: %v, log %s", err, logs.String())
	}
}

func TestRuleCheckReadsArgs(t *testing.T) {
	e := start(t, concert())
	_, err := e.Sell(context.Background(), SellArgs{Event: "e1", Seats: 0})
	re := ruleError(t, err)
	if re.Invariant || re.Process != "sell" || re.Must != "satisfy args.seats >= 1" || re.Message != "sell at least one seat" {
		t.Errorf("RuleError = %+v", re)
	}
	if _, err := RunSell(procs{}, concert(), SellArgs{Event: "e1", Seats: 0}); !errors.Is(err, engine.ErrRuleViolation) {
		t.Errorf("RunSell: %v, want the rule violation", err)
	}
	if _, err := RunSell(procs{}, concert(), SellArgs{Event: "e1", Seats: 1}); err != nil {
		t.Errorf("RunSell: %v", err)
	}
}

// With a durable store, a refused commit is not in the store either, and
// the next one gets the next version.
func TestInvariantWithSQLite(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/state.db"
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, concert(), engine.WithStore(st))
	if _, err := e.Sell(ctx, SellArgs{Event: "e1", Seats: 3}); !errors.Is(err, engine.ErrRuleViolation) {
		t.Fatalf("err = %v, want the invariant", err)
	}
	var p Patch
	p.PutEvents("e1", Event{ID: "e1", Name: "Concert", Sold: 11, Capacity: 10})
	if _, err := e.CompareAndSwap(ctx, e.Snapshot().Version(), p); !errors.Is(err, engine.ErrRuleViolation) {
		t.Fatalf("err = %v, want the invariant", err)
	}
	r, err := e.Sell(ctx, SellArgs{Event: "e1", Seats: 2})
	if err != nil || r.Version != 1 {
		t.Fatalf("a valid sale: %v, version %d", err, r.Version)
	}
	e.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e2 := start(t, State{}, engine.WithStore(st))
	if v, s := e2.Snapshot().Version(), sold(t, e2, "e1"); v != 1 || s != 10 {
		t.Errorf("recovered version %d, sold %d; want 1, 10", v, s)
	}
}
