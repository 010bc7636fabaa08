package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/internal/commitallocs"
	"github.com/theus-go/theus/runtime/internal/relaybench"
	"github.com/theus-go/theus/runtime/metrics"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink"
	"github.com/theus-go/theus/runtime/store/memory"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newMetrics(t *testing.T) (*prometheus.Registry, *metrics.Metrics) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return reg, m
}

// racing is the bank, except that the first Transfer commits a deposit to
// its debited account while it runs, so that its first run conflicts.
type racing struct {
	bank.Bank
	once   sync.Once
	during func()
}

func (r *racing) Transfer(ctx context.Context, in bank.TransferIn, out *bank.TransferOut) error {
	err := r.Bank.Transfer(ctx, in, out)
	r.once.Do(r.during)
	return err
}

func newBank(t *testing.T, impl bank.Processes, opts ...engine.Option) *bank.Engine {
	t.Helper()
	eng, err := bank.NewEngine(context.Background(), bank.State{}, impl, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng
}

func open(t *testing.T, eng *bank.Engine, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := eng.OpenAccount(context.Background(), bank.OpenAccountArgs{ID: id, Initial: 10}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEngineCounters(t *testing.T) {
	reg, m := newMetrics(t)
	impl := &racing{}
	eng := newBank(t, impl, engine.WithMetrics(m))
	impl.during = func() {
		if _, err := eng.Deposit(context.Background(), bank.DepositArgs{ID: "a", Amount: 1}); err != nil {
			t.Error(err)
		}
	}
	ctx := context.Background()
	open(t, eng, "a", "b")
	if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "a", To: "b", Amount: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "b", To: "a", Amount: 1000}); !errors.Is(err, engine.ErrRuleViolation) {
		t.Fatalf("overdraft: err = %v, want ErrRuleViolation", err)
	}

	want := `
# HELP theus_commits_total Process calls committed.
# TYPE theus_commits_total counter
theus_commits_total{process="deposit"} 1
theus_commits_total{process="open_account"} 2
theus_commits_total{process="transfer"} 1
# HELP theus_conflicts_total Process runs refused at commit because an input changed since their snapshot.
# TYPE theus_conflicts_total counter
theus_conflicts_total{process="deposit"} 0
theus_conflicts_total{process="open_account"} 0
theus_conflicts_total{process="transfer"} 1
# HELP theus_retries_total Process runs started again after a conflict.
# TYPE theus_retries_total counter
theus_retries_total{process="deposit"} 0
theus_retries_total{process="open_account"} 0
theus_retries_total{process="transfer"} 1
# HELP theus_rule_violations_total Contract rules broken: refused commits (on_fail: reject) and committed warnings (on_fail: warn).
# TYPE theus_rule_violations_total counter
theus_rule_violations_total{path="domain.accounts[*].balance",process="transfer",rule="min"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"theus_commits_total", "theus_conflicts_total", "theus_retries_total", "theus_rule_violations_total"); err != nil {
		t.Fatal(err)
	}
}

// The engine calls its Metrics on every commit: once a process's series
// exist, they must cost no allocation.
func TestEngineMetricsDoNotAllocate(t *testing.T) {
	_, m := newMetrics(t)
	m.Commit("p")
	m.Conflict("p")
	m.Retry("p")
	m.RuleViolation("p", "domain.x", "min")
	for name, f := range map[string]func(){
		"Commit":        func() { m.Commit("p") },
		"Conflict":      func() { m.Conflict("p") },
		"Retry":         func() { m.Retry("p") },
		"RuleViolation": func() { m.RuleViolation("p", "domain.x", "min") },
	} {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s allocates %v times per call, want 0", name, n)
		}
	}
	// The relay's hot path too (Failed is not: classifying the error with
	// errors.As allocates, once per failed delivery).
	r := m.Relay("r")
	batch := []outbox.Message{{Topic: "t"}, {Topic: "t"}, {Topic: "u"}}
	r.Delivered(batch)
	for name, f := range map[string]func(){
		"Delivered": func() { r.Delivered(batch) },
		"Batch":     func() { r.Batch(3, time.Millisecond) },
	} {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("relay %s allocates %v times per call, want 0", name, n)
		}
	}
}

// The same, measured on real commits: an engine with these metrics
// allocates no more per commit than one without.
func TestCommitWithMetricsAllocatesNothingMore(t *testing.T) {
	_, m := newMetrics(t)
	without := commitallocs.Transfer(t)
	with := commitallocs.Transfer(t, engine.WithMetrics(m))
	if with > without+commitallocs.Noise {
		t.Fatalf("a commit allocates %.2f times with metrics, %.2f without", with, without)
	}
}

// flaky fails deliveries by message key: "bad" permanently, "flaky" once
// (transient), "down" once (unavailable); the rest go through.
type flaky struct {
	mu     sync.Mutex
	failed map[string]bool
}

func (f *flaky) send(_ context.Context, m outbox.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	first := !f.failed[m.Key]
	f.failed[m.Key] = true
	switch {
	case m.Key == "bad":
		return outbox.Permanent(errors.New("refused"))
	case m.Key == "flaky" && first:
		return errors.New("timeout")
	case m.Key == "down" && first:
		return outbox.Unavailable(errors.New("connection refused"))
	}
	return nil
}

// relay runs a relay on st into the flaky sink until want messages were
// delivered.
func relay(t *testing.T, st outbox.Store, rm outbox.RelayMetrics, want int) {
	t.Helper()
	f := &flaky{failed: map[string]bool{}}
	w := relaybench.NewWatch(sink.Func(f.send), want)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := outbox.NewRelay(st, w, outbox.WithRelayMetrics(rm), outbox.WithRelayBackoff(time.Millisecond, 5*time.Millisecond))
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	select {
	case <-w.Done():
	case <-ctx.Done():
		t.Errorf("relay delivered %d of %d messages in 30s", r.Stats().Delivered, want)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestRelayCounters(t *testing.T) {
	reg, m := newMetrics(t)
	st := memory.New()
	eng := newBank(t, bank.Bank{}, engine.WithStore(st))
	open(t, eng, "a", "bad", "flaky", "down")
	if _, err := eng.Transfer(context.Background(), bank.TransferArgs{From: "a", To: "bad", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	relay(t, st, m.Relay("test"), 4)

	want := `
# HELP theus_relay_deliveries_total Messages the sink confirmed and the relay acked.
# TYPE theus_relay_deliveries_total counter
theus_relay_deliveries_total{relay="test",topic="account.opened"} 3
theus_relay_deliveries_total{relay="test",topic="transfer.completed"} 1
# HELP theus_relay_failures_total Failed deliveries, by error class (transient, permanent, unavailable).
# TYPE theus_relay_failures_total counter
theus_relay_failures_total{class="permanent",relay="test",topic="account.opened"} 1
theus_relay_failures_total{class="permanent",relay="test",topic="transfer.completed"} 0
theus_relay_failures_total{class="transient",relay="test",topic="account.opened"} 1
theus_relay_failures_total{class="transient",relay="test",topic="transfer.completed"} 0
theus_relay_failures_total{class="unavailable",relay="test",topic="account.opened"} 1
theus_relay_failures_total{class="unavailable",relay="test",topic="transfer.completed"} 0
# HELP theus_relay_parked_total Messages the relay parked.
# TYPE theus_relay_parked_total counter
theus_relay_parked_total{relay="test",topic="account.opened"} 1
theus_relay_parked_total{relay="test",topic="transfer.completed"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"theus_relay_deliveries_total", "theus_relay_failures_total", "theus_relay_parked_total"); err != nil {
		t.Fatal(err)
	}
	// Every round read a batch: the first (all five), and the retries.
	n := histogramCount(t, reg, "theus_relay_batch_duration_seconds")
	if n < 2 {
		t.Fatalf("batch latency observed %d times, want at least 2 (a batch and a retry)", n)
	}
}

func histogramCount(t *testing.T, g prometheus.Gatherer, name string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var n uint64
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
			return n
		}
	}
	t.Fatalf("no %s", name)
	return 0
}

type store interface {
	engine.Store
	outbox.Store
	outbox.Parking
	outbox.StatsReader
}

// The outbox gauges of each store, read at scrape time.
func TestStoreGauges(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) store{
		"memory": func(*testing.T) store { return memory.New() },
		"sqlite": func(t *testing.T) store {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "bank.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	} {
		t.Run(name, func(t *testing.T) {
			reg, m := newMetrics(t)
			st := open(t)
			if err := m.AddStore(name, st); err != nil {
				t.Fatal(err)
			}
			hourAgo := time.Now().Add(-time.Hour)
			eng := newBank(t, bank.Bank{}, engine.WithStore(st), engine.WithClock(func() time.Time { return hourAgo }))
			checkGauges(t, reg, name, 0, 0, 0, 0)

			ctx := context.Background()
			for _, id := range []string{"a", "b", "c"} {
				if _, err := eng.OpenAccount(ctx, bank.OpenAccountArgs{ID: id, Initial: 10}); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 { // two more messages of key a
				if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "a", To: "b", Amount: 1}); err != nil {
					t.Fatal(err)
				}
			}
			checkGauges(t, reg, name, 5, 1, 0, 0)

			// Park the first message of key b: depth 4, the held-back
			// messages of key a still count.
			msgs, err := st.Undelivered(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			if parked, err := st.Failed(ctx, msgs[1].ID, "refused", true, 10); !parked || err != nil {
				t.Fatalf("Failed = %v, %v; want parked", parked, err)
			}
			checkGauges(t, reg, name, 4, 1, 1, 1)

			var ids []string
			for _, m := range msgs {
				if m.ID != msgs[1].ID {
					ids = append(ids, m.ID)
				}
			}
			if err := st.Ack(ctx, ids); err != nil {
				t.Fatal(err)
			}
			checkGauges(t, reg, name, 0, 0, 1, 1)
		})
	}
}

// checkGauges compares the store's gauges; oldest is 1 when the oldest
// pending message must be an hour old (give or take a minute), else 0.
func checkGauges(t *testing.T, reg *prometheus.Registry, store string, depth, oldest, parked, parkedKeys int) {
	t.Helper()
	want := fmt.Sprintf(`
# HELP theus_outbox_depth Messages waiting for delivery: neither delivered nor parked.
# TYPE theus_outbox_depth gauge
theus_outbox_depth{store=%[1]q} %[2]d
# HELP theus_outbox_parked_keys (topic, key)s held back by a parked message.
# TYPE theus_outbox_parked_keys gauge
theus_outbox_parked_keys{store=%[1]q} %[4]d
# HELP theus_outbox_parked_messages Parked messages, waiting for Replay or Skip.
# TYPE theus_outbox_parked_messages gauge
theus_outbox_parked_messages{store=%[1]q} %[3]d
`, store, depth, parked, parkedKeys)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"theus_outbox_depth", "theus_outbox_parked_messages", "theus_outbox_parked_keys"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "theus_outbox_oldest_undelivered_age_seconds" {
			continue
		}
		age := mf.GetMetric()[0].GetGauge().GetValue()
		if oldest == 0 && age != 0 || oldest == 1 && (age < 3600 || age > 3660) {
			t.Fatalf("oldest undelivered age = %vs, want %s", age, map[int]string{0: "0", 1: "about 3600"}[oldest])
		}
		return
	}
	t.Fatal("no theus_outbox_oldest_undelivered_age_seconds")
}

type failingStats struct{}

func (failingStats) Stats(context.Context) (outbox.StoreStats, error) {
	return outbox.StoreStats{}, errors.New("database is locked")
}

// The handler serves the text exposition with every theus_ metric; a store
// whose statistics fail is left out and the rest is still served.
func TestHandler(t *testing.T) {
	reg, m := newMetrics(t)
	st := memory.New()
	if err := m.AddStore("main", st); err != nil {
		t.Fatal(err)
	}
	if err := m.AddStore("broken", failingStats{}); err != nil {
		t.Fatal(err)
	}
	if err := m.AddStore("main", st); err == nil {
		t.Fatal("AddStore accepted a second store called main")
	}
	eng := newBank(t, bank.Bank{}, engine.WithStore(st), engine.WithMetrics(m))
	open(t, eng, "a", "bad", "flaky", "down")
	if _, err := eng.Transfer(context.Background(), bank.TransferArgs{From: "a", To: "down", Amount: 100}); !errors.Is(err, engine.ErrRuleViolation) {
		t.Fatalf("overdraft: %v", err)
	}
	m.Conflict("transfer")
	m.Retry("transfer")
	relay(t, st, m.Relay("main"), 3)

	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	text := string(body)
	for _, name := range []string{
		"theus_commits_total", "theus_conflicts_total", "theus_retries_total", "theus_rule_violations_total",
		"theus_relay_deliveries_total", "theus_relay_failures_total", "theus_relay_parked_total",
		"theus_relay_batch_duration_seconds_bucket",
		"theus_outbox_depth", "theus_outbox_oldest_undelivered_age_seconds",
		"theus_outbox_parked_messages", "theus_outbox_parked_keys",
	} {
		if !strings.Contains(text, "\n"+name+"{") {
			t.Errorf("the exposition has no %s series", name)
		}
	}
	for _, line := range []string{
		`theus_commits_total{process="open_account"} 4`,
		`theus_outbox_parked_keys{store="main"} 1`,
	} {
		if !strings.Contains(text, "\n"+line+"\n") {
			t.Errorf("the exposition has no line %s", line)
		}
	}
	if strings.Contains(text, `store="broken"`) {
		t.Errorf("the exposition has series of the failing store")
	}
	if t.Failed() {
		t.Log(text)
	}
}

// Label values come from the contract (processes, paths, rules, topics)
// and from names the application gives (relay, store), never from message
// keys or IDs: the number of series does not grow with the keys.
func TestLabelCardinalityIsBounded(t *testing.T) {
	series := func(accounts int) (int, map[string]bool) {
		reg, m := newMetrics(t)
		st := memory.New()
		if err := m.AddStore("main", st); err != nil {
			t.Fatal(err)
		}
		eng := newBank(t, bank.Bank{}, engine.WithStore(st), engine.WithMetrics(m))
		var ids []string
		for i := range accounts {
			ids = append(ids, fmt.Sprintf("acct-%04d", i))
		}
		open(t, eng, ids...)
		for i := 1; i < accounts; i++ {
			if _, err := eng.Transfer(context.Background(), bank.TransferArgs{From: ids[i], To: ids[0], Amount: 1}); err != nil {
				t.Fatal(err)
			}
		}
		relay(t, st, m.Relay("main"), 2*accounts-1)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n, values := 0, map[string]bool{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				n++
				for _, l := range m.GetLabel() {
					values[l.GetName()+"="+l.GetValue()] = true
				}
			}
		}
		return n, values
	}
	few, _ := series(2)
	many, values := series(200)
	if many != few {
		t.Errorf("%d series after 2 accounts, %d after 200: labels depend on message keys", few, many)
	}
	allowed := map[string]bool{"process": true, "path": true, "rule": true, "relay": true, "topic": true, "class": true, "store": true}
	for v := range values {
		name, value, _ := strings.Cut(v, "=")
		if !allowed[name] {
			t.Errorf("unexpected label %s", v)
		}
		if strings.HasPrefix(value, "acct-") || strings.Contains(value, "-000") {
			t.Errorf("label %s holds a message key or ID", v)
		}
	}
}

func TestNewRefusesANilRegisterer(t *testing.T) {
	if _, err := metrics.New(nil); err == nil {
		t.Fatal("New(nil) succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.New(reg); err == nil {
		t.Fatal("a second New on one registry succeeded: its metrics would be registered twice")
	}
}

// fleetStore is a store whose relays lease partitions, with figures the
// test sets.
type fleetStore struct {
	*memory.Store
	fleet outbox.FleetStats
	parts []outbox.PartitionStats
}

func (f *fleetStore) FleetStats() outbox.FleetStats { return f.fleet }
func (f *fleetStore) PartitionStats(context.Context) ([]outbox.PartitionStats, error) {
	return f.parts, nil
}

// A store whose relays lease partitions adds the relay's lease figures
// and the oldest waiting message's age per partition.
func TestFleetGauges(t *testing.T) {
	reg, m := newMetrics(t)
	st := &fleetStore{
		Store: memory.New(),
		fleet: outbox.FleetStats{Leases: 3, Handovers: 5, Fenced: 2},
		parts: []outbox.PartitionStats{
			{Partition: 0},
			{Partition: 1, Pending: 4, OldestPending: time.Now().Add(-time.Hour)},
		},
	}
	if err := m.AddStore("pg", st); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP theus_relay_fenced_total Acks and failure records refused because the relay had lost its lease.
# TYPE theus_relay_fenced_total counter
theus_relay_fenced_total{store="pg"} 2
# HELP theus_relay_handovers_total Partitions the store handle's relay took over from another relay.
# TYPE theus_relay_handovers_total counter
theus_relay_handovers_total{store="pg"} 5
# HELP theus_relay_leases Partitions of the outbox the store handle's relay leases now.
# TYPE theus_relay_leases gauge
theus_relay_leases{store="pg"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"theus_relay_leases", "theus_relay_handovers_total", "theus_relay_fenced_total"); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ages := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "theus_outbox_partition_oldest_undelivered_age_seconds" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "partition" {
					ages[l.GetValue()] = mt.GetGauge().GetValue()
				}
			}
		}
	}
	if len(ages) != 2 || ages["0"] != 0 || ages["1"] < 3540 || ages["1"] > 3660 {
		t.Fatalf("ages by partition = %v, want 0: 0 and 1: about 3600", ages)
	}
}
