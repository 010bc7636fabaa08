package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// The fleet tests below (kill, pause, server restarts) record a trail:
// every send of every relay, numbered per relay, and the outcome of the
// ack that follows each send. checkTrail then judges the trail against
// the messages the store committed.

// sendRef names one send of a relay: the relay (a process incarnation,
// or a relay of the test's process) and the send's number, counted from 1
// by that relay.
type sendRef struct {
	relay string
	send  int64
}

// sent is one message of one send, in the order the sink recorded it.
type sent struct {
	sendRef
	id, topic, key string
	seq            int64
}

// committed is what the store holds of a message.
type committed struct {
	topic, key string
	seq        int64
}

// Outcomes of the ack after a send.
const (
	ackDone   = "acked"  // the ack succeeded
	ackFenced = "fenced" // refused by the fencing token (ErrLeaseLost)
	ackError  = "error"  // failed otherwise (the server was unreachable)
	// ackLost is an ack that succeeded and that a crash of the server
	// may have lost: acks are not synced on their own.
	ackLost = "acked, not synced before a crash"
)

// trailVerdict is what checkTrail found.
type trailVerdict struct {
	deliveries, distinct int
	// redelivered counts the repeated deliveries by the reason the earlier
	// send was not acked: ackFenced, ackError or "killed in flight".
	redelivered map[string]int
	errs        []string
}

func (v *trailVerdict) errorf(format string, args ...any) {
	v.errs = append(v.errs, fmt.Sprintf(format, args...))
}

// checkTrail checks the sends of a fleet (in the order they reached the
// sink) against the messages the store committed, all of which must have
// been delivered by then:
//
//   - nothing lost: every committed message was sent at least once;
//   - nothing made up: every message sent is a committed one, with its
//     topic, key and KeySeq;
//   - per-key order: per (topic, key), the first sends of its messages
//     come in KeySeq order with no gap (1, 2, 3, …): a send that goes
//     backwards is a repeat of a message sent before;
//   - repeats only of what was sent and not acked: every message sent
//     again is sent by a relay that lost its lease (the send's own ack
//     was refused, failed if ackErrors allows it, or its relay was killed
//     during it: the old holder's send in flight, which may reach the
//     sink after the new holder's),
//     or each earlier send of it was followed by an ack that was
//     refused by the fencing token (ackFenced) or failed (ackError, only
//     if ackErrors allows it), or by none because its relay was killed
//     during that send (inFlight reports it: the last send of a relay
//     killed while the fleet ran), or by an ack that succeeded but that
//     a crash of the server may have lost before anything synced it
//     (lostAck reports it). A message sent again after an acked send, by
//     a relay whose ack goes through, breaks the lease.
//
// outcome holds the outcome of each send's ack, absent when the relay
// recorded none (it was killed first).
func checkTrail(all map[string]committed, trail []sent, outcome map[sendRef]string, inFlight func(sendRef) bool, ackErrors bool, lostAck func(sendRef) bool) trailVerdict {
	v := trailVerdict{deliveries: len(trail), redelivered: map[string]int{}}
	type tk struct{ topic, key string }
	last := map[tk]int64{}
	sends := map[string][]sendRef{} // id -> its earlier sends
	for _, s := range trail {
		c, ok := all[s.id]
		if !ok {
			v.errorf("%s (key %s, KeySeq %d) sent by %s but never committed", s.id, s.key, s.seq, s.relay)
			continue
		}
		if c.topic != s.topic || c.key != s.key || c.seq != s.seq {
			v.errorf("%s sent by %s as %s/%s #%d, committed as %s/%s #%d", s.id, s.relay, s.topic, s.key, s.seq, c.topic, c.key, c.seq)
		}
		k := tk{s.topic, s.key}
		earlier := sends[s.id]
		sends[s.id] = append(earlier, s.sendRef)
		if len(earlier) == 0 {
			if s.seq != last[k]+1 {
				v.errorf("key %s/%s: KeySeq %d first sent (by %s, send %d) after %d: order broken", s.topic, s.key, s.seq, s.relay, s.send, last[k])
			}
			last[k] = max(last[k], s.seq)
			continue
		}
		// A send of a relay that had lost its lease may reach the sink
		// after the new holder's send and ack: its ack is then refused
		// (fenced), fails (the server was unreachable: ackErrors), or
		// there is none because its relay was killed during it (a killed
		// process's last statement can still be carried out by the
		// server). It is the old holder's in-flight send, whatever the
		// sends before it.
		switch o, recorded := outcome[s.sendRef]; {
		case o == ackFenced:
			v.redelivered["late, "+ackFenced]++
			continue
		case o == ackError && ackErrors:
			v.redelivered["late, "+ackError]++
			continue
		case !recorded && inFlight != nil && inFlight(s.sendRef):
			v.redelivered["late, killed in flight"]++
			continue
		}
		for _, e := range earlier {
			switch o, recorded := outcome[e]; {
			case o == ackFenced:
				v.redelivered[ackFenced]++
			case o == ackError && ackErrors:
				v.redelivered[ackError]++
			case !recorded && inFlight != nil && inFlight(e):
				v.redelivered["killed in flight"]++
			case o == ackDone && lostAck != nil && lostAck(e):
				v.redelivered[ackLost]++
			default:
				why := "acked"
				if o == "" {
					why = "neither acked nor refused, and its relay was not killed during it"
				} else if o != ackDone {
					why = "its ack failed: " + o
				}
				v.errorf("%s (key %s/%s, KeySeq %d) sent again by %s (send %d) after send %d of %s, which was %s",
					s.id, s.topic, s.key, s.seq, s.relay, s.send, e.send, e.relay, why)
			}
		}
	}
	v.distinct = len(sends)
	var lost []string
	for id := range all {
		if len(sends[id]) == 0 {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		v.errorf("%d of %d committed messages never sent, the first %v", len(lost), len(all), lost[:min(len(lost), 5)])
	}
	return v
}

// report fails t with the verdict's errors (the first 20) and logs its
// figures.
func (v trailVerdict) report(t *testing.T, what string) {
	t.Helper()
	for i, e := range v.errs {
		if i == 20 {
			t.Errorf("… and %d more", len(v.errs)-20)
			break
		}
		t.Error(e)
	}
	t.Logf("%s: %d deliveries of %d messages, %d repeated (%v)", what, v.deliveries, v.distinct, v.deliveries-v.distinct, v.redelivered)
}

// committedMessages reads every message of the outbox of schema.
func committedMessages(t *testing.T, pool *pgxpool.Pool, schema string) map[string]committed {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT id, topic, key, key_seq FROM `+schema+`.theus_outbox`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	all := map[string]committed{}
	for rows.Next() {
		var id string
		var c committed
		if err := rows.Scan(&id, &c.topic, &c.key, &c.seq); err != nil {
			t.Fatal(err)
		}
		all[id] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return all
}

// ackOutcome classifies the error of an Ack.
func ackOutcome(err error) string {
	switch {
	case err == nil:
		return ackDone
	case errors.Is(err, postgres.ErrLeaseLost):
		return ackFenced
	default:
		return ackError
	}
}

// trackedStore is a relay's Store that reports the outcome of every Ack,
// with the send it follows (the relay acks what its sink confirmed right
// after each send) and how many messages the fencing token refused in it.
type trackedStore struct {
	*postgres.Store
	send   atomic.Int64 // the number of the sink's last send
	record func(ctx context.Context, send int64, outcome string, fenced uint64)
}

func (s *trackedStore) Ack(ctx context.Context, ids []string) error {
	before := s.FleetStats().Fenced
	err := s.Store.Ack(ctx, ids)
	s.record(ctx, s.send.Load(), ackOutcome(err), s.FleetStats().Fenced-before)
	return err
}

// memTrail is a trail kept in memory, for relays of the test's process.
type memTrail struct {
	mu      sync.Mutex
	trail   []sent
	outcome map[sendRef]string
	sends   map[string]int // sends per relay
	// Acks are not synced on their own (a crash of the server may lose
	// the last ones): clock orders the acks' returns and the starts and
	// ends of the producers' commits, which are synced; ackAt is when each
	// ack returned. A commit that started after an ack and succeeded
	// synced it along (the WAL is written in order): synced is the latest
	// start of such a commit.
	clock  atomic.Int64
	ackAt  map[sendRef]int64
	synced int64
	// unsynced holds, for each crash of the server, the clock's range in
	// which an ack may have been lost.
	unsynced [][2]int64
}

func newMemTrail() *memTrail {
	return &memTrail{outcome: map[sendRef]string{}, sends: map[string]int{}, ackAt: map[sendRef]int64{}}
}

// commit runs a synced commit of a producer, and records that, if it
// succeeded, every ack before its start is synced.
func (m *memTrail) commit(f func() error) error {
	start := m.clock.Add(1)
	err := f()
	if err == nil {
		m.mu.Lock()
		m.synced = max(m.synced, start)
		m.mu.Unlock()
	}
	return err
}

// crash runs f, which crashes the server, and records that the acks
// since the last synced commit before it may be lost.
func (m *memTrail) crash(f func()) {
	m.mu.Lock()
	from := m.synced
	m.mu.Unlock()
	f()
	m.mu.Lock()
	m.unsynced = append(m.unsynced, [2]int64{from, m.clock.Add(1)})
	m.mu.Unlock()
}

// lostAck reports whether the ack after send r succeeded but may have
// been lost in a crash before anything synced it.
func (m *memTrail) lostAck(r sendRef) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.ackAt[r]
	if !ok {
		return false
	}
	for _, w := range m.unsynced {
		if at > w[0] && at < w[1] {
			return true
		}
	}
	return false
}

// relay returns the store and the sink of the relay named name, on st.
func (m *memTrail) relay(name string, st *postgres.Store) (*trackedStore, outbox.Sink) {
	ts := &trackedStore{Store: st}
	ts.record = func(_ context.Context, send int64, outcome string, _ uint64) {
		at := m.clock.Add(1)
		m.mu.Lock()
		m.outcome[sendRef{name, send}] = outcome
		m.ackAt[sendRef{name, send}] = at
		m.mu.Unlock()
	}
	return ts, sinkFunc(func(ctx context.Context, batch []outbox.Message) (int, error) {
		n := ts.send.Add(1)
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, msg := range batch {
			m.trail = append(m.trail, sent{sendRef{name, n}, msg.ID, msg.Topic, msg.Key, int64(msg.KeySeq)})
		}
		m.sends[name]++
		return len(batch), nil
	})
}

// snapshot returns a copy of the trail, the outcomes, and the set of
// message IDs sent.
func (m *memTrail) snapshot() ([]sent, map[sendRef]string, map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[sendRef]string{}
	for k, v := range m.outcome {
		out[k] = v
	}
	ids := map[string]bool{}
	for _, s := range m.trail {
		ids[s.id] = true
	}
	return append([]sent(nil), m.trail...), out, ids
}

// sendsOf returns how many sends the relay named name made.
func (m *memTrail) sendsOf(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sends[name]
}

// pollUntil polls cond every 50ms until it holds, or fails the test after
// within: for conditions that cost the database a query over a whole
// table.
func pollUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !pollFor(within, cond) {
		t.Fatalf("after %v: %s", within, what)
	}
}

// pollFor polls cond every 50ms until it holds (true) or within has
// passed (false).
func pollFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// checkTrail itself: which repeats it lets through and which it reports.
func TestCheckTrailJudgesRepeats(t *testing.T) {
	all := map[string]committed{"m1": {"t", "k", 1}, "m2": {"t", "k", 2}}
	send := func(relay string, n int64, id string, seq int64) sent {
		return sent{sendRef: sendRef{relay, n}, id: id, topic: "t", key: "k", seq: seq}
	}
	killed := func(r sendRef) bool { return r == sendRef{"old", 2} }
	for _, c := range []struct {
		name      string
		trail     []sent
		outcome   map[sendRef]string
		ackErrors bool
		errs      int
	}{
		{"each once", []sent{send("a", 1, "m1", 1), send("a", 1, "m2", 2)},
			map[sendRef]string{{"a", 1}: ackDone}, false, 0},
		{"again after a fenced send", []sent{send("old", 1, "m1", 1), send("new", 1, "m1", 1), send("new", 1, "m2", 2)},
			map[sendRef]string{{"old", 1}: ackFenced, {"new", 1}: ackDone}, false, 0},
		{"again after an acked send, acked", []sent{send("a", 1, "m1", 1), send("a", 1, "m2", 2), send("b", 1, "m1", 1)},
			map[sendRef]string{{"a", 1}: ackDone, {"b", 1}: ackDone}, false, 1},
		{"again after an acked send, by a relay fenced", []sent{send("new", 1, "m1", 1), send("new", 1, "m2", 2), send("old", 1, "m1", 1)},
			map[sendRef]string{{"new", 1}: ackDone, {"old", 1}: ackFenced}, false, 0},
		{"again after an acked send, by a relay killed during it", []sent{send("new", 1, "m1", 1), send("new", 1, "m2", 2), send("old", 2, "m1", 1)},
			map[sendRef]string{{"new", 1}: ackDone}, false, 0},
		{"again after an acked send, no ack and not killed", []sent{send("new", 1, "m1", 1), send("new", 1, "m2", 2), send("old", 3, "m1", 1)},
			map[sendRef]string{{"new", 1}: ackDone}, false, 1},
		{"again after an acked send, by a relay whose ack failed", []sent{send("new", 1, "m1", 1), send("new", 1, "m2", 2), send("old", 3, "m1", 1)},
			map[sendRef]string{{"new", 1}: ackDone, {"old", 3}: ackError}, true, 0},
		{"again after an acked send, by a relay whose ack failed, errors not allowed", []sent{send("new", 1, "m1", 1), send("new", 1, "m2", 2), send("old", 3, "m1", 1)},
			map[sendRef]string{{"new", 1}: ackDone, {"old", 3}: ackError}, false, 1},
		{"order broken", []sent{send("a", 1, "m2", 2), send("a", 1, "m1", 1)}, // m2 too early, m1 too late
			map[sendRef]string{{"a", 1}: ackDone}, false, 2},
		{"lost", []sent{send("a", 1, "m1", 1)},
			map[sendRef]string{{"a", 1}: ackDone}, false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if v := checkTrail(all, c.trail, c.outcome, killed, c.ackErrors, nil); len(v.errs) != c.errs {
				t.Errorf("%d errors, want %d: %v", len(v.errs), c.errs, v.errs)
			}
		})
	}
}
