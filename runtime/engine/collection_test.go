package engine_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/memory"
)

// A bank in miniature, written the way generated code drives collections:
// cstate.Acc is a collection of balances by account ID.
type cstate struct {
	Acc engine.Collection[string, int]
}

const pathAcc = 0

var cschema = &engine.Schema[cstate]{
	Paths: []string{"domain.accounts"},
	Clone: func(s *cstate) cstate { return *s },
	Processes: []engine.ProcessSpec{
		{Name: "transfer", Inputs: []int{pathAcc}},
		{Name: "open", Inputs: []int{pathAcc}},
		{Name: "close", Inputs: []int{pathAcc}},
		{Name: "count", Inputs: []int{pathAcc}},
		{Name: "deposit", Inputs: []int{pathAcc}},
		{Name: "blind_put"},
	},
	Collections: []engine.CollectionSpec[cstate]{{
		Path:    pathAcc,
		Version: func(s *cstate, k string) (uint64, bool) { return engine.CollectionVersion(s.Acc, k) },
	}},
}

const (
	procTransfer = iota
	procOpen
	procClose
	procCount
	procDeposit
	// procBlindPut puts amount under to, or deletes to if amount is
	// negative, without reading the collection.
	procBlindPut
)

type ccall struct {
	tx      engine.Tx
	proc    int
	from    string
	to      string
	amount  int
	pending []engine.Pending[string, int]
	runs    int
	counted int
	hook    func()
}

func (c *ccall) Tx() *engine.Tx { return &c.tx }

func ident(p *int) int { return *p }

func (c *ccall) Run(_ context.Context, s *cstate) error {
	c.runs++
	c.pending = c.pending[:0]
	in := engine.CollectionView(s.Acc, &c.tx, pathAcc, ident)
	var gen uint64
	out := engine.NewCollectionWriter(&c.tx, pathAcc, &c.pending, nil, &gen, 0)
	switch c.proc {
	case procTransfer:
		a, okA := in.Get(c.from)
		b, okB := in.Get(c.to)
		if !okA || !okB {
			return errors.New("no such account")
		}
		if a < c.amount {
			return errors.New("insufficient funds")
		}
		out.Put(c.from, a-c.amount)
		out.Put(c.to, b+c.amount)
	case procOpen:
		if _, ok := in.Get(c.to); ok {
			return errors.New("exists")
		}
		out.Put(c.to, c.amount)
	case procClose:
		if _, ok := in.Get(c.from); !ok {
			return errors.New("no such account")
		}
		out.Delete(c.from)
	case procDeposit:
		a, ok := in.Get(c.to)
		if !ok {
			return errors.New("no such account")
		}
		out.Put(c.to, a+c.amount)
	case procCount:
		c.counted = in.Len()
		out.Put("count", c.counted)
	case procBlindPut:
		if c.amount < 0 {
			out.Delete(c.to)
		} else {
			out.Put(c.to, c.amount)
		}
	}
	if c.hook != nil {
		c.hook()
	}
	return nil
}

func (c *ccall) ReceiptID() *[1]string { return nil }

func (c *ccall) Apply(s *cstate, v uint64) { s.Acc = engine.CollectionApply(s.Acc, v, c.pending) }

// cpatch writes entries outside processes.
type cpatch map[string]int

func (p cpatch) Record(tx *engine.Tx) {
	for k := range p {
		tx.WriteKey(pathAcc, k, false)
	}
}

func (p cpatch) Apply(s *cstate, v uint64) {
	var pend []engine.Pending[string, int]
	for k, val := range p {
		pend = append(pend, engine.Pending[string, int]{Key: k, Value: &val})
	}
	s.Acc = engine.CollectionApply(s.Acc, v, pend)
}

func newBank(t testing.TB, st engine.Store, balances map[string]int) *engine.Engine[cstate] {
	t.Helper()
	e, err := engine.New(context.Background(), cschema, cstate{Acc: engine.NewCollection(balances, nil)}, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// A call re-runs exactly when an entry it read was written meanwhile:
// transfers on disjoint accounts never conflict, ones sharing an account do.
func TestCollectionConflictsPerEntry(t *testing.T) {
	cases := []struct {
		name     string
		call     ccall
		write    string // entry written concurrently
		conflict bool
	}{
		{"disjoint accounts", ccall{proc: procTransfer, from: "a", to: "b", amount: 1}, "c", false},
		{"shared source", ccall{proc: procTransfer, from: "a", to: "b", amount: 1}, "a", true},
		{"shared destination", ccall{proc: procTransfer, from: "a", to: "b", amount: 1}, "b", true},
		{"absent key created meanwhile", ccall{proc: procOpen, to: "z", amount: 5}, "z", true},
		{"absent key, other key created", ccall{proc: procOpen, to: "z", amount: 5}, "y", false},
		{"whole collection read (Len)", ccall{proc: procCount}, "c", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newBank(t, memory.New(), map[string]int{"a": 10, "b": 10, "c": 10, "d": 10})
			c := tc.call
			c.hook = func() {
				if c.runs > 1 {
					return
				}
				v, _ := e.Snapshot()
				if _, err := e.CompareAndSwap(context.Background(), v, cpatch{tc.write: 99}); err != nil {
					t.Errorf("CompareAndSwap: %v", err)
				}
			}
			_, err := e.Exec(context.Background(), c.proc, &c)
			// Opening an account that appeared meanwhile is refused by the
			// re-run, which saw it: that is the point.
			if err != nil && err.Error() != "theus: process open: exists" {
				t.Fatal(err)
			}
			if got := c.runs > 1; got != tc.conflict {
				t.Fatalf("re-run = %v (runs %d), want %v", got, c.runs, tc.conflict)
			}
		})
	}
}

func TestCollectionDeleteConflictsWithReaders(t *testing.T) {
	e := newBank(t, memory.New(), map[string]int{"a": 10, "b": 10})
	c := &ccall{proc: procTransfer, from: "a", to: "b", amount: 1}
	c.hook = func() {
		if c.runs > 1 {
			return
		}
		if _, err := e.Exec(context.Background(), procClose, &ccall{proc: procClose, from: "b"}); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	_, err := e.Exec(context.Background(), procTransfer, c)
	if err == nil || err.Error() != "theus: process transfer: no such account" {
		t.Fatalf("transfer to a deleted account: err = %v (runs %d); want the re-run to see the delete", err, c.runs)
	}
}

func TestCollectionSnapshotsAndRecords(t *testing.T) {
	st := newRecorder()
	e := newBank(t, st, map[string]int{"a": 10, "b": 10})
	_, before := e.Snapshot()
	if _, err := e.Exec(context.Background(), procTransfer, &ccall{proc: procTransfer, from: "a", to: "b", amount: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Exec(context.Background(), procClose, &ccall{proc: procClose, from: "a"}); err != nil {
		t.Fatal(err)
	}
	if a, _ := engine.CollectionGet(before.Acc, "a"); *a != 10 || engine.CollectionLen(before.Acc) != 2 {
		t.Fatalf("the first snapshot changed: a=%d len=%d", *a, engine.CollectionLen(before.Acc))
	}
	_, after := e.Snapshot()
	if _, ok := engine.CollectionGet(after.Acc, "a"); ok || engine.CollectionLen(after.Acc) != 1 {
		t.Fatalf("after close: len %d", engine.CollectionLen(after.Acc))
	}
	if b, _ := engine.CollectionGet(after.Acc, "b"); *b != 13 {
		t.Fatalf("b = %d, want 13", *b)
	}
	var got []string
	for _, r := range st.history() {
		for _, w := range r.Writes {
			got = append(got, fmt.Sprintf("v%d %s[%s] deleted=%v", r.Version, w.Path, w.Key, w.Deleted))
		}
	}
	want := []string{
		"v1 domain.accounts[a] deleted=false",
		"v1 domain.accounts[b] deleted=false",
		"v2 domain.accounts[a] deleted=true",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("record writes %q, want %q", got, want)
	}
}

// Many goroutines move money among a few accounts: the total never changes
// and no balance goes negative, in any snapshot.
func TestCollectionTransfersConserveMoney(t *testing.T) {
	const accounts, workers, transfers = 8, 4, 300
	balances := map[string]int{}
	for i := range accounts {
		balances[fmt.Sprint("acct", i)] = 100
	}
	e := newBank(t, memory.New(), balances)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range transfers {
				from, to := (w+i)%accounts, (w*3+i*5+1)%accounts
				if from == to {
					continue
				}
				c := &ccall{proc: procTransfer, from: fmt.Sprint("acct", from), to: fmt.Sprint("acct", to), amount: 1 + i%40}
				_, err := e.Exec(context.Background(), procTransfer, c)
				if err != nil && err.Error() != "theus: process transfer: insufficient funds" {
					t.Errorf("transfer: %v", err)
				}
				_, s := e.Snapshot()
				total := 0
				for _, b := range engine.CollectionAll(s.Acc) {
					if *b < 0 {
						t.Errorf("negative balance %d", *b)
					}
					total += *b
				}
				if total != accounts*100 {
					t.Errorf("total %d, want %d", total, accounts*100)
				}
			}
		}()
	}
	wg.Wait()
}

// benchDeposit commits deposits, each reading and writing one entry of a
// collection of n accounts, through the memory store (drained every 4,096
// commits with the timer stopped, as in BenchmarkCommit).
func benchDeposit(b *testing.B, n int) {
	balances := make(map[string]int, n)
	keys := make([]string, n)
	for i := range n {
		keys[i] = fmt.Sprintf("acct-%07d", i)
		balances[keys[i]] = 100
	}
	st := memory.New()
	e := newBank(b, st, balances)
	balances = nil // only the engine's copy stays for the GC to scan
	ctx := context.Background()
	c := &ccall{proc: procDeposit, amount: 1}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		k := keys[(i*7919)%n]
		c.to = k
		if _, err := e.Exec(ctx, procDeposit, c); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 4095 {
			b.StopTimer()
			msgs, _ := st.Undelivered(ctx, 1<<20)
			ids := make([]string, len(msgs))
			for j, m := range msgs {
				ids[j] = m.ID
			}
			st.Ack(ctx, ids)
			b.StartTimer()
		}
	}
}

func BenchmarkCollectionCommit1k(b *testing.B) { benchDeposit(b, 1_000) }
func BenchmarkCollectionCommit1M(b *testing.B) { benchDeposit(b, 1_000_000) }

// BenchmarkBaselineMapCopy1k is the naive way to keep snapshots immutable:
// copy the whole map on every commit. The collection benchmarks are
// reported as ratios to it.
func BenchmarkBaselineMapCopy1k(b *testing.B) {
	m := make(map[string]int, 1000)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("acct-%07d", i)
		m[keys[i]] = 100
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		next := make(map[string]int, len(m))
		for k, v := range m {
			next[k] = v
		}
		next[keys[i%1000]]++
		m = next
		i += 7919
	}
}

// lpatch writes entries outside processes in the order given, as a
// generated Patch does with PutX and DeleteX (a nil Value deletes).
type lpatch []engine.Pending[string, int]

func (p lpatch) Record(tx *engine.Tx) {
	for _, w := range p {
		tx.WriteKey(pathAcc, w.Key, w.Value == nil)
	}
}

func (p lpatch) Apply(s *cstate, v uint64) { s.Acc = engine.CollectionApply(s.Acc, v, p) }

func put(k string, v int) engine.Pending[string, int] {
	return engine.Pending[string, int]{Key: k, Value: &v}
}

func del(k string) engine.Pending[string, int] { return engine.Pending[string, int]{Key: k} }

// Writes of one key in one commit: the last one wins, whatever came
// before it.
func TestCollectionApplyLastWriteWins(t *testing.T) {
	base := engine.NewCollection(map[string]int{"kept": 1, "gone": 2, "back": 3}, nil)
	got := engine.CollectionApply(base, 7, []engine.Pending[string, int]{
		put("twice", 1), put("kept", 10), put("twice", 2), put("twice", 3), // several puts: the last
		put("gone", 20), del("gone"), // put, then delete: absent
		del("back"), put("back", 30), // delete, then put: present
		del("never"), // delete of an absent key: nothing
		put("new", 4), del("new"), put("new", 5),
	})
	want := map[string]int{"twice": 3, "kept": 10, "back": 30, "new": 5}
	if m := engine.CollectionMap(got, nil); !maps.Equal(m, want) {
		t.Fatalf("after Apply: %v, want %v", m, want)
	}
	if m := engine.CollectionMap(base, nil); !maps.Equal(m, map[string]int{"kept": 1, "gone": 2, "back": 3}) {
		t.Fatalf("Apply changed the collection it was called on: %v", m)
	}
	for k := range want {
		if v, _ := engine.CollectionVersion(got, k); v != 7 {
			t.Errorf("entry %s at version %d, want 7", k, v)
		}
	}
}

// bigPatch returns n puts of distinct keys, in no particular key order.
func bigPatch(n int) lpatch {
	p := make(lpatch, n)
	for i := range p {
		p[i] = put(fmt.Sprintf("acct-%07d", (i*7919)%n), i)
	}
	return p
}

// BenchmarkCollectionApply100k applies the writes of one commit of 100,000
// entries to a collection, as the engine does with its lock held.
func BenchmarkCollectionApply100k(b *testing.B) {
	p := bigPatch(100_000)
	var c engine.Collection[string, int]
	b.ReportAllocs()
	for b.Loop() {
		if engine.CollectionLen(engine.CollectionApply(c, 1, p)) != len(p) {
			b.Fatal("entries lost")
		}
	}
}

// BenchmarkPatch100k commits a Patch of 100,000 entries through
// CompareAndSwap on the memory store.
func BenchmarkPatch100k(b *testing.B) {
	p := bigPatch(100_000)
	e := newBank(b, memory.New(), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		v, _ := e.Snapshot()
		if _, err := e.CompareAndSwap(ctx, v, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRuleLoop100k visits the final writes of a call that wrote
// 100,000 entries, as a [*] rule's check does.
func BenchmarkRuleLoop100k(b *testing.B) {
	p := bigPatch(100_000)
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for range engine.FinalWrites(p) {
			n++
		}
		if n != len(p) {
			b.Fatal("writes lost")
		}
	}
}

// A collection writer writes while its run is live and panics after.
func TestCollectionWriterGoesStale(t *testing.T) {
	var tx engine.Tx
	var pending []engine.Pending[string, int]
	gen := uint64(1)
	w := engine.NewCollectionWriter(&tx, 0, &pending, nil, &gen, 1)
	w.Put("a", 1)
	w.Delete("b")
	gen++
	for _, use := range []func(){func() { w.Put("c", 2) }, func() { w.Delete("a") }} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("a stale writer did not panic")
				}
			}()
			use()
		}()
	}
	if len(pending) != 2 || *pending[0].Value != 1 || pending[1].Value != nil {
		t.Fatalf("pending %v", pending)
	}
}
