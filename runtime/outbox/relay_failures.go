package outbox

import (
	"context"
	"errors"
	"time"
)

// WithMaxAttempts sets after how many counted failed deliveries a message
// is parked (default 10), on a store that implements Parking. Errors
// marked with Unavailable are not counted; errors marked with Permanent
// park at once. n <= 0 never parks by count. On a store without Parking,
// failed messages are retried forever.
func WithMaxAttempts(n int) RelayOption {
	return func(o *relayOptions) { o.maxAttempts = n }
}

// WithPruneInterval sets how often the relay asks a store that implements
// Pruner to delete the delivered messages past their retention (default
// 1m); d <= 0 never.
func WithPruneInterval(d time.Duration) RelayOption {
	return func(o *relayOptions) { o.pruneEvery = d }
}

// failed handles a failed delivery of m: it counts it and parks the
// message when the store can and the error's class says so (see
// Unavailable). It reports whether m is parked now, and whether the store
// refused to record it (ErrFenced).
func (r *Relay) failed(ctx context.Context, m Message, err error) (parked, fenced bool) {
	r.failures.Add(1)
	log := r.opts.logger.With("id", m.ID, "topic", m.Topic, "key", m.Key, "err", err)
	cause := "<nil>"
	if err != nil {
		cause = err.Error()
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		// The stack is what tells the operator where the sink broke.
		log = log.With("stack", string(pe.Stack))
		cause += "\n\n" + string(pe.Stack)
	}
	p, ok := r.st.(Parking)
	if !ok || IsUnavailable(err) {
		log.Warn("theus relay: delivery failed", "permanent", IsPermanent(err), "unavailable", IsUnavailable(err))
		r.countFailure(m, err, false)
		return false, false
	}
	parked, perr := p.Failed(ctx, m.ID, cause, IsPermanent(err), r.opts.maxAttempts)
	r.countFailure(m, err, parked && perr == nil)
	if perr != nil {
		log.Warn("theus relay: delivery failed; recording the failure failed too", "record_err", perr)
		return false, errors.Is(perr, ErrFenced)
	}
	if parked {
		r.parked.Add(1)
		log.Error("theus relay: message parked; its key is held back until Replay or Skip", "permanent", IsPermanent(err))
		return true, false
	}
	log.Warn("theus relay: delivery failed", "permanent", false)
	return false, false
}

// prune runs the store's Prune when the interval has passed since last,
// and returns when it last ran.
func (r *Relay) prune(ctx context.Context, last time.Time) time.Time {
	p, ok := r.st.(Pruner)
	if !ok || r.opts.pruneEvery <= 0 || time.Since(last) < r.opts.pruneEvery {
		return last
	}
	if n, err := p.Prune(ctx); err != nil {
		if ctx.Err() == nil {
			r.opts.logger.Warn("theus relay: prune delivered messages", "err", err)
		}
	} else if n > 0 {
		r.opts.logger.Debug("theus relay: pruned delivered messages", "count", n)
	}
	return time.Now()
}

// countFailure reports a failed delivery of m to the relay's metrics.
func (r *Relay) countFailure(m Message, err error, parked bool) {
	if r.opts.metrics != nil {
		r.opts.metrics.Failed(m.Topic, err, parked)
	}
}
