package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// faults makes a store's next commit fail at a step: set arms it.
type faults struct {
	step atomic.Int32 // step+1; 0: none
}

func (f *faults) set(s postgres.Step) { f.step.Store(int32(s) + 1) }

func (f *faults) hook(s postgres.Step) error {
	if f.step.CompareAndSwap(int32(s)+1, 0) {
		return errInjected
	}
	return nil
}

var errInjected = errors.New("injected")

// bankOp is one call of the property test.
type bankOp struct {
	kind     int // opTransfer, opDeposit, opCAS
	from, to int
	amount   int64
	fault    int // 0: none, else 1+postgres.Step of a fault before the call
}

const (
	opTransfer = iota
	opDeposit
	opCAS
)

type bankOutcome struct {
	op      bankOp
	version uint64
	ids     []string
	err     error
}

func accountID(i int) string { return fmt.Sprintf("acc-%03d", i) }

// Three engines, each on a Store of its own on one schema, run random
// transfers, deposits and compare-and-swaps concurrently, with faults
// injected at every step of a commit (before the write, before COMMIT,
// and after a COMMIT whose reply is lost, which the store must resolve as
// committed). The history in the database is serializable: its versions
// are dense, every one was returned to exactly one call and replays
// serially from the initial state, each commit's values being those of
// the replay; KeySeqs are dense per key; every message belongs to exactly
// one commit, the one whose receipt lists it; a call that failed left
// nothing; and every engine, once synced, holds the replay's final state.
func TestPropertySharedHistory(t *testing.T) {
	fewerChecks(t, 15)
	const naccounts = 4
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		schema := freshSchema(t)
		initial := accounts(naccounts, 20)
		nengines := rapid.IntRange(2, 3).Draw(rt, "engines")
		engines := make([]*bank.Engine, nengines)
		stores := make([]*postgres.Store, nengines)
		fs := make([]*faults, nengines)
		for i := range engines {
			fs[i] = &faults{}
			st, err := postgres.Open(ctx, testDSN(), postgres.WithSchema(schema), postgres.WithFaultHook(fs[i].hook))
			if err != nil {
				rt.Fatal(err)
			}
			defer st.Close()
			eng, err := bank.NewEngine(ctx, initial, bank.Bank{}, engine.WithStore(st), engine.WithRetry(4, time.Microsecond, time.Millisecond))
			if err != nil {
				rt.Fatal(err)
			}
			defer eng.Close()
			engines[i], stores[i] = eng, st
		}
		type work struct {
			engine int
			plan   []bankOp
		}
		var works []work
		for i := range engines {
			for range rapid.IntRange(1, 2).Draw(rt, "workers") {
				works = append(works, work{engine: i, plan: rapid.SliceOfN(rapid.Custom(func(t *rapid.T) bankOp {
					o := bankOp{
						kind:   rapid.IntRange(0, 2).Draw(t, "kind"),
						from:   rapid.IntRange(0, naccounts-1).Draw(t, "from"),
						to:     rapid.IntRange(0, naccounts-1).Draw(t, "to"),
						amount: int64(rapid.IntRange(1, 15).Draw(t, "amount")),
					}
					if rapid.IntRange(0, 9).Draw(t, "faulty") == 0 {
						o.fault = 1 + rapid.IntRange(int(postgres.BeforeWrite), int(postgres.AfterCommit)).Draw(t, "step")
					}
					return o
				}), 1, 12).Draw(rt, "plan")})
			}
		}
		results := make([][]bankOutcome, len(works))
		var wg sync.WaitGroup
		for w, wk := range works {
			wg.Add(1)
			go func() {
				defer wg.Done()
				eng := engines[wk.engine]
				for _, o := range wk.plan {
					if o.fault > 0 {
						fs[wk.engine].set(postgres.Step(o.fault - 1))
					}
					out := bankOutcome{op: o}
					switch o.kind {
					case opTransfer:
						r, err := eng.Transfer(ctx, bank.TransferArgs{From: accountID(o.from), To: accountID(o.to), Amount: o.amount})
						out.version, out.ids, out.err = r.Version, r.MessageIDs, err
					case opDeposit:
						r, err := eng.Deposit(ctx, bank.DepositArgs{ID: accountID(o.from), Amount: o.amount})
						out.version, out.ids, out.err = r.Version, r.MessageIDs, err
					case opCAS:
						// Set the balance of an account, expecting the
						// version the engine holds: other engines' commits
						// make it fail.
						snap := eng.Snapshot()
						var p bank.Patch
						p.PutAccounts(accountID(o.from), bank.Account{ID: accountID(o.from), Owner: "cas", Balance: o.amount})
						out.version, out.err = eng.CompareAndSwap(ctx, snap.Version(), p)
					}
					results[w] = append(results[w], out)
				}
			}()
		}
		wg.Wait()
		for _, f := range fs {
			f.step.Store(0) // a fault no commit consumed
		}

		byVersion := map[uint64]bankOutcome{}
		for _, rs := range results {
			for _, r := range rs {
				switch {
				case r.err != nil:
					if !errors.Is(r.err, engine.ErrStore) && !errors.Is(r.err, engine.ErrRuleViolation) &&
						!errors.Is(r.err, engine.ErrVersionMismatch) && !errors.Is(r.err, bank.ErrSameAccount) {
						rt.Fatalf("%+v: unexpected error %v", r.op, r.err)
					}
				default:
					if prev, dup := byVersion[r.version]; dup {
						rt.Fatalf("version %d returned to two calls: %+v and %+v", r.version, prev.op, r.op)
					}
					byVersion[r.version] = r
				}
			}
		}
		head, err := stores[0].Head(ctx)
		if err != nil {
			rt.Fatal(err)
		}
		hist, err := stores[0].History(ctx, 1, head)
		if err != nil {
			rt.Fatal(err)
		}
		if int(head) != len(byVersion) || len(hist) != len(byVersion) {
			rt.Fatalf("head %d, %d commits in the log, %d calls succeeded", head, len(hist), len(byVersion))
		}
		msgs, err := stores[0].Undelivered(ctx, 1<<20)
		if err != nil {
			rt.Fatal(err)
		}
		msgAt := map[uint64][]outbox.Message{}
		for _, m := range msgs {
			msgAt[m.Version] = append(msgAt[m.Version], m)
		}
		state := map[string]bank.Account{}
		for id, a := range initial.Domain.Accounts {
			state[id] = a
		}
		keySeq := map[outbox.TopicKey]uint64{}
		nmsgs := 0
		for i, c := range hist {
			if c.Version != uint64(i+1) {
				rt.Fatalf("commit %d of the log has version %d", i, c.Version)
			}
			r, ok := byVersion[c.Version]
			if !ok {
				rt.Fatalf("version %d is in the store but no call received it", c.Version)
			}
			// The serial replay of the call.
			var wantMsgs int
			var touched []string
			switch o := r.op; o.kind {
			case opTransfer:
				from, to := state[accountID(o.from)], state[accountID(o.to)]
				if from.Balance < o.amount {
					rt.Fatalf("version %d: transfer %+v committed, but the replay finds balance %d", c.Version, o, from.Balance)
				}
				from.Balance -= o.amount
				to.Balance += o.amount
				state[from.ID], state[to.ID] = from, to
				wantMsgs, touched = 1, []string{from.ID, to.ID}
			case opDeposit:
				a := state[accountID(o.from)]
				a.Balance += o.amount
				state[a.ID] = a
				touched = []string{a.ID}
			case opCAS:
				state[accountID(o.from)] = bank.Account{ID: accountID(o.from), Owner: "cas", Balance: o.amount}
				touched = []string{accountID(o.from)}
			}
			// The commit's values are the replay's.
			for _, v := range c.Values {
				var a bank.Account
				if err := json.Unmarshal(v.Data, &a); err != nil || v.Path != "domain.accounts" {
					rt.Fatalf("version %d: value %s[%s] = %q: %v", c.Version, v.Path, v.Key, v.Data, err)
				}
				if a != state[v.Key] {
					rt.Fatalf("version %d (%+v): committed %s = %+v, serial replay %+v", c.Version, r.op, v.Key, a, state[v.Key])
				}
			}
			if len(c.Values) != len(touched) {
				rt.Fatalf("version %d (%+v): %d values, want %d", c.Version, r.op, len(c.Values), len(touched))
			}
			// Its messages: those of the receipt, in the log and in the
			// outbox, with dense KeySeqs.
			ms := msgAt[c.Version]
			nmsgs += len(ms)
			if len(ms) != wantMsgs || !slices.Equal(c.MessageIDs, r.ids) || len(r.ids) != wantMsgs {
				rt.Fatalf("version %d: %d messages in the outbox, log IDs %v, receipt IDs %v; replay emits %d", c.Version, len(ms), c.MessageIDs, r.ids, wantMsgs)
			}
			for j, m := range ms {
				tk := outbox.TopicKey{Topic: m.Topic, Key: m.Key}
				keySeq[tk]++
				if m.ID != r.ids[j] || m.KeySeq != keySeq[tk] {
					rt.Fatalf("message %+v: want ID %s, KeySeq %d", m, r.ids[j], keySeq[tk])
				}
			}
		}
		if nmsgs != len(msgs) {
			rt.Fatalf("the outbox holds %d messages, the commits %d", len(msgs), nmsgs)
		}
		for i, eng := range engines {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := eng.Sync(sctx)
			cancel()
			if err != nil {
				rt.Fatalf("engine %d: Sync: %v", i, err)
			}
			got := map[string]bank.Account{}
			for id, v := range eng.Snapshot().Accounts().All() {
				got[id] = v.Clone()
			}
			if v := eng.Snapshot().Version(); v != head || fmt.Sprint(got) != fmt.Sprint(state) {
				rt.Fatalf("engine %d after Sync: version %d %v; replay (version %d) %v", i, v, got, head, state)
			}
		}
		// A new instance recovers the same state.
		st := openStore(t, schema)
		eng := newBank(t, st, initial) // used only if nothing committed
		got := map[string]bank.Account{}
		for id, v := range eng.Snapshot().Accounts().All() {
			got[id] = v.Clone()
		}
		if v := eng.Snapshot().Version(); v != head || fmt.Sprint(got) != fmt.Sprint(state) {
			rt.Fatalf("recovered: version %d %v; replay (version %d) %v", v, got, head, state)
		}
		eng.Close()
		st.Close()
	})
}

// fewerChecks lowers rapid's number of checks to n for the test, unless
// -rapid.checks was given: every check creates a schema and several
// engines.
func fewerChecks(t *testing.T, n int) {
	f := flag.Lookup("rapid.checks")
	set := false
	flag.Visit(func(g *flag.Flag) { set = set || g == f })
	if f == nil || set {
		return
	}
	old := f.Value.String()
	f.Value.Set(strconv.Itoa(n))
	t.Cleanup(func() { f.Value.Set(old) })
}
