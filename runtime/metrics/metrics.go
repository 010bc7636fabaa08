package metrics

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// Metrics holds the Theus metrics registered with one prometheus.Registerer.
// It is the engine's engine.Metrics (give it to engine.WithMetrics), makes
// relays' outbox.RelayMetrics (Relay), and reads stores' outbox gauges at
// scrape time (AddStore). It is safe for concurrent use.
type Metrics struct {
	commits, conflicts, retries *prometheus.CounterVec
	ruleViolations              *prometheus.CounterVec
	deliveries, failures        *prometheus.CounterVec
	parked                      *prometheus.CounterVec
	batch                       *prometheus.HistogramVec
	stores                      *storeCollector

	// The counters of each label value, resolved once: the engine calls
	// Commit on every commit, which must not allocate.
	procs cache[string, *procCounters]
	rules cache[ruleKey, prometheus.Counter]
}

var _ engine.Metrics = (*Metrics)(nil)

type procCounters struct{ commits, conflicts, retries prometheus.Counter }

type ruleKey struct{ process, path, rule string }

// Option configures Metrics.
type Option func(*options)

type options struct {
	buckets      []float64
	statsTimeout time.Duration
}

// WithBatchBuckets sets the buckets, in seconds, of the relay batch
// latency histogram (default: 0.5ms to about 16s, doubling).
func WithBatchBuckets(b []float64) Option { return func(o *options) { o.buckets = b } }

// WithStatsTimeout bounds how long a scrape waits for one store's
// statistics (default 5s); a store that does not answer in time is left
// out of that scrape, with an error.
func WithStatsTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.statsTimeout = d
		}
	}
}

// New creates the Theus metrics and registers them with reg. To tell
// several engines of one process apart, wrap reg with
// prometheus.WrapRegistererWith and a constant label.
func New(reg prometheus.Registerer, opts ...Option) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil prometheus.Registerer")
	}
	o := options{buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), statsTimeout: 5 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	}
	m := &Metrics{
		commits:        counter("theus_commits_total", "Process calls committed.", "process"),
		conflicts:      counter("theus_conflicts_total", "Process runs refused at commit because an input changed since their snapshot.", "process"),
		retries:        counter("theus_retries_total", "Process runs started again after a conflict.", "process"),
		ruleViolations: counter("theus_rule_violations_total", "Contract rules broken: refused commits (on_fail: reject) and committed warnings (on_fail: warn).", "process", "path", "rule"),
		deliveries:     counter("theus_relay_deliveries_total", "Messages the sink confirmed and the relay acked.", "relay", "topic"),
		failures:       counter("theus_relay_failures_total", "Failed deliveries, by error class (transient, permanent, unavailable).", "relay", "topic", "class"),
		parked:         counter("theus_relay_parked_total", "Messages the relay parked.", "relay", "topic"),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "theus_relay_batch_duration_seconds",
			Help:    "Time from reading a batch of undelivered messages to having delivered (or failed) and acked it.",
			Buckets: o.buckets,
		}, []string{"relay"}),
		stores: newStoreCollector(o.statsTimeout),
	}
	m.procs.new = func(p string) *procCounters {
		return &procCounters{m.commits.WithLabelValues(p), m.conflicts.WithLabelValues(p), m.retries.WithLabelValues(p)}
	}
	m.rules.new = func(k ruleKey) prometheus.Counter {
		return m.ruleViolations.WithLabelValues(k.process, k.path, k.rule)
	}
	for _, c := range []prometheus.Collector{m.commits, m.conflicts, m.retries, m.ruleViolations,
		m.deliveries, m.failures, m.parked, m.batch, m.stores} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return m, nil
}

// Commit implements engine.Metrics.
func (m *Metrics) Commit(process string) { m.procs.get(process).commits.Inc() }

// Conflict implements engine.Metrics.
func (m *Metrics) Conflict(process string) { m.procs.get(process).conflicts.Inc() }

// Retry implements engine.Metrics.
func (m *Metrics) Retry(process string) { m.procs.get(process).retries.Inc() }

// RuleViolation implements engine.Metrics.
func (m *Metrics) RuleViolation(process, path, rule string) {
	m.rules.get(ruleKey{process, path, rule}).Inc()
}

// Relay returns the outbox.RelayMetrics of the relay called name (give it
// to outbox.WithRelayMetrics): its series carry the label relay=name.
// Name relays by what they deliver to ("nats", "billing-webhook"), never
// by anything per message.
func (m *Metrics) Relay(name string) outbox.RelayMetrics {
	r := &relayMetrics{batch: m.batch.WithLabelValues(name)}
	r.topics.new = func(topic string) *topicCounters {
		t := &topicCounters{
			deliveries: m.deliveries.WithLabelValues(name, topic),
			parked:     m.parked.WithLabelValues(name, topic),
		}
		for c := range t.failures {
			t.failures[c] = m.failures.WithLabelValues(name, topic, failureClass(c).String())
		}
		return t
	}
	return r
}

// AddStore makes every scrape report the outbox gauges of st, with the
// label store=name: theus_outbox_depth, theus_outbox_oldest_undelivered_age_seconds,
// theus_outbox_parked_messages and theus_outbox_parked_keys. The memory and
// SQLite stores implement outbox.StatsReader.
func (m *Metrics) AddStore(name string, st outbox.StatsReader) error {
	if st == nil {
		return errors.New("metrics: AddStore: nil store")
	}
	return m.stores.add(name, st)
}

// Handler serves the metrics g gathers (usually the *prometheus.Registry
// given to New) in the Prometheus exposition formats. A store whose
// statistics fail is left out of the scrape; the rest is served.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

type relayMetrics struct {
	batch  prometheus.Observer
	topics cache[string, *topicCounters]
}

type topicCounters struct {
	deliveries, parked prometheus.Counter
	failures           [classes]prometheus.Counter
}

// failureClass is the class of a sink error; see outbox.Unavailable.
type failureClass int

const (
	transient failureClass = iota
	permanent
	unavailable
	classes
)

func (c failureClass) String() string {
	return [...]string{"transient", "permanent", "unavailable"}[c]
}

func classOf(err error) failureClass {
	switch {
	case outbox.IsUnavailable(err):
		return unavailable
	case outbox.IsPermanent(err):
		return permanent
	}
	return transient
}

// Delivered implements outbox.RelayMetrics, adding up runs of messages of
// one topic (a batch often has one topic only).
func (r *relayMetrics) Delivered(msgs []outbox.Message) {
	for i := 0; i < len(msgs); {
		j := i + 1
		for j < len(msgs) && msgs[j].Topic == msgs[i].Topic {
			j++
		}
		r.topics.get(msgs[i].Topic).deliveries.Add(float64(j - i))
		i = j
	}
}

// Failed implements outbox.RelayMetrics.
func (r *relayMetrics) Failed(topic string, err error, parked bool) {
	t := r.topics.get(topic)
	t.failures[classOf(err)].Inc()
	if parked {
		t.parked.Inc()
	}
}

// Batch implements outbox.RelayMetrics.
func (r *relayMetrics) Batch(_ int, d time.Duration) { r.batch.Observe(d.Seconds()) }

// cache maps label values to their resolved metrics. Reads are lock-free
// and allocate nothing; a value seen for the first time copies the map,
// which is fine for label values that come from a contract (processes,
// paths, topics): few, and all seen early.
type cache[K comparable, V any] struct {
	m   atomic.Pointer[map[K]V]
	mu  sync.Mutex
	new func(K) V
}

func (c *cache[K, V]) get(k K) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	next := map[K]V{}
	if old != nil {
		next = maps.Clone(*old)
	}
	v := c.new(k)
	next[k] = v
	c.m.Store(&next)
	return v
}

// storeCollector reads the outbox gauges of the stores at scrape time.
type storeCollector struct {
	timeout                           time.Duration
	depth, oldest, parked, parkedKeys *prometheus.Desc
	// Of stores whose relays lease partitions (outbox.FleetReader).
	leases, handovers, fenced, partOldest *prometheus.Desc

	mu     sync.Mutex
	stores map[string]outbox.StatsReader
}

func newStoreCollector(timeout time.Duration) *storeCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"store"}, nil)
	}
	return &storeCollector{
		timeout:    timeout,
		depth:      desc("theus_outbox_depth", "Messages waiting for delivery: neither delivered nor parked."),
		oldest:     desc("theus_outbox_oldest_undelivered_age_seconds", "Age of the oldest message waiting for delivery; 0 when none waits."),
		parked:     desc("theus_outbox_parked_messages", "Parked messages, waiting for Replay or Skip."),
		parkedKeys: desc("theus_outbox_parked_keys", "(topic, key)s held back by a parked message."),
		leases:     desc("theus_relay_leases", "Partitions of the outbox the store handle's relay leases now."),
		handovers:  desc("theus_relay_handovers_total", "Partitions the store handle's relay took over from another relay."),
		fenced:     desc("theus_relay_fenced_total", "Acks and failure records refused because the relay had lost its lease."),
		partOldest: prometheus.NewDesc("theus_outbox_partition_oldest_undelivered_age_seconds",
			"Age of the oldest message waiting for delivery in a partition; 0 when none waits.", []string{"store", "partition"}, nil),
		stores: make(map[string]outbox.StatsReader),
	}
}

func (c *storeCollector) add(name string, st outbox.StatsReader) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.stores[name]; ok {
		return fmt.Errorf("metrics: AddStore: a store called %q was added already", name)
	}
	c.stores[name] = st
	return nil
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.depth, c.oldest, c.parked, c.parkedKeys, c.leases, c.handovers, c.fenced, c.partOldest} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Stats call per store.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	stores := maps.Clone(c.stores)
	c.mu.Unlock()
	for name, st := range stores {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		s, err := st.Stats(ctx)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.depth, fmt.Errorf("store %s: %w", name, err))
			continue
		}
		age := 0.0
		if !s.OldestPending.IsZero() {
			age = max(time.Since(s.OldestPending).Seconds(), 0)
		}
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		gauge(c.depth, float64(s.Pending))
		gauge(c.oldest, age)
		gauge(c.parked, float64(s.Parked))
		gauge(c.parkedKeys, float64(s.ParkedKeys))
		if f, ok := st.(outbox.FleetReader); ok {
			c.collectFleet(ch, name, f)
		}
	}
}

// collectFleet reads the relay counters and the partitions' ages of a
// store whose relays lease partitions.
func (c *storeCollector) collectFleet(ch chan<- prometheus.Metric, name string, f outbox.FleetReader) {
	fs := f.FleetStats()
	ch <- prometheus.MustNewConstMetric(c.leases, prometheus.GaugeValue, float64(fs.Leases), name)
	ch <- prometheus.MustNewConstMetric(c.handovers, prometheus.CounterValue, float64(fs.Handovers), name)
	ch <- prometheus.MustNewConstMetric(c.fenced, prometheus.CounterValue, float64(fs.Fenced), name)
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	parts, err := f.PartitionStats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.partOldest, fmt.Errorf("store %s: %w", name, err))
		return
	}
	for _, p := range parts {
		age := 0.0
		if !p.OldestPending.IsZero() {
			age = max(time.Since(p.OldestPending).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(c.partOldest, prometheus.GaugeValue, age, name, strconv.Itoa(p.Partition))
	}
}
