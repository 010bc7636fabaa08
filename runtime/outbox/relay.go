package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Relay delivers the committed messages of a store to a sink, at least
// once, in commit order per (topic, key), and acks each message only after
// the sink has confirmed it.
type Relay struct {
	st   Store
	sink Sink
	opts relayOptions

	delivered atomic.Uint64
	failures  atomic.Uint64
	parked    atomic.Uint64
}

// RelayOption configures a Relay.
type RelayOption func(*relayOptions)

type relayOptions struct {
	batch      int
	backoff    time.Duration
	maxBackoff time.Duration
	poll       time.Duration
	logger     *slog.Logger
	// maxAttempts and pruneEvery: see WithMaxAttempts, WithPruneInterval.
	maxAttempts int
	pruneEvery  time.Duration
	metrics     RelayMetrics // nil: none
}

// DefaultBatchSize is how many messages a relay reads and sends at once
// unless WithBatchSize says otherwise. A round costs the store a read
// and an ack whatever its size, so a backlog drains faster in larger
// rounds; a round takes only what is there, so a small one waits for
// nothing.
const DefaultBatchSize = 500

// WithBatchSize sets how many messages the relay reads and sends at once
// (default DefaultBatchSize).
func WithBatchSize(n int) RelayOption {
	return func(o *relayOptions) { o.batch = max(n, 1) }
}

// WithRelayBackoff sets the wait after a failed delivery: exponential with
// full jitter from min, capped at max (defaults 10ms and 5s).
func WithRelayBackoff(min, max time.Duration) RelayOption {
	return func(o *relayOptions) {
		o.backoff = min
		o.maxBackoff = max
	}
}

// WithPollInterval sets how often the relay looks at the store when no
// commit has woken it: a backstop for stores written by other processes
// (default 1s). Commits in the same process wake it at once.
func WithPollInterval(d time.Duration) RelayOption {
	return func(o *relayOptions) { o.poll = d }
}

// WithRelayLogger sets the logger for delivery failures (default: discard).
func WithRelayLogger(l *slog.Logger) RelayOption {
	return func(o *relayOptions) {
		if l != nil {
			o.logger = l
		}
	}
}

// NewRelay returns a relay from st to sink. Call Run to start it.
func NewRelay(st Store, sink Sink, opts ...RelayOption) *Relay {
	o := relayOptions{
		batch:      DefaultBatchSize,
		backoff:    10 * time.Millisecond,
		maxBackoff: 5 * time.Second,
		poll:       time.Second,
		logger:     slog.New(slog.DiscardHandler),

		maxAttempts: 10,
		pruneEvery:  time.Minute,
	}
	for _, opt := range opts {
		opt(&o)
	}
	o.maxBackoff = max(o.maxBackoff, o.backoff)
	return &Relay{st: st, sink: sink, opts: o}
}

// RelayStats counts a relay's work since it was created.
type RelayStats struct {
	Delivered uint64 // messages the sink confirmed (and the relay acked)
	Failures  uint64 // failed deliveries (each retried later, or parked)
	Parked    uint64 // messages this relay parked
}

// Stats returns the relay's counters.
func (r *Relay) Stats() RelayStats {
	return RelayStats{Delivered: r.delivered.Load(), Failures: r.failures.Load(), Parked: r.parked.Load()}
}

// Run delivers messages until ctx ends, then returns nil. It returns an
// error only if ctx is still live and the relay cannot go on: at once,
// matching ErrRelayRunning, when another relay runs on a store that
// implements RelayClaimer. Messages a sink was sending when ctx ended are
// not acked and will be sent again.
func (r *Relay) Run(ctx context.Context) error {
	if c, ok := r.st.(RelayClaimer); ok {
		release, err := c.ClaimRelay(ctx)
		if err != nil {
			return fmt.Errorf("theus relay: %w", err)
		}
		defer release()
	}
	poll := time.NewTicker(r.opts.poll)
	defer poll.Stop()
	failures := 0
	var pruned time.Time
	for {
		if ctx.Err() != nil {
			return nil
		}
		pruned = r.prune(ctx, pruned)
		// Take the notification channel before reading, so a commit that
		// lands between the read and the wait is not missed.
		wake := r.st.Notify()
		var start time.Time
		if r.opts.metrics != nil {
			start = time.Now()
		}
		msgs, err := r.st.Undelivered(ctx, r.opts.batch)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.opts.logger.Warn("theus relay: read undelivered messages", "err", err)
			failures++
			if !r.sleep(ctx, failures) {
				return nil
			}
			continue
		}
		if len(msgs) == 0 {
			if !idle(ctx, wake, poll) {
				return nil
			}
			continue
		}
		ok, asked := r.deliver(ctx, msgs)
		if r.opts.metrics != nil {
			r.opts.metrics.Batch(len(msgs), time.Since(start))
		}
		if ok {
			failures = 0
			if d, isD := r.st.(Drainer); isD {
				if drained := d.Drained(); drained != nil && !idle(ctx, drained, poll) {
					return nil // nothing to read until a commit, and ctx ended
				}
			}
			continue
		}
		failures++
		if !r.sleepAtLeast(ctx, failures, asked) {
			return nil
		}
	}
}

// idle waits until commit closes (a commit to read) or poll ticks; it
// returns false if ctx ends first.
func idle(ctx context.Context, commit <-chan struct{}, poll *time.Ticker) bool {
	select {
	case <-ctx.Done():
		return false
	case <-commit:
	case <-poll.C:
	}
	return true
}

// deliver sends msgs, acking what the sink confirms. When a message fails,
// the later messages of its (topic, key) are held back so per-key order is
// kept, while other keys go on. It reports whether the round needs no
// backoff (everything was delivered, or what failed is parked), and the
// longest wait a failed delivery asked for (see RetryAfter).
func (r *Relay) deliver(ctx context.Context, msgs []Message) (ok bool, asked time.Duration) {
	var blocked map[TopicKey]bool
	retry := false
	// one is set once the sink panicked on several messages: which of them
	// it could not take is unknown, so the rest of the round goes one
	// message at a time and the panic is held against the message that
	// causes it, not against the first of a batch.
	one := false
	ids := make([]string, 0, len(msgs))
	for len(msgs) > 0 {
		batch := msgs
		if one {
			batch = msgs[:1]
		}
		n, err := r.send(ctx, batch)
		n = min(max(n, 0), len(batch))
		ids = ids[:0]
		for _, m := range batch[:n] {
			ids = append(ids, m.ID)
		}
		if len(ids) > 0 {
			if aerr := r.st.Ack(ctx, ids); aerr != nil {
				// Delivered but not acked: it will be delivered again, which
				// at-least-once allows and KeySeq lets consumers drop.
				r.opts.logger.Warn("theus relay: ack", "err", aerr)
				return false, asked
			}
			r.delivered.Add(uint64(len(ids)))
			if r.opts.metrics != nil {
				r.opts.metrics.Delivered(batch[:n])
			}
		}
		if err == nil && n == len(batch) {
			msgs = msgs[n:]
			continue
		}
		if ctx.Err() != nil {
			return false, asked
		}
		var pe *PanicError
		if len(batch)-n > 1 && errors.As(err, &pe) {
			r.opts.logger.Error("theus relay: the sink panicked; sending one message at a time to find the one at fault",
				"err", err, "stack", string(pe.Stack))
			one = true
			msgs = msgs[n:]
			continue
		}
		if n == len(batch) { // a sink that confirmed all and still errs
			n = len(batch) - 1
		}
		failed := batch[n]
		parked, fenced := r.failed(ctx, failed, err)
		if fenced {
			return false, asked
		}
		if !parked {
			retry = true
			if d, ok := RetryAfter(err); ok {
				asked = max(asked, d)
			}
		}
		if blocked == nil {
			blocked = make(map[TopicKey]bool)
		}
		blocked[TopicKey{Topic: failed.Topic, Key: failed.Key}] = true
		rest := msgs[n+1:]
		msgs = msgs[:0:0]
		for _, m := range rest {
			if !blocked[TopicKey{Topic: m.Topic, Key: m.Key}] {
				msgs = append(msgs, m)
			}
		}
	}
	return !retry, asked
}

// send calls the sink. A panic in it becomes a *PanicError, a failed
// delivery like any other: a sink must not take the process down, and a
// message that makes it panic is parked like any poison message.
func (r *Relay) send(ctx context.Context, batch []Message) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			n, err = 0, &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return r.sink.Send(ctx, batch)
}

// sleepAtLeast waits the backoff, or longer if a sink asked for it.
func (r *Relay) sleepAtLeast(ctx context.Context, failures int, asked time.Duration) bool {
	if asked <= 0 {
		return r.sleep(ctx, failures)
	}
	return r.wait(ctx, max(asked, r.backoff(failures)))
}

// sleep waits the backoff for the given number of consecutive failures; it
// returns false if ctx ended first.
func (r *Relay) sleep(ctx context.Context, failures int) bool {
	return r.wait(ctx, r.backoff(failures))
}

// backoff is the wait after the given number of consecutive failures:
// exponential, capped, with full jitter.
func (r *Relay) backoff(failures int) time.Duration {
	d := r.opts.backoff << min(failures-1, 30)
	if d > r.opts.maxBackoff || d <= 0 {
		d = r.opts.maxBackoff
	}
	if d > 0 {
		d = rand.N(d) + 1
	}
	return d
}

// wait waits d; it returns false if ctx ended first.
func (r *Relay) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
