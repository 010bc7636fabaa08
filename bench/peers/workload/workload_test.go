package workload

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

func TestPercentileIsNearestRank(t *testing.T) {
	ms := func(v ...int64) []int64 {
		for i := range v {
			v[i] *= 1e6
		}
		return v
	}
	for _, c := range []struct {
		samples []int64
		p       int
		want    float64
	}{
		{ms(5, 1, 4, 2, 3), 50, 3},
		{ms(5, 1, 4, 2, 3), 99, 5},
		{ms(1, 2, 3, 4), 50, 2},
		{ms(7), 99, 7},
		{nil, 99, 0},
	} {
		if got := percentileMS(c.samples, c.p); got != c.want {
			t.Errorf("p%d of %v = %v ms, want %v", c.p, c.samples, got, c.want)
		}
	}
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(100-i) * 1e6
	}
	if got := percentileMS(hundred, 99); got != 99 {
		t.Errorf("p99 of 1..100 ms = %v, want 99", got)
	}
}

func TestEventIsAbout200Bytes(t *testing.T) {
	tx := Tx{ID: 123456, User: UserID(42), UpdatedAt: time.Now().UnixNano(), StartNS: 12_345_678_901}
	_, tx.Email = email(nil, tx.User, tx.ID)
	b, err := json.Marshal(tx.Event(17))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 180 || len(b) > 220 {
		t.Errorf("event is %d bytes, want about 200: %s", len(b), b)
	}
	if tx.User != "u-00042" || tx.Email != "u-00042+123456@example.com" {
		t.Errorf("user %q, email %q", tx.User, tx.Email)
	}
}

// fake is a System in memory whose relay can deliver some events twice
// and lose others, to check what Run counts.
type fake struct {
	mu      sync.Mutex
	events  [][]byte
	added   chan struct{}
	twice   func(tx uint64) bool
	dropped func(tx uint64) bool
	pace    time.Duration // a slow relay: the time it takes per event
}

func newFake() *fake {
	return &fake{added: make(chan struct{}, 1), twice: func(uint64) bool { return false }, dropped: func(uint64) bool { return false }}
}

func (f *fake) Commit(_ context.Context, tx *Tx) error {
	b, err := json.Marshal(tx.Event(1))
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.events = append(f.events, b)
	f.mu.Unlock()
	select {
	case f.added <- struct{}{}:
	default:
	}
	return nil
}

func (f *fake) StartRelay(ctx context.Context, recv func([]byte)) (<-chan error, error) {
	return Pipe(ctx, recv, func(ctx context.Context, out chan<- []byte) error {
		for {
			f.mu.Lock()
			batch := f.events
			f.events = nil
			f.mu.Unlock()
			for _, b := range batch {
				var ev Event
				if err := json.Unmarshal(b, &ev); err != nil {
					return err
				}
				n := 1
				if f.twice(ev.Tx) {
					n = 2
				}
				if f.dropped(ev.Tx) {
					n = 0
				}
				for range n {
					select {
					case <-time.After(f.pace):
					case <-ctx.Done():
						return nil
					}
					select {
					case out <- b:
					case <-ctx.Done():
						return nil
					}
				}
			}
			select {
			case <-f.added:
			case <-ctx.Done():
				return nil
			}
		}
	}), nil
}

func (f *fake) Close() error { return nil }

func runFake(t *testing.T, f *fake, cfg Config) Result {
	t.Helper()
	impl := Impl{Name: "fake", Open: func(context.Context, Config) (System, error) { return f, nil }}
	base := Config{C: 4, Users: 100, Relay: true, Poll: time.Millisecond, Wait: 2 * time.Second}
	base.N, base.Prefill, base.Relay = cfg.N, cfg.Prefill, cfg.Relay || cfg.Prefill > 0
	if cfg.Wait > 0 {
		base.Wait = cfg.Wait
	}
	res, err := Run(context.Background(), impl, base)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRunCountsEveryEventOnce(t *testing.T) {
	res := runFake(t, newFake(), Config{N: 500, Relay: true})
	if res.Commits != 500 || res.Delivered != 500 || res.Lost != 0 || res.Duplicates != 0 {
		t.Errorf("commits %d, delivered %d, lost %d, duplicates %d; want 500, 500, 0, 0", res.Commits, res.Delivered, res.Lost, res.Duplicates)
	}
	if res.RelayMPS <= 0 || res.CommitTPS <= 0 || res.EventBytes < 180 {
		t.Errorf("relay_mps %v, commit_tps %v, event_bytes %v: want them measured", res.RelayMPS, res.CommitTPS, res.EventBytes)
	}
}

func TestRunCountsDuplicatesAndLosses(t *testing.T) {
	f := newFake()
	f.twice = func(tx uint64) bool { return tx%10 == 1 }   // 50 of 500
	f.dropped = func(tx uint64) bool { return tx%25 == 2 } // 20 of 500
	res := runFake(t, f, Config{N: 500, Relay: true})      // the lost ones: Run waits until Wait passes with no delivery
	if res.Duplicates != 50 || res.Lost != 20 || res.Delivered != 480 {
		t.Errorf("duplicates %d, lost %d, delivered %d; want 50, 20, 480", res.Duplicates, res.Lost, res.Delivered)
	}
}

func TestSlowRelayIsWaitedFor(t *testing.T) {
	f := newFake()
	f.pace = 15 * time.Millisecond // 100 events: 1.5s, longer than Wait, never 1s without one
	res := runFake(t, f, Config{N: 100, Relay: true, Wait: time.Second})
	if res.Delivered != 100 || res.Lost != 0 {
		t.Errorf("delivered %d, lost %d; want 100, 0", res.Delivered, res.Lost)
	}
}

func TestDrainTimesTheBacklog(t *testing.T) {
	res := runFake(t, newFake(), Config{Prefill: 300})
	if res.Commits != 300 || res.Delivered != 300 || res.DrainMPS <= 0 || res.RelayMPS != 0 || res.Relay {
		t.Errorf("commits %d, delivered %d, drain_mps %v, relay_mps %v, relay %v; want 300, 300, > 0, 0, false",
			res.Commits, res.Delivered, res.DrainMPS, res.RelayMPS, res.Relay)
	}
}

func TestWithoutRelayNothingIsDelivered(t *testing.T) {
	res := runFake(t, newFake(), Config{N: 200})
	if res.Commits != 200 || res.Delivered != 0 || res.Lost != 0 || res.E2EP99 != 0 || res.RelayMPS != 0 {
		t.Errorf("commits %d, delivered %d, lost %d, e2e p99 %v, relay_mps %v; want 200, 0, 0, 0, 0",
			res.Commits, res.Delivered, res.Lost, res.E2EP99, res.RelayMPS)
	}
}
