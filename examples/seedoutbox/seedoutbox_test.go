package seedoutbox

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink"
)

// pausing runs Alice's processes, then calls pause before returning, so a
// test can commit Bob's update while Alice's run holds its snapshot.
type pausing struct {
	Impl
	pause func()
}

func (p *pausing) QueueAliceEmail(ctx context.Context, in QueueAliceEmailIn, out *QueueAliceEmailOut) error {
	err := p.Impl.QueueAliceEmail(ctx, in, out)
	p.pause()
	return err
}

func (p *pausing) EmitAliceEmail(ctx context.Context, in EmitAliceEmailIn, out *EmitAliceEmailOut) error {
	err := p.Impl.EmitAliceEmail(ctx, in, out)
	p.pause()
	return err
}

func initial() State {
	return State{Domain: DomainState{Alice: User{ID: "alice"}, Bob: User{ID: "bob"}}}
}

// racePairs runs n pairs of concurrent updates, Alice's and Bob's, in the
// worst order for the queue: Bob commits while Alice's first run holds its
// snapshot. It returns the conflicts the engine counted.
func racePairs(t *testing.T, n int, builtIn bool) (*Engine, uint64) {
	t.Helper()
	ctx := context.Background()
	var counters engine.Counters
	impl := &pausing{}
	eng, err := NewEngine(ctx, initial(), impl, engine.WithMetrics(&counters))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	for i := range n {
		aliceRead := make(chan struct{})
		bobCommitted := make(chan struct{})
		var once sync.Once
		impl.pause = func() {
			once.Do(func() { // first run only; a re-run goes straight on
				close(aliceRead)
				<-bobCommitted
			})
		}
		aliceDone := make(chan error, 1)
		go func() {
			var err error
			if builtIn {
				_, err = eng.EmitAliceEmail(ctx, EmitAliceEmailArgs{Email: fmt.Sprintf("alice%d@x", i)})
			} else {
				_, err = eng.QueueAliceEmail(ctx, QueueAliceEmailArgs{Email: fmt.Sprintf("alice%d@x", i)})
			}
			aliceDone <- err
		}()
		<-aliceRead
		if builtIn {
			_, err = eng.EmitBobEmail(ctx, EmitBobEmailArgs{Email: fmt.Sprintf("bob%d@x", i)})
		} else {
			_, err = eng.QueueBobEmail(ctx, QueueBobEmailArgs{Email: fmt.Sprintf("bob%d@x", i)})
		}
		if err != nil {
			t.Fatal(err)
		}
		close(bobCommitted)
		if err := <-aliceDone; err != nil {
			t.Fatal(err)
		}
	}
	return eng, counters.Conflicts.Load()
}

// The seed's state queue makes every pair of concurrent producers conflict,
// although Alice's and Bob's updates share no business state.
func TestSeedQueueConflictsOnEveryPair(t *testing.T) {
	const pairs = 20
	eng, conflicts := racePairs(t, pairs, false)
	if conflicts != pairs {
		t.Fatalf("state-queue producers: %d conflicts in %d pairs, want one per pair", conflicts, pairs)
	}
	// The re-runs kept every message.
	if n := eng.Snapshot().OutboxQueue().Len(); n != 2*pairs {
		t.Fatalf("queue holds %d messages, want %d", n, 2*pairs)
	}
}

// The built-in outbox: the same updates, the same interleaving, no conflict.
func TestBuiltInOutboxNeverConflicts(t *testing.T) {
	const pairs = 20
	eng, conflicts := racePairs(t, pairs, true)
	if conflicts != 0 {
		t.Fatalf("built-in outbox producers: %d conflicts, want 0", conflicts)
	}
	msgs, err := eng.Store().Undelivered(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2*pairs {
		t.Fatalf("%d messages committed, want %d", len(msgs), 2*pairs)
	}
}

// The seed relay persists a batch, then fails to clear the queue when a
// producer committed in between; the next round persists the batch again.
// The built-in relay, under the same interleaving, delivers each message
// once.
func TestSeedRelayPersistsDuplicatesBuiltInDoesNot(t *testing.T) {
	ctx := context.Background()
	eng, err := NewEngine(ctx, initial(), Impl{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if _, err := eng.QueueAliceEmail(ctx, QueueAliceEmailArgs{Email: "a1@x"}); err != nil {
		t.Fatal(err)
	}
	var persisted []OutboxMsg
	producerRan := false
	relay := SeedRelay{Engine: eng, Insert: func(batch []OutboxMsg) error {
		persisted = append(persisted, batch...)
		if !producerRan { // a producer commits between persist and clear
			producerRan = true
			_, err := eng.QueueBobEmail(ctx, QueueBobEmailArgs{Email: "b1@x"})
			return err
		}
		return nil
	}}
	r1, err := relay.Round(ctx)
	if err != nil || r1.Cleared {
		t.Fatalf("round 1: %+v, %v; want persisted but not cleared", r1, err)
	}
	r2, err := relay.Round(ctx)
	if err != nil || !r2.Cleared {
		t.Fatalf("round 2: %+v, %v; want cleared", r2, err)
	}
	if len(persisted) != 3 || persisted[0] != persisted[1] {
		t.Fatalf("persisted %+v: want alice's message twice, then bob's", persisted)
	}

	// Built-in: a producer commits while the relay delivers.
	eng2, err := NewEngine(ctx, initial(), Impl{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Close()
	if _, err := eng2.EmitAliceEmail(ctx, EmitAliceEmailArgs{Email: "a1@x"}); err != nil {
		t.Fatal(err)
	}
	var delivered []string
	done := make(chan struct{})
	rctx, stop := context.WithCancel(ctx)
	relayErr := make(chan error, 1)
	r := outbox.NewRelay(eng2.Store(), sink.Func(func(_ context.Context, m outbox.Message) error {
		delivered = append(delivered, m.ID)
		switch len(delivered) {
		case 1:
			_, err := eng2.EmitBobEmail(ctx, EmitBobEmailArgs{Email: "b1@x"})
			return err
		case 2:
			close(done)
		}
		return nil
	}))
	go func() { relayErr <- r.Run(rctx) }()
	<-done
	stop()
	if err := <-relayErr; err != nil {
		t.Fatal(err)
	}
	if len(delivered) != 2 || delivered[0] == delivered[1] {
		t.Fatalf("built-in relay delivered %v, want two distinct messages once each", delivered)
	}
}
