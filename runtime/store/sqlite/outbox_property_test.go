package sqlite_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// outboxModel is what the outbox must hold: every message committed, in
// commit order, with whether it was delivered and whether it is parked.
type outboxModel struct {
	msgs      []modelMsg
	delivered map[string]bool
	parked    map[string]bool
	seqs      map[string]uint64 // last KeySeq per key
}

type modelMsg struct {
	id, key string
	seq     uint64
}

// undelivered is what Undelivered must return, up to limit: the messages
// not delivered, in commit order, without those of a key that has a
// parked message.
func (m *outboxModel) undelivered(limit int) []string {
	blocked := map[string]bool{}
	for _, msg := range m.msgs {
		if m.parked[msg.id] {
			blocked[msg.key] = true
		}
	}
	var out []string
	for _, msg := range m.msgs {
		if len(out) < limit && !m.delivered[msg.id] && !blocked[msg.key] {
			out = append(out, msg.id)
		}
	}
	return out
}

// pending counts the messages neither delivered nor parked.
func (m *outboxModel) pending() int {
	n := 0
	for _, msg := range m.msgs {
		if !m.delivered[msg.id] && !m.parked[msg.id] {
			n++
		}
	}
	return n
}

// The SQLite outbox (cursor, held, ready and delivered states, the relay's
// last read, the latest commits it keeps in memory for the relay) against
// a model, under random commits, deliveries of per-key prefixes in any
// order across keys, failures, parking, Replay and Skip (by this store or
// by one of another process), Prune and restarts: Undelivered returns
// exactly what the model says, in order, Stats counts it, and KeySeqs
// continue without a gap after a restart.
func TestOutboxAgainstModel(t *testing.T) {
	fewerChecks(t, 30)
	var tailReads uint64 // reads answered from memory, over all the runs
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		dir := t.TempDir()
		path := filepath.Join(dir, "outbox.db")
		var now atomic.Int64
		now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
		clock := func() time.Time { return time.Unix(0, now.Load()) }
		const nAccounts = 4
		// How many messages the store keeps for the relay: few, so that
		// commits overflow it (0: the default).
		tailCap := rapid.SampledFrom([]int{0, 1, 2, 5}).Draw(rt, "tail cap")
		openAll := func() (*sqlite.Store, *bank.Engine) {
			st, err := sqlite.Open(ctx, path, sqlite.WithRetention(time.Hour), sqlite.WithPruneBatch(3), sqlite.WithClock(clock),
				sqlite.WithSynchronous("NORMAL")) // what is checked is the outbox, not its syncs
			if err != nil {
				rt.Fatal(err)
			}
			st.SetTailCap(tailCap)
			eng, err := bank.NewEngine(ctx, accounts(nAccounts, 1<<40), bank.Bank{}, engine.WithStore(st))
			if err != nil {
				rt.Fatal(err)
			}
			return st, eng
		}
		st, eng := openAll()
		defer func() { tailReads += st.TailReads(); eng.Close(); st.Close() }()
		m := &outboxModel{delivered: map[string]bool{}, parked: map[string]bool{}, seqs: map[string]uint64{}}

		// operator is who replays or skips: the store, or one of another
		// process (cmd/theus), which this store learns of only by reading
		// the file.
		var others []*sqlite.Store
		defer func() {
			for _, o := range others {
				o.Close()
			}
		}()
		operator := func(rt *rapid.T, st *sqlite.Store) outbox.Parking {
			if !rapid.Bool().Draw(rt, "operator elsewhere") {
				return st
			}
			other, err := sqlite.Open(ctx, path, sqlite.WithClock(clock))
			if err != nil {
				rt.Fatal(err)
			}
			others = append(others, other)
			return other
		}

		check := func(what string) {
			// A small limit first: acks the store keeps in memory must not
			// make it return less than it holds (Stats, below, writes them).
			for _, limit := range []int{rapid.IntRange(1, 3).Draw(rt, "check limit"), 1 << 20} {
				msgs, err := st.Undelivered(ctx, limit)
				if err != nil {
					rt.Fatalf("%s: %v", what, err)
				}
				got := make([]string, len(msgs))
				for i, msg := range msgs {
					got[i] = msg.ID
				}
				if want := m.undelivered(limit); !slices.Equal(got, want) {
					rt.Fatalf("%s: Undelivered(%d) = %v, want %v", what, limit, got, want)
				}
			}
			stats, err := st.Stats(ctx)
			if err != nil {
				rt.Fatal(err)
			}
			if stats.Pending != m.pending() || stats.Parked != len(m.parked) {
				rt.Fatalf("%s: stats %+v, want %d pending and %d parked", what, stats, m.pending(), len(m.parked))
			}
		}

		for step := range rapid.IntRange(1, 50).Draw(rt, "steps") {
			switch op := rapid.SampledFrom([]string{"commit", "commit", "deliver", "deliver", "fail", "replay", "skip", "prune", "prune", "restart"}).Draw(rt, fmt.Sprint("op", step)); op {
			case "commit":
				for range rapid.IntRange(1, 4).Draw(rt, "commits") {
					from := rapid.IntRange(0, nAccounts-1).Draw(rt, "from")
					key := fmt.Sprintf("acc-%03d", from)
					r, err := eng.Transfer(ctx, bank.TransferArgs{From: key, To: fmt.Sprintf("acc-%03d", (from+1)%nAccounts), Amount: 1})
					if err != nil {
						rt.Fatal(err)
					}
					m.seqs[key]++
					m.msgs = append(m.msgs, modelMsg{id: r.MessageIDs[0], key: key, seq: m.seqs[key]})
				}
			case "deliver":
				// A relay's round: read a batch, deliver a prefix of each
				// key's messages in it (some keys not at all), ack.
				limit := rapid.IntRange(1, 8).Draw(rt, "limit")
				msgs, err := st.Undelivered(ctx, limit)
				if err != nil {
					rt.Fatal(err)
				}
				got := make([]string, len(msgs))
				for i, msg := range msgs {
					got[i] = msg.ID
				}
				if want := m.undelivered(limit); !slices.Equal(got, want) {
					rt.Fatalf("Undelivered(%d) = %v, want %v", limit, got, want)
				}
				cut := map[string]bool{} // keys whose prefix ended
				var ids []string
				all := rapid.Bool().Draw(rt, "deliver all")
				for _, msg := range msgs {
					if cut[msg.Key] || !all && !rapid.Bool().Draw(rt, "deliver "+msg.ID) {
						cut[msg.Key] = true
						continue
					}
					ids = append(ids, msg.ID)
				}
				if rapid.Bool().Draw(rt, "reverse") {
					slices.Reverse(ids) // acks may come in any order
				}
				if err := st.Ack(ctx, ids); err != nil {
					rt.Fatal(err)
				}
				for _, id := range ids {
					m.delivered[id] = true
				}
			case "fail":
				msgs, err := st.Undelivered(ctx, 1<<20)
				if err != nil || len(msgs) == 0 {
					continue
				}
				msg := msgs[rapid.IntRange(0, len(msgs)-1).Draw(rt, "failed")]
				// Only the first undelivered message of a key is sent.
				first := slices.IndexFunc(msgs, func(o outbox.Message) bool { return o.Key == msg.Key })
				msg = msgs[first]
				park := rapid.Bool().Draw(rt, "park")
				parked, err := st.Failed(ctx, msg.ID, "boom", park, 0)
				if err != nil || parked != park {
					rt.Fatalf("Failed(%s, park %v) = %v, %v", msg.ID, park, parked, err)
				}
				if park {
					m.parked[msg.ID] = true
				}
			case "replay":
				key := fmt.Sprintf("acc-%03d", rapid.IntRange(0, nAccounts-1).Draw(rt, "replay key"))
				n, err := operator(rt, st).Replay(ctx, "transfer.completed", key)
				if err != nil {
					rt.Fatal(err)
				}
				want := 0
				for id := range m.parked {
					if i := slices.IndexFunc(m.msgs, func(x modelMsg) bool { return x.id == id }); m.msgs[i].key == key {
						delete(m.parked, id)
						want++
					}
				}
				if n != want {
					rt.Fatalf("Replay(%s) = %d, want %d", key, n, want)
				}
			case "skip":
				ps, err := st.Parked(ctx)
				if err != nil || len(ps) == 0 {
					continue
				}
				id := ps[rapid.IntRange(0, len(ps)-1).Draw(rt, "skipped")].ID
				if err := operator(rt, st).Skip(ctx, id); err != nil {
					rt.Fatal(err)
				}
				delete(m.parked, id)
				m.delivered[id] = true
			case "prune":
				now.Add(int64(rapid.IntRange(0, 2).Draw(rt, "hours")) * int64(time.Hour))
				// By this store, or by one of another process, which
				// commits nothing (a relay there): it folds no KeySeqs.
				pruner := st
				if rapid.Bool().Draw(rt, "other store") {
					var err error
					if pruner, err = sqlite.Open(ctx, path, sqlite.WithRetention(time.Hour), sqlite.WithPruneBatch(3), sqlite.WithClock(clock)); err != nil {
						rt.Fatal(err)
					}
					defer pruner.Close()
				}
				if _, err := pruner.Prune(ctx); err != nil {
					rt.Fatal(err)
				}
			case "restart":
				tailReads += st.TailReads()
				eng.Close()
				st.Close()
				st, eng = openAll()
			}
			check(fmt.Sprintf("after step %d", step))
		}
		// KeySeqs go on where they stopped, after a restart.
		tailReads += st.TailReads()
		eng.Close()
		st.Close()
		st, eng = openAll()
		db, err := sql.Open("sqlite", path+"?mode=ro")
		if err != nil {
			rt.Fatal(err)
		}
		defer db.Close()
		for key, seq := range m.seqs {
			r, err := eng.Transfer(ctx, bank.TransferArgs{From: key, To: "acc-000", Amount: 1})
			if key == "acc-000" {
				r, err = eng.Transfer(ctx, bank.TransferArgs{From: key, To: "acc-001", Amount: 1})
			}
			if err != nil {
				rt.Fatal(err)
			}
			var got uint64
			if err := db.QueryRowContext(ctx, `SELECT key_seq FROM theus_outbox WHERE id = ?`, r.MessageIDs[0]).Scan(&got); err != nil {
				rt.Fatal(err)
			}
			if got != seq+1 {
				rt.Fatalf("after a restart, %s's KeySeq is %d, want %d", key, got, seq+1)
			}
		}
	})
	if tailReads == 0 {
		t.Fatal("Undelivered never answered from the messages the store keeps in memory: the test does not reach them")
	}
}

// fewerChecks lowers rapid's number of checks to n for the test, unless
// -rapid.checks was given: every check of the outbox model opens SQLite
// stores, which the race detector slows down tenfold.
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
