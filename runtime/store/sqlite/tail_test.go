package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// A relay on a store that several goroutines commit to, with a sink that
// fails now and then, for a while or for good (the message is parked; the
// test replays its key, as an operator would, while commits go on),
// delivers every message exactly once, each key's in KeySeq order: the
// messages the store keeps in memory for the relay and those it reads
// from the file make one sequence, also when commits overflow the former
// while the relay reads the latter.
func TestRelayUnderConcurrentCommitsAndFailures(t *testing.T) {
	for _, tailCap := range []int{0, 3} { // 0: the default
		t.Run(fmt.Sprintf("tail=%d", tailCap), func(t *testing.T) { relayUnderConcurrentCommits(t, tailCap) })
	}
}

func relayUnderConcurrentCommits(t *testing.T, tailCap int) {
	ctx := context.Background()
	st := open(t, filepath.Join(t.TempDir(), "bank.db"), sqlite.WithSynchronous("NORMAL"))
	st.SetTailCap(tailCap)
	const nAccounts, callers, perCaller = 8, 4, 300
	eng := newBank(t, st, accounts(nAccounts, 1<<40))

	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	next := map[string]uint64{} // per key, the last KeySeq delivered
	var wrong []string
	var delivered atomic.Int64
	sink := sinkFunc(func(_ context.Context, batch []outbox.Message) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		for i, m := range batch {
			switch r := rng.IntN(1000); {
			case r < 10:
				return i, errors.New("for a while")
			case r < 15:
				return i, outbox.Permanent(errors.New("for good"))
			}
			if m.KeySeq != next[m.Key]+1 {
				wrong = append(wrong, fmt.Sprintf("%s: KeySeq %d after %d", m.Key, m.KeySeq, next[m.Key]))
			}
			next[m.Key] = max(next[m.Key], m.KeySeq)
			delivered.Add(1)
		}
		return len(batch), nil
	})
	relay := outbox.NewRelay(st, sink, outbox.WithMaxAttempts(3), outbox.WithPruneInterval(0),
		outbox.WithRelayBackoff(time.Millisecond, 5*time.Millisecond))
	rctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- relay.Run(rctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Error(err)
		}
	})
	defer stop()

	cctx, ccancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ccancel()
	for range callers {
		wg.Go(func() {
			for range perCaller {
				from := rand.N(nAccounts)
				_, err := eng.Transfer(cctx, bank.TransferArgs{From: fmt.Sprintf("acc-%03d", from),
					To: fmt.Sprintf("acc-%03d", (from+1)%nAccounts), Amount: 1})
				if err != nil {
					if cctx.Err() == nil {
						t.Error(err)
					}
					return
				}
			}
		})
	}
	// Replay the parked keys, during the commits and after, until every
	// message is delivered.
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Minute)
	for delivered.Load() < callers*perCaller {
		select {
		case <-deadline:
			t.Fatalf("%d of %d messages delivered", delivered.Load(), callers*perCaller)
		case <-tick.C:
		}
		parked, err := st.Parked(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parked {
			if _, err := st.Replay(ctx, p.Topic, p.Key); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	stop()
	mu.Lock()
	defer mu.Unlock()
	if len(wrong) > 0 {
		t.Fatalf("%d deliveries out of order or again, the first: %v", len(wrong), wrong[:min(len(wrong), 10)])
	}
	if n := delivered.Load(); n != callers*perCaller {
		t.Fatalf("%d deliveries, want %d", n, callers*perCaller)
	}
	if st.TailReads() == 0 {
		t.Fatal("the relay never read the messages the store keeps in memory: the test does not reach them")
	}
}

// A commit group whose COMMIT failed may be in the file all the same (the
// store then refuses to write on): the relay reads the file then, not only
// the messages of the commits that succeeded.
func TestRelayReadsTheFileAfterAFailedCommit(t *testing.T) {
	ctx := context.Background()
	var fail atomic.Bool
	injected := errors.New("sync failed after the write")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) // never stale: only a failure makes the relay read the file
	st := open(t, filepath.Join(t.TempDir(), "bank.db"), sqlite.WithClock(func() time.Time { return now }),
		sqlite.WithFaultHook(func(s sqlite.Step) error {
			if s == sqlite.AfterSync && fail.Load() {
				return injected
			}
			return nil
		}))
	eng := newBank(t, st, accounts(2, 100))
	deliver := func(want int) {
		t.Helper()
		msgs := undelivered(t, st)
		if len(msgs) != want {
			t.Fatalf("%d undelivered messages, want %d", len(msgs), want)
		}
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = m.ID
		}
		if err := st.Ack(ctx, ids); err != nil {
			t.Fatal(err)
		}
	}
	transfer := func() error {
		_, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1})
		return err
	}
	for range 2 {
		if err := transfer(); err != nil {
			t.Fatal(err)
		}
		deliver(1)
	}
	if st.TailReads() == 0 {
		t.Fatal("the second message was not read from memory: the test does not reach what it tests")
	}
	fail.Store(true)
	if err := transfer(); !errors.Is(err, injected) {
		t.Fatalf("transfer: %v, want the injected failure", err)
	}
	deliver(1) // the file holds it
}

// A message acked ahead of an earlier one and then pruned is gone from
// the file, so the file's last message is no longer the last committed:
// the read that makes the memory tail valid again must not take the
// pruned message for pending. (Found by TestOutboxAgainstModel.)
func TestTailAfterAnAckAheadIsPruned(t *testing.T) {
	ctx := context.Background()
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	st := open(t, filepath.Join(t.TempDir(), "bank.db"), sqlite.WithRetention(time.Hour),
		sqlite.WithClock(func() time.Time { return time.Unix(0, now.Load()) }))
	eng := newBank(t, st, accounts(2, 1<<40))
	undelivered := func(limit int) []string {
		t.Helper()
		msgs, err := st.Undelivered(ctx, limit)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = m.ID
		}
		return ids
	}
	undelivered(10) // the relay is on: the tail keeps what is committed next
	var ids []string
	for range 2 {
		r, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.MessageIDs...)
	}
	if got := undelivered(10); len(got) != 2 {
		t.Fatalf("Undelivered = %v, want %v", got, ids)
	}
	if err := st.Ack(ctx, ids[1:]); err != nil { // the second, ahead of the first
		t.Fatal(err)
	}
	now.Add(int64(2 * time.Hour))
	if _, err := st.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if got := undelivered(1); len(got) != 1 || got[0] != ids[0] {
		t.Fatalf("Undelivered after the prune = %v, want [%s]", got, ids[0])
	}
	if err := st.Ack(ctx, ids[:1]); err != nil {
		t.Fatal(err)
	}
	if got := undelivered(10); len(got) != 0 {
		t.Fatalf("Undelivered after every ack = %v, want none (%s was acked and pruned)", got, ids[1])
	}
}
