package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// isPostgres tells whether the -store flag names a PostgreSQL database.
func isPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

type summary struct {
	Commits, Updates, Logins uint64 // this run
	Conflicts                uint64
	StartVersion             uint64 // recovered from the data directory (0 on a first run)
	Version                  uint64
	Committed                int // messages in the receipts of this run's successful calls
	Delivered                int // deliveries this run, redeliveries included
	Unique                   int // messages the consumer applied this run
	Dropped                  int // redeliveries the consumer's dedup dropped this run
	Duplicates               int // messages the consumer applied twice, over all runs
	Gaps                     uint64
	Lost                     int // committed but not delivered: this run's, or left undelivered in the store
}

func run(ctx context.Context, cfg config, w io.Writer) (summary, error) {
	var counters engine.Counters
	initial := State{
		Domain: DomainState{User: User{ID: "u-1", Email: "ann@example.com", Tags: []string{"beta"}}},
		Global: GlobalState{MaxEmailLen: 254},
	}
	opts := []engine.Option{engine.WithMetrics(&counters)}
	consumerLog, where := "", "in memory"
	if cfg.data != "" {
		if err := os.MkdirAll(cfg.data, 0o755); err != nil {
			return summary{}, err
		}
		consumerLog, where = filepath.Join(cfg.data, "consumer.log"), cfg.data
	}
	switch {
	case isPostgres(cfg.store):
		st, err := postgres.Open(ctx, cfg.store, postgres.WithSchema(cfg.schema))
		if err != nil {
			return summary{}, err
		}
		defer st.Close() // last: after the relay and the engine
		opts = append(opts, engine.WithStore(st))
		where = fmt.Sprintf("PostgreSQL %s, schema %s", postgres.RedactDSN(cfg.store), cfg.schema)
		if cfg.data != "" {
			where += "; consumer's log in " + cfg.data
		}
	case cfg.store != "":
		return summary{}, fmt.Errorf("-store %q: want empty (SQLite in -data) or a postgres:// URL", postgres.RedactDSN(cfg.store))
	case cfg.data != "":
		st, err := sqlite.Open(ctx, filepath.Join(cfg.data, "theus.db"))
		if err != nil {
			return summary{}, err
		}
		defer st.Close() // last: after the relay and the engine
		opts = append(opts, engine.WithStore(st))
	}
	eng, err := NewEngine(ctx, initial, app{}, opts...)
	if err != nil {
		return summary{}, err
	}
	defer eng.Close()
	start := eng.Snapshot().Version()

	w = &syncWriter{w: w} // the consumer prints the first events as they arrive
	cons, err := newConsumer(consumerLog)
	if err != nil {
		return summary{}, err
	}
	defer cons.close()
	cons.out = w
	var sink outbox.Sink = cons
	path := "a deduplicating consumer in process"
	var link *natsLink
	if !cfg.direct {
		natsDir := "" // a temp dir
		if cfg.data != "" {
			natsDir = filepath.Join(cfg.data, "nats")
		}
		link, err = startNATS(ctx, cfg.nats, natsDir, cons)
		if err != nil {
			return summary{}, fmt.Errorf("nats: %w", err)
		}
		defer link.close() // after the relay stops, before the consumer's log closes
		sink = link.sink
		path = "NATS JetStream (" + link.where + "), read by a deduplicating consumer"
	}
	relay := outbox.NewRelay(eng.Store(), sink)
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	defer func() {
		stopRelay()
		<-relayDone
	}()

	var consoleURL string
	if cfg.console != "" {
		url, stop, err := startConsole(cfg.console, eng, relay.Stats)
		if err != nil {
			return summary{}, err
		}
		defer stop() // before the relay stops and the engine closes
		consoleURL = url
	}

	fmt.Fprintf(w, "quickstart: %d goroutines x (%d update_user_email + %d record_login)\n",
		cfg.workers, cfg.updates, cfg.logins)
	fmt.Fprintf(w, "relay to:           %s\n", path)
	fmt.Fprintf(w, "data:               %s (recovered version %d)\n", where, start)
	if consoleURL != "" {
		fmt.Fprintf(w, "console:            %s\n", consoleURL)
	}

	var (
		mu        sync.Mutex
		committed []string
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
			committed = append(committed, ids...)
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return summary{}, firstErr
	}

	// Wait until the store holds nothing undelivered (this run's messages
	// and any a previous run left), or time out.
	deadline := time.Now().Add(cfg.timeout)
	left, err := waitDelivered(ctx, eng.Store(), cfg.timeout, relayDone)
	if err != nil {
		return summary{}, err
	}
	// Then until the consumer has read everything the stream holds.
	if link != nil {
		if err := link.waitConsumed(ctx, deadline); err != nil {
			return summary{}, err
		}
	}

	snap := eng.Snapshot()
	cons.mu.Lock()
	s := summary{
		Commits:      counters.Commits.Load(),
		Updates:      uint64(cfg.workers * cfg.updates),
		Logins:       uint64(cfg.workers * cfg.logins),
		Conflicts:    counters.Conflicts.Load(),
		StartVersion: start,
		Version:      snap.Version(),
		Committed:    len(committed),
		Delivered:    cons.delivered,
		Unique:       cons.unique,
		Dropped:      cons.dropped,
		Duplicates:   cons.duplicates,
		Gaps:         cons.gaps,
		Lost:         left,
	}
	for _, id := range committed {
		if !cons.seen[id] {
			s.Lost++
		}
	}
	last := cons.lastEmail
	lastRun := cons.lastEvent
	cons.mu.Unlock()

	if lastRun != "" {
		fmt.Fprintf(w, "last received:      %s\n", lastRun)
	}
	printSummary(w, s)
	fmt.Fprintf(w, "final state:        email %s, logins %d\n", snap.User().Email(), snap.Logins())
	fmt.Fprintf(w, "last in the log:    %s\n", last)
	if s.Version != s.StartVersion+s.Commits {
		return s, fmt.Errorf("%d commits from version %d but version %d: versions must be dense", s.Commits, s.StartVersion, s.Version)
	}
	if consoleURL != "" {
		fmt.Fprintf(w, "console:            %s (serving until interrupted)\n", consoleURL)
		<-ctx.Done()
	}
	return s, nil
}

// waitDelivered polls st until it has no undelivered message, and returns
// how many are left when timeout passes.
func waitDelivered(ctx context.Context, st outbox.Store, timeout time.Duration, relayDone <-chan error) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := st.Undelivered(ctx, 1<<20)
		if err != nil {
			return 0, err
		}
		if len(msgs) == 0 || time.Now().After(deadline) {
			return len(msgs), nil
		}
		select {
		case <-ctx.Done():
			return len(msgs), nil
		case err := <-relayDone:
			return 0, errors.Join(errors.New("relay stopped early"), err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// syncWriter serializes writes: the consumer prints from its own goroutine.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
