package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink"
)

type summary struct {
	Commits, Updates, Logins uint64
	Conflicts                uint64
	Version                  uint64
	Committed                int // messages in the receipts of successful calls
	Delivered                int // messages the consumer received, duplicates included
	Unique                   int
	Duplicates               int
	Gaps                     uint64
	Lost                     int // committed but never delivered
}

// consumer stands for the downstream service: it drops duplicates by
// (topic, key, KeySeq) and remembers what it saw.
type consumer struct {
	dedup *outbox.Dedup

	mu         sync.Mutex
	seen       map[string]bool // message IDs
	delivered  int
	duplicates int
	gaps       uint64
	lastEmail  string
	want       int           // messages expected; 0 until the producers are done
	done       chan struct{} // closed once every expected message arrived
	closedDone bool
}

func (c *consumer) receive(_ context.Context, m outbox.Message) error {
	fresh, gap := c.dedup.Observe(m)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delivered++
	c.gaps += gap
	if !fresh {
		c.duplicates++
		return nil
	}
	c.seen[m.ID] = true
	c.lastEmail = string(m.Payload)
	c.checkDone()
	return nil
}

func (c *consumer) expect(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.want = n
	c.checkDone()
}

func (c *consumer) checkDone() {
	if c.want > 0 && len(c.seen) >= c.want && !c.closedDone {
		c.closedDone = true
		close(c.done)
	}
}

func run(ctx context.Context, cfg config, w io.Writer) (summary, error) {
	var counters engine.Counters
	initial := State{
		Domain: DomainState{User: User{ID: "u-1", Email: "ann@example.com", Tags: []string{"beta"}}},
		Global: GlobalState{MaxEmailLen: 254},
	}
	eng, err := NewEngine(ctx, initial, app{}, engine.WithMetrics(&counters))
	if err != nil {
		return summary{}, err
	}
	defer eng.Close()

	cons := &consumer{dedup: outbox.NewDedup(), seen: make(map[string]bool), done: make(chan struct{})}
	relay := outbox.NewRelay(eng.Store(), sink.Func(cons.receive))
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	defer func() {
		stopRelay()
		<-relayDone
	}()

	fmt.Fprintf(w, "quickstart: %d goroutines x (%d update_user_email + %d record_login), relay to an in-process consumer\n",
		cfg.workers, cfg.updates, cfg.logins)

	var (
		mu        sync.Mutex
		committed = make(map[string]bool)
		firstErr  error
		wg        sync.WaitGroup
	)
	for g := range cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := make([]string, 0, cfg.updates)
			var err error
			for i := 0; i < max(cfg.updates, cfg.logins) && err == nil; i++ {
				if i < cfg.updates {
					var r UpdateUserEmailReceipt
					r, err = eng.UpdateUserEmail(ctx, UpdateUserEmailArgs{Email: fmt.Sprintf("user+%d.%d@example.com", g, i)})
					ids = append(ids, r.MessageIDs...)
				}
				if i < cfg.logins && err == nil {
					_, err = eng.RecordLogin(ctx, RecordLoginArgs{})
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				committed[id] = true
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return summary{}, firstErr
	}

	// Wait until the consumer has every committed message, or time out.
	cons.expect(len(committed))
	waitCtx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	select {
	case <-cons.done:
	case <-waitCtx.Done():
	case err := <-relayDone:
		return summary{}, errors.Join(errors.New("relay stopped early"), err)
	}

	snap := eng.Snapshot()
	cons.mu.Lock()
	s := summary{
		Commits:    counters.Commits.Load(),
		Updates:    uint64(cfg.workers * cfg.updates),
		Logins:     uint64(cfg.workers * cfg.logins),
		Conflicts:  counters.Conflicts.Load(),
		Version:    snap.Version(),
		Committed:  len(committed),
		Delivered:  cons.delivered,
		Unique:     len(cons.seen),
		Duplicates: cons.duplicates,
		Gaps:       cons.gaps,
	}
	for id := range committed {
		if !cons.seen[id] {
			s.Lost++
		}
	}
	last := cons.lastEmail
	cons.mu.Unlock()

	printSummary(w, s)
	fmt.Fprintf(w, "final state:        email %s, logins %d\n", snap.User().Email(), snap.Logins())
	fmt.Fprintf(w, "last event:         %s\n", last)
	if s.Commits != s.Version {
		return s, fmt.Errorf("%d commits but version %d: versions must be dense", s.Commits, s.Version)
	}
	return s, nil
}
