package outbox_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/servicetest"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink"
	"github.com/theus-go/theus/runtime/store/memory"
	"github.com/theus-go/theus/runtime/store/postgres"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// parkingStore is what the parking tests need of a store.
type parkingStore interface {
	engine.Store
	outbox.Parking
}

// stores runs f on a memory store, on a SQLite store and on a PostgreSQL
// store (in a schema of its own, dropped at the end; skipped when
// THEUS_TEST_POSTGRES is unreachable, unless THEUS_REQUIRE_SERVICES=1).
func stores(t *testing.T, f func(t *testing.T, p *keyProducer)) {
	t.Run("memory", func(t *testing.T) { f(t, newKeyProducer(t, memory.New())) })
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "outbox.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		f(t, newKeyProducer(t, st))
	})
	t.Run("postgres", func(t *testing.T) { f(t, newKeyProducer(t, openPostgres(t))) })
}

// openPostgres opens a PostgreSQL store in a fresh schema, dropped when the
// test ends.
func openPostgres(t *testing.T, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	db := servicetest.Postgres(t)
	var b [6]byte
	rand.Read(b[:])
	schema := "theus_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if _, err := db.Exec(`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	dsn := servicetest.Addr("THEUS_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	st, err := postgres.Open(context.Background(), dsn, append([]postgres.Option{postgres.WithSchema(schema)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// keyProducer commits messages to a store as the engine does.
type keyProducer struct {
	st      parkingStore
	version uint64
	seq     map[outbox.TopicKey]uint64
}

func newKeyProducer(t *testing.T, st parkingStore) *keyProducer {
	t.Helper()
	// An engine with no state hands the store its codec, as NewEngine does.
	e, err := engine.New(context.Background(), &engine.Schema[struct{}]{Clone: func(s *struct{}) struct{} { return *s }}, struct{}{}, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	return &keyProducer{st: st, seq: map[outbox.TopicKey]uint64{}}
}

// commit commits one version with a message per key; a payload is
// "key#KeySeq".
func (p *keyProducer) commit(t *testing.T, keys ...string) {
	t.Helper()
	p.version++
	rec := &engine.Record{Version: p.version, State: &struct{}{}}
	for i, k := range keys {
		tk := outbox.TopicKey{Topic: "t", Key: k}
		p.seq[tk]++
		rec.Messages = append(rec.Messages, outbox.Message{
			ID: outbox.MessageID(0, p.version, i), Topic: "t", Key: k, KeySeq: p.seq[tk], Version: p.version,
			Payload: fmt.Appendf(nil, "%s#%d", k, p.seq[tk]), CreatedAt: time.Unix(1700000000, 0),
		})
	}
	if err := p.st.Commit(context.Background(), []*engine.Record{rec}); err != nil {
		t.Fatal(err)
	}
}

// poisonSink fails every delivery of the poisoned payloads with err.
type poisonSink struct {
	c      *collector
	mu     sync.Mutex
	poison map[string]error
	tries  map[string]int
}

func (p *poisonSink) receive(ctx context.Context, m outbox.Message) error {
	p.mu.Lock()
	err := p.poison[string(m.Payload)]
	if err != nil {
		p.tries[string(m.Payload)]++
	}
	p.mu.Unlock()
	if err != nil {
		return err
	}
	return p.c.receive(ctx, m)
}

func (p *poisonSink) cure(payload string) {
	p.mu.Lock()
	delete(p.poison, payload)
	p.mu.Unlock()
}

func waitParked(t *testing.T, st outbox.Parking, n int) []outbox.ParkedMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ps, err := st.Parked(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) >= n {
			return ps
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d parked messages, want %d", len(ps), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// A poison message parks after MaxAttempts and holds back only its own
// key; the other keys are all delivered. Replay then delivers the parked
// message and the ones behind it, in order.
func TestPoisonMessageParksItsKey(t *testing.T) {
	stores(t, func(t *testing.T, p *keyProducer) {
		for range 5 {
			p.commit(t, "bad", "good", "other")
		}
		c := newCollector(10) // good and other: 5 each
		s := &poisonSink{c: c, poison: map[string]error{"bad#2": errors.New("malformed")}, tries: map[string]int{}}
		r := outbox.NewRelay(p.st, sink.Func(s.receive), outbox.WithMaxAttempts(3),
			outbox.WithRelayBackoff(time.Microsecond, time.Millisecond))
		stop := runRelay(t, r)
		waitFor(t, c)
		parked := waitParked(t, p.st, 1)
		if pm := parked[0]; len(parked) != 1 || string(pm.Payload) != "bad#2" || pm.Attempts != 3 || pm.LastError != "malformed" {
			t.Fatalf("parked %+v, want bad#2 after 3 attempts with its error", parked)
		}
		// Held back: bad#3.. are neither delivered nor offered.
		for _, m := range c.messages() {
			if m.Key == "bad" && m.KeySeq > 1 {
				t.Fatalf("%s delivered while bad#2 is parked", m.Payload)
			}
		}
		for _, m := range undeliveredOf(t, p.st) {
			if m.Key == "bad" {
				t.Fatalf("Undelivered returned %s behind a parked message", m.Payload)
			}
		}
		// The relay counts the parking once the store has recorded it:
		// wait for the count, then check it.
		deadline := time.Now().Add(10 * time.Second)
		for r.Stats().Parked == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if st := r.Stats(); st.Parked != 1 || st.Failures != 3 {
			t.Fatalf("stats %+v, want 1 parked after 3 failures", st)
		}

		// The operator fixes the cause and replays the key.
		s.cure("bad#2")
		c.mu.Lock()
		c.want, c.done = c.fresh+4, make(chan struct{})
		c.mu.Unlock()
		if n, err := p.st.Replay(context.Background(), "t", "bad"); n != 1 || err != nil {
			t.Fatalf("Replay = %d, %v", n, err)
		}
		waitFor(t, c)
		stop()
		got := c.messages()
		checkPerKeyOrder(t, got)
		var bad []string
		for _, m := range got {
			if m.Key == "bad" {
				bad = append(bad, string(m.Payload))
			}
		}
		if fmt.Sprint(bad) != "[bad#1 bad#2 bad#3 bad#4 bad#5]" {
			t.Fatalf("key bad delivered as %v", bad)
		}
		if ps, _ := p.st.Parked(context.Background()); len(ps) != 0 {
			t.Fatalf("still parked after replay: %+v", ps)
		}
	})
}

// Permanent parks at once; Unavailable never counts; Skip lets the key go
// on without the skipped message.
func TestErrorClasses(t *testing.T) {
	stores(t, func(t *testing.T, p *keyProducer) {
		p.commit(t, "perm")
		p.commit(t, "perm")
		p.commit(t, "down")
		c := newCollector(2) // perm#2, then down#1 once the sink is back
		s := &poisonSink{c: c, tries: map[string]int{}, poison: map[string]error{
			"perm#1": outbox.Permanent(errors.New("schema refused")),
			"down#1": outbox.Unavailable(errors.New("connection refused")),
		}}
		r := outbox.NewRelay(p.st, sink.Func(s.receive), outbox.WithMaxAttempts(2),
			outbox.WithRelayBackoff(time.Microsecond, 100*time.Microsecond))
		stop := runRelay(t, r)
		defer stop()
		parked := waitParked(t, p.st, 1)
		if parked[0].ID != outbox.MessageID(0, 1, 0) || parked[0].Attempts != 1 {
			t.Fatalf("parked %+v, want perm#1 after one attempt", parked)
		}
		// down#1 keeps failing far beyond MaxAttempts without parking.
		for {
			s.mu.Lock()
			n := s.tries["down#1"]
			s.mu.Unlock()
			if n >= 20 {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		if ps, _ := p.st.Parked(context.Background()); len(ps) != 1 {
			t.Fatalf("an Unavailable error parked a message: %+v", ps)
		}
		s.cure("down#1")
		if err := p.st.Skip(context.Background(), parked[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := p.st.Skip(context.Background(), parked[0].ID); !errors.Is(err, outbox.ErrNotParked) {
			t.Fatalf("second Skip: %v, want ErrNotParked", err)
		}
		waitFor(t, c)
		for _, m := range c.messages() {
			if string(m.Payload) == "perm#1" {
				t.Fatal("the skipped message was delivered")
			}
		}
	})
}

func undeliveredOf(t *testing.T, st outbox.Store) []outbox.Message {
	t.Helper()
	msgs, err := st.Undelivered(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}
