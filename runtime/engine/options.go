package engine

import (
	"context"
	"log/slog"
	"reflect"
	"sync/atomic"
	"time"
	"unsafe"
)

// Option configures an Engine.
type Option func(*options)

type options struct {
	store Store
	// globals is the set of WithGlobals, given a *S of type globalsType.
	globals     func(s unsafe.Pointer)
	globalsType reflect.Type
	migrations  map[string]Migration
	strictCAS   bool
	attempts    int
	backoff     time.Duration
	maxBackoff  time.Duration
	logger      *slog.Logger
	metrics     Metrics
	codec       Codec
	now         func() time.Time
	headers     func(context.Context) map[string]string
}

func defaultOptions() options {
	return options{
		attempts:   8,
		backoff:    20 * time.Microsecond,
		maxBackoff: 2 * time.Millisecond,
		logger:     slog.New(slog.DiscardHandler),
		metrics:    nopMetrics{},
	}
}

// WithStore makes the engine persist commits to st. Without it the engine
// uses a memory store (Engine.Store). The engine does not close st: its
// owner does, after the relay that reads it has stopped.
func WithStore(st Store) Option { return func(o *options) { o.store = st } }

// WithStrictCAS makes any commit newer than a call's snapshot a conflict,
// whatever paths it wrote: every call then behaves as if it read the whole
// state. Use it when processes have reads the contract does not declare
// (there should be none) or to compare against per-path validation.
func WithStrictCAS() Option { return func(o *options) { o.strictCAS = true } }

// WithRetry sets how conflicts are retried: a call re-runs its process after
// a conflict, waiting an exponential backoff with full jitter that starts at
// backoff and is capped at maxBackoff. After attempts failed attempts the
// call takes an exclusive turn: commits by other calls wait while it runs
// once more on the latest state, so it cannot lose again. attempts < 1 is 1.
func WithRetry(attempts int, backoff, maxBackoff time.Duration) Option {
	return func(o *options) {
		o.attempts = max(attempts, 1)
		o.backoff = max(backoff, 0)
		o.maxBackoff = max(maxBackoff, o.backoff)
	}
}

// WithLogger sets the logger for warnings (such as rules with on_fail:
// warn). The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithMetrics reports engine events to m.
func WithMetrics(m Metrics) Option {
	return func(o *options) {
		if m != nil {
			o.metrics = m
		}
	}
}

// WithCodec makes generated code encode payloads with c instead of its
// built-in JSON encoders, and durable stores encode state values with c
// instead of encoding/json (a store refuses to open values written with
// another codec).
func WithCodec(c Codec) Option { return func(o *options) { o.codec = c } }

// WithHeaders makes the engine ask f for the headers of the messages a
// call emits, such as the W3C traceparent of the caller's span (package
// runtime/otelheaders has the OpenTelemetry one). f gets the context the
// call was given; it runs on the caller's goroutine, once per attempt that
// emitted messages, before the commit and outside the engine's lock, so it
// must be safe for concurrent use and should be quick. Every message of the
// call gets the map f returns (shared, not copied: f returns a new map each
// time, or nil for no headers, and nobody modifies it afterwards). Without
// WithHeaders, or when f returns nil, messages have no headers and the
// commit path does no extra work.
func WithHeaders(f func(ctx context.Context) map[string]string) Option {
	return func(o *options) { o.headers = f }
}

// WithClock sets the clock that stamps Message.CreatedAt, read once per
// commit that emits. Without it the engine keeps a reading of time.Now
// refreshed every millisecond while commits come in (see doc.go): exact
// clocks and fake ones (tests) go here.
func WithClock(now func() time.Time) Option {
	return func(o *options) {
		if now != nil {
			o.now = now
		}
	}
}

// Codec encodes message payloads (and, for durable stores, state values).
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// Metrics receives engine events. Implementations must be safe for
// concurrent use and fast: they are called on the commit path.
type Metrics interface {
	Commit(process string)
	Conflict(process string)
	Retry(process string)
	RuleViolation(process, path, rule string)
}

type nopMetrics struct{}

func (nopMetrics) Commit(string)                        {}
func (nopMetrics) Conflict(string)                      {}
func (nopMetrics) Retry(string)                         {}
func (nopMetrics) RuleViolation(string, string, string) {}

// Counters is a Metrics that counts events in memory, for tests, demos and
// expvar-style reporting.
type Counters struct {
	Commits        atomic.Uint64
	Conflicts      atomic.Uint64
	Retries        atomic.Uint64
	RuleViolations atomic.Uint64
}

func (c *Counters) Commit(string)                        { c.Commits.Add(1) }
func (c *Counters) Conflict(string)                      { c.Conflicts.Add(1) }
func (c *Counters) Retry(string)                         { c.Retries.Add(1) }
func (c *Counters) RuleViolation(string, string, string) { c.RuleViolations.Add(1) }
