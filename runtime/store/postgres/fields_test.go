package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/theus-go/theus/examples/seedoutbox"
	"github.com/theus-go/theus/runtime/engine"
)

// Plain fields cross instances whole: two instances update alice, bob and
// the queue they share concurrently; conflicting runs go again, and every
// instance, and a recovered one, ends with every update in the queue.
func TestPlainFieldsAcrossInstances(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	initial := seedoutbox.State{Domain: seedoutbox.DomainState{
		Alice: seedoutbox.User{ID: "alice", Email: "a@0"}, Bob: seedoutbox.User{ID: "bob", Email: "b@0"}}}
	open := func() *seedoutbox.Engine {
		e, err := seedoutbox.NewEngine(ctx, initial, seedoutbox.Impl{}, engine.WithStore(openStore(t, schema)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	engines := []*seedoutbox.Engine{open(), open()}
	const n = 20
	var wg sync.WaitGroup
	for i, e := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range n {
				var err error
				if i == 0 {
					_, err = e.QueueAliceEmail(ctx, seedoutbox.QueueAliceEmailArgs{Email: fmt.Sprintf("a@%d", j+1)})
				} else {
					_, err = e.QueueBobEmail(ctx, seedoutbox.QueueBobEmailArgs{Email: fmt.Sprintf("b@%d", j+1)})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	check := func(name string, e *seedoutbox.Engine) {
		t.Helper()
		if err := e.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		s := e.Snapshot()
		if s.Version() != 2*n || s.Alice().Email() != fmt.Sprintf("a@%d", n) || s.Bob().Email() != fmt.Sprintf("b@%d", n) || s.OutboxQueue().Len() != 2*n {
			t.Fatalf("%s: version %d, alice %s, bob %s, %d queued; want version %d, a@%d, b@%d, %d queued",
				name, s.Version(), s.Alice().Email(), s.Bob().Email(), s.OutboxQueue().Len(), 2*n, n, n, 2*n)
		}
		// Each instance's updates are queued in its order.
		next := map[string]int{"alice": 1, "bob": 1}
		for _, m := range s.OutboxQueue().All() {
			prefix := m.UserID()[:1]
			if m.Email() != fmt.Sprintf("%s@%d", prefix, next[m.UserID()]) {
				t.Fatalf("%s: queued %s for %s, want %s@%d", name, m.Email(), m.UserID(), prefix, next[m.UserID()])
			}
			next[m.UserID()]++
		}
	}
	check("instance 0", engines[0])
	check("instance 1", engines[1])
	check("recovered", open())
}
