package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/memory"
)

// fencedOnce is a store whose first Failed is refused with ErrFenced, as
// a store of a relay fleet refuses a relay that lost its lease.
type fencedOnce struct {
	*memory.Store
	once sync.Once
}

func (f *fencedOnce) Failed(ctx context.Context, id, cause string, park bool, max int) (bool, error) {
	fenced := false
	f.once.Do(func() { fenced = true })
	if fenced {
		return false, fmt.Errorf("lease lost: %w", outbox.ErrFenced)
	}
	return f.Store.Failed(ctx, id, cause, park, max)
}

// A relay whose record of a failure is fenced sends nothing more of the
// round: what it read may belong to another relay now. It reads again,
// and goes on with what the store gives it.
func TestFencedFailureEndsTheRound(t *testing.T) {
	st := &fencedOnce{Store: memory.New()}
	p := newKeyProducer(t, st)
	p.commit(t, "a", "b")
	var mu sync.Mutex
	var calls [][]string
	done := make(chan struct{})
	s := sinkOf(func(_ context.Context, batch []outbox.Message) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		var keys []string
		for _, m := range batch {
			keys = append(keys, m.Key)
		}
		calls = append(calls, keys)
		if len(calls) == 1 {
			return 0, errors.New("transient")
		}
		if len(calls) == 2 {
			close(done)
		}
		return len(batch), nil
	})
	stop := runRelay(t, outbox.NewRelay(st, s, outbox.WithRelayBackoff(time.Millisecond, time.Millisecond)))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no second send")
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	// Without the fence, the second send would be b alone, in the round
	// that failed on a.
	if fmt.Sprint(calls[1]) != "[a b]" {
		t.Fatalf("sends %v, want the round ended after the fenced failure and [a b] read again", calls)
	}
}

type sinkOf func(ctx context.Context, batch []outbox.Message) (int, error)

func (f sinkOf) Send(ctx context.Context, batch []outbox.Message) (int, error) { return f(ctx, batch) }
