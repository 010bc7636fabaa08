package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// fleetOpts are the options of the stores of the fleet tests: short
// leases, few partitions.
func fleetOpts(lease time.Duration) []postgres.Option {
	return []postgres.Option{postgres.WithPartitions(8), postgres.WithRelayLease(lease)}
}

// userPool returns a pool of the tests' database, as an application that
// enqueues from its own transactions has.
func userPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), testDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// enqueueKeys commits, in one transaction of the user's pool, a message
// per key.
func enqueueKeys(t testing.TB, st *postgres.Store, pool *pgxpool.Pool, keys ...string) []outbox.Message {
	t.Helper()
	var out []outbox.Message
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		msgs := make([]outbox.Message, len(keys))
		for i, k := range keys {
			msgs[i] = outbox.Message{Topic: "t", Key: k, Payload: []byte(k)}
		}
		var err error
		out, err = st.Enqueue(context.Background(), tx, msgs...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// enqueueOne commits one message with payload.
func enqueueOne(t testing.TB, st *postgres.Store, pool *pgxpool.Pool, key, payload string) outbox.Message {
	t.Helper()
	var out []outbox.Message
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		var err error
		out, err = st.Enqueue(context.Background(), tx, outbox.Message{Topic: "t", Key: key, Payload: []byte(payload)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

// delivery is one message a relay handed to the recording sink.
type delivery struct {
	relay int
	m     outbox.Message
}

// recorder is a sink shared by relays: it records what each sends, in
// the order the sends happen.
type recorder struct {
	mu   sync.Mutex
	log  []delivery
	ids  map[string]int // deliveries per ID
	cond chan struct{}  // closed and replaced at every send
}

func newRecorder() *recorder {
	return &recorder{ids: map[string]int{}, cond: make(chan struct{})}
}

// sink returns the sink of relay i, which records every batch.
func (r *recorder) sink(i int) outbox.Sink {
	return sinkFunc(func(ctx context.Context, batch []outbox.Message) (int, error) {
		r.record(i, batch)
		return len(batch), nil
	})
}

// record records that relay i sent batch.
func (r *recorder) record(i int, batch []outbox.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range batch {
		r.log = append(r.log, delivery{i, m})
		r.ids[m.ID]++
	}
	close(r.cond)
	r.cond = make(chan struct{})
}

type sinkFunc func(ctx context.Context, batch []outbox.Message) (int, error)

func (f sinkFunc) Send(ctx context.Context, batch []outbox.Message) (int, error) {
	return f(ctx, batch)
}

// waitFor waits until all of ids were delivered at least once.
func (r *recorder) waitFor(t *testing.T, ids []string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		r.mu.Lock()
		missing := 0
		for _, id := range ids {
			if r.ids[id] == 0 {
				missing++
			}
		}
		c := r.cond
		r.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-c:
		case <-deadline:
			t.Fatalf("%d of %d messages not delivered after %v", missing, len(ids), within)
		}
	}
}

// check verifies per-key order: the first delivery of each KeySeq of a
// key comes in order, with no gap, and returns the duplicates.
func (r *recorder) check(t *testing.T) (dups []delivery) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	d := outbox.NewDedup()
	for _, x := range r.log {
		fresh, gap := d.Observe(x.m)
		if gap != 0 {
			t.Errorf("key %s: KeySeq %d delivered after %d (relay %d): order broken", x.m.Key, x.m.KeySeq, d.Last(x.m.Topic, x.m.Key), x.relay)
		}
		if !fresh {
			dups = append(dups, x)
		}
	}
	return dups
}

// waitUntil polls cond until it holds, or fails the test.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Three relays on three Stores of one schema share its partitions and
// deliver what transactions enqueue concurrently: every message once, in
// KeySeq order per key. Their poll interval is an hour: notifications
// alone wake them.
func TestFleetDeliversInOrder(t *testing.T) {
	schema := freshSchema(t)
	pool := userPool(t)
	rec := newRecorder()
	var stores []*postgres.Store
	for i := range 3 {
		st := openStore(t, schema, fleetOpts(time.Second)...)
		stores = append(stores, st)
		runRelay(t, outbox.NewRelay(st, rec.sink(i), outbox.WithPollInterval(time.Hour), outbox.WithBatchSize(20)))
	}
	// Every relay holds its share, and no partition is held twice.
	waitUntil(t, 10*time.Second, "the relays hold 3, 3 and 2 partitions", func() bool {
		n := 0
		for _, st := range stores {
			l := st.FleetStats().Leases
			if l < 2 || l > 3 {
				return false
			}
			n += l
		}
		return n == 8
	})
	var ids []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				keys := make([]string, 8)
				for j := range keys {
					keys[j] = fmt.Sprintf("k%d", (w*7+i*3+j)%40)
				}
				out := enqueueKeys(t, stores[w%3], pool, keys...)
				mu.Lock()
				for _, m := range out {
					ids = append(ids, m.ID)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rec.waitFor(t, ids, 20*time.Second)
	if dups := rec.check(t); len(dups) > 0 {
		t.Errorf("%d duplicates without any failure, first %s by relay %d", len(dups), dups[0].m.ID, dups[0].relay)
	}
	per := map[int]int{}
	for _, d := range rec.log {
		per[d.relay]++
	}
	if len(per) != 3 {
		t.Errorf("deliveries per relay: %v, want all three relays to deliver", per)
	}
}

// A relay that joins takes its fair share from the one running, which
// gives partitions back only between batches; when it stops, the first
// one takes them all again.
func TestFleetRebalances(t *testing.T) {
	schema := freshSchema(t)
	pool := userPool(t)
	rec := newRecorder()
	a, b := openStore(t, schema, fleetOpts(600*time.Millisecond)...), openStore(t, schema, fleetOpts(600*time.Millisecond)...)
	runRelay(t, outbox.NewRelay(a, rec.sink(0), outbox.WithPollInterval(time.Hour), outbox.WithBatchSize(7)))
	waitUntil(t, 10*time.Second, "a relay alone holds all 8 partitions", func() bool { return a.FleetStats().Leases == 8 })
	var ids []string
	keys := make([]string, 30)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	for range 5 {
		for _, m := range enqueueKeys(t, a, pool, keys...) {
			ids = append(ids, m.ID)
		}
	}
	stopB := runRelay(t, outbox.NewRelay(b, rec.sink(1), outbox.WithPollInterval(time.Hour), outbox.WithBatchSize(7)))
	for range 5 {
		for _, m := range enqueueKeys(t, a, pool, keys...) {
			ids = append(ids, m.ID)
		}
	}
	waitUntil(t, 10*time.Second, "two relays hold 4 partitions each", func() bool {
		return a.FleetStats().Leases == 4 && b.FleetStats().Leases == 4
	})
	if b.FleetStats().Handovers == 0 {
		t.Errorf("the joining relay took over no partition")
	}
	for range 5 {
		for _, m := range enqueueKeys(t, a, pool, keys...) {
			ids = append(ids, m.ID)
		}
	}
	rec.waitFor(t, ids, 20*time.Second)
	// Everything acked: B stops between batches (a relay stopped in the
	// middle of one leaves it unacked, to be delivered again).
	waitUntil(t, 10*time.Second, "every message acked", func() bool {
		st, err := a.Stats(context.Background())
		return err == nil && st.Pending == 0
	})
	stopB()
	waitUntil(t, 10*time.Second, "the remaining relay holds all 8 partitions", func() bool { return a.FleetStats().Leases == 8 })
	for _, m := range enqueueKeys(t, a, pool, keys...) {
		ids = append(ids, m.ID)
	}
	rec.waitFor(t, ids, 20*time.Second)
	if dups := rec.check(t); len(dups) > 0 {
		t.Errorf("%d duplicates after voluntary hand-overs, first %s", len(dups), dups[0].m.ID)
	}
}

// A relay paused past its lease (its renewals stop; its sink is stuck in
// a send) loses its partitions to another relay; when it resumes, its
// ack, or its record of a failure that would park the message, is refused
// by the fencing token and changes nothing. The messages it had sent are
// the only ones delivered twice.
func TestFleetFencing(t *testing.T) {
	for _, mode := range []string{"ack", "park"} {
		t.Run(mode, func(t *testing.T) {
			schema := freshSchema(t)
			pool := userPool(t)
			rec := newRecorder()
			lease := 500 * time.Millisecond
			a, b := openStore(t, schema, fleetOpts(lease)...), openStore(t, schema, fleetOpts(lease)...)
			stuck, resume := make(chan []outbox.Message, 1), make(chan struct{})
			var once sync.Once
			// a's first send is stuck until resume; in mode ack, the
			// consumer got the batch, in mode park it refuses it.
			sinkA := sinkFunc(func(ctx context.Context, batch []outbox.Message) (int, error) {
				first := false
				once.Do(func() { first = true })
				if first && mode == "park" {
					stuck <- batch
					<-resume
					return 0, outbox.Permanent(errors.New("refused"))
				}
				rec.record(0, batch)
				if first {
					stuck <- batch
					<-resume
				}
				return len(batch), nil
			})
			relayA := outbox.NewRelay(a, sinkA, outbox.WithPollInterval(time.Hour))
			runRelay(t, relayA)
			msgs := enqueueKeys(t, a, pool, "x", "y", "z")
			var sent []outbox.Message
			select {
			case sent = <-stuck:
			case <-time.After(10 * time.Second):
				t.Fatal("relay a sent nothing")
			}
			// a is paused: it renews nothing; b takes everything over.
			a.PauseLeases(true)
			runRelay(t, outbox.NewRelay(b, rec.sink(1), outbox.WithPollInterval(time.Hour)))
			waitUntil(t, 10*time.Second, "b holds all 8 partitions", func() bool { return b.FleetStats().Leases == 8 })
			ids := make([]string, len(msgs))
			for i, m := range msgs {
				ids[i] = m.ID
			}
			rec.waitFor(t, ids, 10*time.Second)
			close(resume)
			waitUntil(t, 10*time.Second, "a's write refused", func() bool { return a.FleetStats().Fenced > 0 })
			if s := relayA.Stats(); s.Delivered != 0 || s.Parked != 0 {
				t.Errorf("the fenced relay counts %+v", s)
			}
			parked, err := b.Parked(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(parked) != 0 {
				t.Errorf("the fenced relay parked %s", parked[0].ID)
			}
			st, err := b.Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.Pending != 0 {
				t.Errorf("%d messages pending", st.Pending)
			}
			dups := rec.check(t)
			for _, d := range dups {
				if d.relay != 1 {
					t.Errorf("duplicate %s from relay %d", d.m.ID, d.relay)
				}
			}
			if mode == "ack" && len(dups) != len(sent) {
				t.Errorf("%d duplicates, want the %d messages the paused relay had sent", len(dups), len(sent))
			}
		})
	}
}

// A schema of layout 1 (one relay per schema, no partitions) is upgraded
// by Open: its undelivered messages get their partitions, and a relay
// delivers them.
func TestUpgradeFromLayout1(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	st := openStore(t, schema)
	pool := userPool(t)
	out := enqueueKeys(t, st, pool, "a", "b", "c")
	st.Close()
	// Back to layout 1.
	for _, q := range []string{
		`ALTER TABLE ` + schema + `.theus_outbox DROP COLUMN part`,
		`DROP TABLE ` + schema + `.theus_leases`,
		`DROP TABLE ` + schema + `.theus_relays`,
		`DELETE FROM ` + schema + `.theus_meta WHERE name = 'partitions'`,
		`UPDATE ` + schema + `.theus_meta SET value = '1' WHERE name = 'layout'`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	st = openStore(t, schema, postgres.WithPartitions(4))
	if st.Partitions() != 4 {
		t.Fatalf("%d partitions", st.Partitions())
	}
	rec := newRecorder()
	runRelay(t, outbox.NewRelay(st, rec.sink(0)))
	rec.waitFor(t, []string{out[0].ID, out[1].ID, out[2].ID}, 10*time.Second)
	st.Close()
	if _, err := postgres.Open(ctx, testDSN(), postgres.WithSchema(schema), postgres.WithPartitions(8)); err == nil {
		t.Fatal("Open with another partition count succeeded")
	}
}

// A relay whose process died (its sessions ended, its leases not
// renewed) gives its partitions up at once: another relay takes them at
// its next tick although their leases run for an hour more, because the
// dead relay's advisory lock went with its session.
func TestFleetTakesOverADeadSessionsLeases(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	pool := userPool(t)
	a := openStore(t, schema, fleetOpts(time.Hour)...)
	b := openStore(t, schema, fleetOpts(600*time.Millisecond)...)
	releaseA, err := a.ClaimRelay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(releaseA)
	if n := a.FleetStats().Leases; n != 8 {
		t.Fatalf("the first relay holds %d partitions, want 8", n)
	}
	if a.RelaySession() == 0 {
		t.Fatal("the relay holds no lock session")
	}
	releaseB, err := b.ClaimRelay(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(releaseB)
	if n := b.FleetStats().Leases; n != 0 {
		t.Fatalf("the second relay took %d partitions held for an hour", n)
	}
	// A dies as a killed process does: nothing renews, its sessions end.
	a.PauseLeases(true)
	for _, pid := range append(a.Backends(), a.RelaySession()) {
		if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, int32(pid)); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, 30*time.Second, "the live relay holds all 8 partitions", func() bool { return b.FleetStats().Leases == 8 })
	if h := b.FleetStats().Handovers; h != 8 {
		t.Errorf("%d hand-overs, want 8", h)
	}
}

// A relay that stops while it takes its lock session (its context
// cancelled) is not a fault: nothing is logged. The same Store takes a
// session with a live context, so the quiet was not a Store that cannot.
func TestRelaySessionStoppingLogsNothing(t *testing.T) {
	var logged bytes.Buffer
	st := openStore(t, freshSchema(t), append(fleetOpts(time.Hour), postgres.WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))...)
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	if st.TakeSession(stopped) {
		t.Fatal("a session was taken with a cancelled context")
	}
	if logged.Len() > 0 {
		t.Fatalf("stopping logged:\n%s", logged.String())
	}
	if !st.TakeSession(context.Background()) {
		t.Fatalf("no session with a live context; logged:\n%s", logged.String())
	}
}
