package outbox_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// runAlone runs a relay on st to its end and returns Run's error. A relay
// refused at start returns at once; one that is not refused runs until the
// guard ends it, so the test fails instead of hanging.
func runAlone(st outbox.Store) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return outbox.NewRelay(st, sink.Func(func(context.Context, outbox.Message) error { return nil })).Run(ctx)
}

// Two relays on one memory or SQLite store would split its messages
// between their sinks: the second Run fails at once with ErrRelayRunning,
// and once the first Run has returned a new relay runs.
func TestOneRelayPerStore(t *testing.T) {
	stores(t, func(t *testing.T, p *keyProducer) {
		p.commit(t, "k")
		first := newCollector(1)
		stop := runRelay(t, outbox.NewRelay(p.st, sink.Func(first.receive)))
		waitFor(t, first) // the first relay delivers, so it runs

		if err := runAlone(p.st); !errors.Is(err, outbox.ErrRelayRunning) {
			t.Fatalf("a second relay's Run = %v, want ErrRelayRunning", err)
		}
		stop()

		p.commit(t, "k")
		next := newCollector(1)
		stop = runRelay(t, outbox.NewRelay(p.st, sink.Func(next.receive)))
		waitFor(t, next)
		stop()
	})
}

// The SQLite claim is on the file, not on the Store value: a relay on
// another Store of the same file (another process, or a symlink to it) is
// refused too.
func TestOneRelayPerSQLiteFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "outbox.db")
	open := func(path string) *sqlite.Store {
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	p := newKeyProducer(t, open(path))
	p.commit(t, "k")
	c := newCollector(1)
	stop := runRelay(t, outbox.NewRelay(p.st, sink.Func(c.receive)))
	waitFor(t, c)

	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, link} {
		if err := runAlone(open(name)); !errors.Is(err, outbox.ErrRelayRunning) {
			t.Errorf("a relay on another Store of %s: Run = %v, want ErrRelayRunning", name, err)
		}
	}
	stop()

	// Released: a relay through the link now runs.
	p.commit(t, "k")
	next := newCollector(1)
	stop = runRelay(t, outbox.NewRelay(open(link), sink.Func(next.receive), outbox.WithPollInterval(time.Millisecond)))
	waitFor(t, next)
	stop()
}
