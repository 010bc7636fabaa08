// Package evolvetest is the table of contract changes every durable store
// must treat alike: state written by one contract, recovered by another.
// Compatible changes recover the old data with the expected values (and
// warn when they drop some); breaking ones are refused naming the path and
// the reason. A store's tests call Run with a way to open its data again.
package evolvetest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
)

// Opener opens the same durable store each time it is called (a file, a
// database); close releases what open took, so that the next open may
// take it.
type Opener func(t *testing.T) (st engine.Store, close func())

// Fresh returns an Opener of new, empty data for each case of the table.
type Fresh func(t *testing.T) Opener

// St is the state of every contract of the table; a contract's schema
// declares the fields it has, with the types its type parameters say.
// Seq is the same in all, so that any of them can commit.
type St[K cmp.Ordered, O, C, N any] struct {
	Seq       int64
	Orders    engine.Collection[K, O]
	OrdersMap map[K]O // domain.orders declared as a plain field
	Count     C
	Name      N
	Tags      []string
}

// Order, OrderAdded, OrderRemoved and OrderWide are the versions of the
// stored order type.
type (
	Order struct {
		ID    string `json:"id"`
		Seats int32  `json:"seats"`
		Note  string `json:"note"`
	}
	OrderAdded struct {
		ID     string `json:"id"`
		Seats  int32  `json:"seats"`
		Note   string `json:"note"`
		Status string `json:"status"`
	}
	OrderRemoved struct {
		ID    string `json:"id"`
		Seats int32  `json:"seats"`
	}
	OrderWide struct {
		ID    string `json:"id"`
		Seats int64  `json:"seats"`
		Note  string `json:"note"`
	}
)

// contract says which fields a schema declares, and their fingerprints.
type contract struct {
	order       string // fingerprint of the order type
	key         string // collection key type
	count, name string // "" when the contract does not declare them
	tags        bool
	ordersPlain bool // domain.orders is map[K]O, not a collection
}

var v1 = contract{order: "Order{id string, seats int32, note string}", key: "string", count: "int32", name: "string"}

func schema[K cmp.Ordered, O, C, N any](c contract) *engine.Schema[St[K, O, C, N]] {
	type S = St[K, O, C, N]
	sch := &engine.Schema[S]{
		Paths: []string{"domain.seq"},
		Clone: func(s *S) S { return *s },
		State: []engine.StateField[S]{engine.ValueField("domain.seq", "int64", func(s *S) *int64 { return &s.Seq })},
	}
	if c.ordersPlain {
		sch.State = append(sch.State, engine.ValueField("domain.orders", "map["+c.key+"]"+c.order, func(s *S) *map[K]O { return &s.OrdersMap }))
	} else {
		sch.State = append(sch.State, engine.CollectionField("domain.orders", "collection["+c.key+"]"+c.order, func(s *S) *engine.Collection[K, O] { return &s.Orders }))
	}
	if c.count != "" {
		sch.State = append(sch.State, engine.ValueField("domain.count", c.count, func(s *S) *C { return &s.Count }))
	}
	if c.name != "" {
		sch.State = append(sch.State, engine.ValueField("domain.name", c.name, func(s *S) *N { return &s.Name }))
	}
	if c.tags {
		sch.State = append(sch.State, engine.ValueField("domain.tags", "[]string", func(s *S) *[]string { return &s.Tags }))
	}
	return sch
}

// setSeq is the commit every contract can make.
type setSeq[S any] struct {
	v   int64
	set func(*S, int64)
}

func (c setSeq[S]) Record(tx *engine.Tx) { tx.Write(0) }
func (c setSeq[S]) Apply(s *S, _ uint64) { c.set(s, c.v) }
func seq[K cmp.Ordered, O, C, N any](v int64) setSeq[St[K, O, C, N]] {
	return setSeq[St[K, O, C, N]]{v, func(s *St[K, O, C, N], v int64) { s.Seq = v }}
}

// version is one contract of the table, opened on a store.
type version struct {
	contract contract
	// start starts an engine of the contract on st; check checks the
	// recovered state, commit makes one commit.
	start func(ctx context.Context, st engine.Store, log *slog.Logger) (check func() error, commit func() error, close func(), err error)
}

func newVersion[K cmp.Ordered, O, C, N any](c contract, check func(St[K, O, C, N]) error, opts ...engine.Option) version {
	return version{contract: c, start: func(ctx context.Context, st engine.Store, log *slog.Logger) (func() error, func() error, func(), error) {
		opts := append([]engine.Option{engine.WithStore(st), engine.WithLogger(log)}, opts...)
		e, err := engine.New(ctx, schema[K, O, C, N](c), St[K, O, C, N]{}, opts...)
		if err != nil {
			return nil, nil, nil, err
		}
		chk := func() error {
			_, s := e.Snapshot()
			return check(*s)
		}
		commit := func() error {
			v, _ := e.Snapshot()
			_, err := e.CompareAndSwap(ctx, v, seq[K, O, C, N](int64(v)+1))
			return err
		}
		return chk, commit, func() { e.Close() }, nil
	}}
}

// Case is one change of contract: data written by v1, recovered by New.
type Case struct {
	Name string
	new  version
	// Drift, for a breaking change, is the reason the store gives, with
	// the path; Warn, for a compatible one that drops values, what the
	// engine logs.
	Drift, Warn string
	// Back0 and Back1 are the reasons v1 is refused the data after New
	// started on it, and after New committed ("": v1 opens it).
	Back0, Back1 string
	// Migrations counts the runs of the case's migration, which must run
	// once per value in all: Values times (once when Values is 0).
	Migrations *atomic.Int32
	Values     int32
}

// migrated counts the runs of a migration.
func migrated[Old, New any](path string, n *atomic.Int32, f func(Old) (New, error)) engine.Option {
	return engine.WithMigrations(engine.Migrate(path, func(o Old) (New, error) {
		n.Add(1)
		return f(o)
	}))
}

// OrderDefault is OrderAdded whose new field status declares a default,
// and whose note declares one too, decoding as the generated code does
// (contract `default:`): fields the stored value lacks get the defaults.
type OrderDefault OrderAdded

func (x *OrderDefault) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	type plain OrderDefault
	p := plain(*x)
	p.Note, p.Status = "none", "open"
	err := json.Unmarshal(data, &p)
	*x = OrderDefault(p)
	return err
}

// OrderSeats is Order with its seats as a string.
type OrderSeats struct {
	ID    string `json:"id"`
	Seats string `json:"seats"`
	Note  string `json:"note"`
}

var narrowedRuns, seatsRuns, failedRuns atomic.Int32

func orderOf[O any](s St[string, O, int32, string]) (*O, error) {
	o, ok := engine.CollectionGet(s.Orders, "o1")
	if !ok {
		return nil, fmt.Errorf("order o1 not recovered")
	}
	return o, nil
}

// Cases is the table.
var Cases = []Case{
	{Name: "field added", new: newVersion(contract{order: "Order{id string, seats int32, note string, status string}", key: "string", count: "int32", name: "string"},
		func(s St[string, OrderAdded, int32, string]) error {
			o, err := orderOf(s)
			if err != nil || *o != (OrderAdded{ID: "o1", Seats: 3, Note: "aisle"}) || s.Count != 7 {
				return fmt.Errorf("%+v, count %d, %v", o, s.Count, err)
			}
			return nil
		})},
	{Name: "field added with default", new: newVersion(contract{order: "Order{id string, seats int32, note string, status string}", key: "string", count: "int32", name: "string"},
		func(s St[string, OrderDefault, int32, string]) error {
			// o1 lacks status: the default. o2 has note "", stored: kept,
			// not replaced by note's default.
			o1, ok1 := engine.CollectionGet(s.Orders, "o1")
			o2, ok2 := engine.CollectionGet(s.Orders, "o2")
			if !ok1 || !ok2 || *o1 != (OrderDefault{ID: "o1", Seats: 3, Note: "aisle", Status: "open"}) ||
				*o2 != (OrderDefault{ID: "o2", Seats: 1, Note: "", Status: "open"}) {
				return fmt.Errorf("o1 %+v, o2 %+v", o1, o2)
			}
			return nil
		})},
	{Name: "field removed", Warn: "domain.orders[*].note: field removed", new: newVersion(contract{order: "Order{id string, seats int32}", key: "string", count: "int32", name: "string"},
		func(s St[string, OrderRemoved, int32, string]) error {
			o, err := orderOf(s)
			if err != nil || *o != (OrderRemoved{ID: "o1", Seats: 3}) {
				return fmt.Errorf("%+v, %v", o, err)
			}
			return nil
		})},
	{Name: "integers widened", Back1: "narrowed (int64 -> int32)", new: newVersion(contract{order: "Order{id string, seats int64, note string}", key: "string", count: "int64", name: "string"},
		func(s St[string, OrderWide, int64, string]) error {
			o, ok := engine.CollectionGet(s.Orders, "o1")
			if !ok || o.Seats != 3 || s.Count != 7 || s.Name != "v1" {
				return fmt.Errorf("%+v, count %d, name %q", o, s.Count, s.Name)
			}
			return nil
		})},
	{Name: "state field added", new: newVersion(contract{order: v1.order, key: "string", count: "int32", name: "string", tags: true},
		func(s St[string, Order, int32, string]) error {
			if s.Tags != nil || s.Count != 7 || s.Name != "v1" {
				return fmt.Errorf("tags %v, count %d, name %q", s.Tags, s.Count, s.Name)
			}
			return nil
		})},
	{Name: "state field removed", Warn: "domain.name: state field removed", new: newVersion(contract{order: v1.order, key: "string", count: "int32"},
		func(s St[string, Order, int32, string]) error {
			if s.Name != "" || s.Count != 7 {
				return fmt.Errorf("name %q, count %d", s.Name, s.Count)
			}
			return nil
		})},
	{Name: "narrowed", Drift: "domain.count: narrowed (int32 -> int16)",
		new: newVersion(contract{order: v1.order, key: "string", count: "int16", name: "string"}, func(St[string, Order, int16, string]) error { return nil })},
	{Name: "type changed", Drift: "domain.name: type changed (string -> int64)",
		new: newVersion(contract{order: v1.order, key: "string", count: "int32", name: "int64"}, func(St[string, Order, int32, int64]) error { return nil })},
	{Name: "nested type changed", Drift: "domain.orders[*].seats: type changed (int32 -> string)",
		new: newVersion(contract{order: "Order{id string, seats string, note string}", key: "string", count: "int32", name: "string"}, func(St[string, Order, int32, string]) error { return nil })},
	{Name: "key type changed", Drift: "domain.orders: key type changed (collection[string]Order -> collection[int64]Order)",
		new: newVersion(contract{order: v1.order, key: "int64", count: "int32", name: "string"}, func(St[int64, Order, int32, string]) error { return nil })},
	{Name: "collection to value", Drift: "domain.orders: collection <-> value",
		new: newVersion(contract{order: v1.order, key: "string", count: "int32", name: "string", ordersPlain: true}, func(St[string, Order, int32, string]) error { return nil })},
	{Name: "narrowed, migrated", Migrations: &narrowedRuns,
		new: newVersion(contract{order: v1.order, key: "string", count: "int16", name: "string"},
			func(s St[string, Order, int16, string]) error {
				if s.Count != 14 || s.Name != "v1" {
					return fmt.Errorf("count %d, name %q", s.Count, s.Name)
				}
				return nil
			},
			migrated("domain.count", &narrowedRuns, func(n int32) (int16, error) { return int16(n * 2), nil }))},
	{Name: "entries retyped, migrated", Migrations: &seatsRuns, Values: 2,
		Back0: "domain.orders[*].seats: type changed (string -> int32)", Back1: "domain.orders[*].seats: type changed (string -> int32)",
		new: newVersion(contract{order: "Order{id string, seats string, note string}", key: "string", count: "int32", name: "string"},
			func(s St[string, OrderSeats, int32, string]) error {
				o, err := orderOf(s)
				if err != nil || *o != (OrderSeats{ID: "o1", Seats: "3 seats", Note: "aisle"}) || s.Count != 7 {
					return fmt.Errorf("%+v, count %d, %v", o, s.Count, err)
				}
				return nil
			},
			migrated("domain.orders", &seatsRuns, func(o Order) (OrderSeats, error) {
				return OrderSeats{ID: o.ID, Seats: fmt.Sprintf("%d seats", o.Seats), Note: o.Note}, nil
			}))},
	{Name: "migration fails", Drift: "theus: migrate domain.count: no", Migrations: &failedRuns,
		new: newVersion(contract{order: v1.order, key: "string", count: "int16", name: "string"}, func(St[string, Order, int16, string]) error { return nil },
			migrated("domain.count", &failedRuns, func(int32) (int16, error) { return 0, errors.New("no") }))},
}

// old is the contract that writes the data of every case.
var old = newVersion(v1, func(St[string, Order, int32, string]) error { return nil })

// Run runs the table on a store: for each case, v1 writes an order and two
// plain fields, then the case's contract opens the data.
//
// A compatible change recovers the values (and logs Warn). The store
// records the new contract's types only with its first commit: before it,
// v1 opens the data again; after it, v1 is refused when its types are not
// compatible with the new ones (a widened integer, narrowed back).
// A breaking change is refused with the path and the reason.
func Run(t *testing.T, fresh Fresh) {
	ctx := context.Background()
	for _, c := range Cases {
		t.Run(c.Name, func(t *testing.T) {
			if c.Migrations != nil {
				c.Migrations.Store(0)
				defer func() {
					if n, want := c.Migrations.Load(), max(c.Values, 1); n != want && c.Drift == "" {
						t.Errorf("the migration ran %d times, want %d (once per value)", n, want)
					}
				}()
			}
			open := fresh(t)
			write(t, open)

			logs := &recorder{}
			st, closeStore := open(t)
			check, _, closeEngine, err := c.new.start(ctx, st, slog.New(logs))
			if c.Drift != "" {
				closeStore()
				if err == nil {
					closeEngine()
					t.Fatalf("recovered, want refused: %s", c.Drift)
				}
				if !strings.Contains(err.Error(), c.Drift) {
					t.Fatalf("err = %v, want %q", err, c.Drift)
				}
				// Refused: nothing was written.
				reopen(t, open, old, "")
				return
			}
			if err != nil {
				closeStore()
				t.Fatal(err)
			}
			if err := check(); err != nil {
				t.Errorf("recovered state: %v", err)
			}
			if c.Warn != "" && !logs.has(c.Warn) {
				t.Errorf("warnings %q, want %q", logs.all(), c.Warn)
			}
			closeEngine()
			closeStore()

			// No commit yet: the data is still v1's (unless migrated).
			reopen(t, open, old, c.Back0)
			// The first commit records the new types.
			st, closeStore = open(t)
			_, commit, closeEngine, err := c.new.start(ctx, st, slog.New(&recorder{}))
			if err != nil {
				closeStore()
				t.Fatal(err)
			}
			if err := commit(); err != nil {
				t.Fatal(err)
			}
			closeEngine()
			closeStore()
			reopen(t, open, old, c.Back1)
		})
	}
}

// write has v1 write its data: orders o1 and o2 (its note empty), count 7,
// name "v1".
func write(t *testing.T, open Opener) {
	t.Helper()
	ctx := context.Background()
	st, closeStore := open(t)
	defer closeStore()
	type S = St[string, Order, int32, string]
	initial := S{Orders: engine.NewCollection(map[string]Order{"o1": {ID: "o1", Seats: 3, Note: "aisle"}, "o2": {ID: "o2", Seats: 1}}, nil), Count: 7, Name: "v1"}
	e, err := engine.New(ctx, schema[string, Order, int32, string](v1), initial, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.CompareAndSwap(ctx, 0, seq[string, Order, int32, string](1)); err != nil {
		t.Fatal(err)
	}
}

// reopen opens the data with v and checks it is refused with want, or
// opens when want is "".
func reopen(t *testing.T, open Opener, v version, want string) {
	t.Helper()
	st, closeStore := open(t)
	defer closeStore()
	_, _, closeEngine, err := v.start(context.Background(), st, slog.New(&recorder{}))
	switch {
	case err == nil && want == "":
		closeEngine()
	case err == nil:
		closeEngine()
		t.Fatalf("the first contract opened the data, want %q", want)
	case want == "" || !strings.Contains(err.Error(), want):
		t.Fatalf("the first contract: %v, want %q", err, want)
	}
}

// recorder is a slog.Handler that keeps the messages.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.msgs...)
}

func (r *recorder) has(s string) bool {
	for _, m := range r.all() {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}
