package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
)

// Rules and domain errors. Generated code checks a process's rules at the
// end of each run, on the values the process set, and reports a broken
// rule to the call's Tx: Fail(&RuleError{...}) for on_fail: reject, which
// ends the attempt with nothing committed or emitted, and Warn for
// on_fail: warn, which the engine logs and counts once the call commits.
// Nothing here runs, or allocates, while every rule holds.

// RuleError is the error of a call whose outputs broke a contract rule with
// on_fail: reject (the default): nothing was committed or emitted. It
// matches ErrRuleViolation.
type RuleError struct {
	Process string
	// Path is the rule's path as the contract writes it, e.g.
	// "domain.user.email" or "domain.accounts[*].balance".
	Path string
	// Rule is the check that failed: "min", "max", "min_len", "max_len",
	// "regex", "one_of" or "required".
	Rule string
	// Value is the value that broke it.
	Value any
	// Key is the key of the collection entry that broke a [*] rule; nil
	// for other rules.
	Key any
}

func (e *RuleError) Error() string {
	if e.Key != nil {
		return fmt.Sprintf("theus: process %s: %s breaks rule %s (key %s, value %s)",
			e.Process, e.Path, e.Rule, shortValue(e.Key), shortValue(e.Value))
	}
	return fmt.Sprintf("theus: process %s: %s breaks rule %s (value %s)", e.Process, e.Path, e.Rule, shortValue(e.Value))
}

// Is reports that a RuleError matches ErrRuleViolation.
func (e *RuleError) Is(target error) bool { return target == ErrRuleViolation }

// shortValue formats v for a message, cut short: a rule on a long string
// or a big slice should not make an error line unreadable.
func shortValue(v any) string {
	const limit = 64
	var s string
	if str, ok := v.(string); ok {
		s = fmt.Sprintf("%q", str)
	} else {
		s = fmt.Sprintf("%v", v)
	}
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return s
}

// Warn records a broken rule with on_fail: warn. The engine logs it (at
// level Warn, through WithLogger) and counts it (Metrics.RuleViolation)
// once the call commits; an attempt that does not commit drops it.
func (t *Tx) Warn(w RuleError) { t.warnings = append(t.warnings, w) }

// warn logs and counts the warnings of a call that committed version v. It
// runs after the commit, outside e.mu, so that a slow log handler delays
// only its own call.
func (e *Engine[S]) warn(ctx context.Context, tx *Tx, v uint64) {
	for i := range tx.warnings {
		w := &tx.warnings[i]
		e.opts.metrics.RuleViolation(w.Process, w.Path, w.Rule)
		attrs := []slog.Attr{
			slog.String("process", w.Process), slog.String("path", w.Path), slog.String("rule", w.Rule),
			slog.Any("value", w.Value), slog.Uint64("version", v),
		}
		if w.Key != nil {
			attrs = append(attrs, slog.Any("key", w.Key))
		}
		e.opts.logger.LogAttrs(ctx, slog.LevelWarn, "theus: rule broken, committed anyway (on_fail: warn)", attrs...)
	}
}

// Final reports whether pending[i] is the last write of its key, the one
// a commit applies (see Collection.Apply): a [*] rule checks only those,
// so that a value a process overwrote in the same call does not count.
func Final[K cmp.Ordered, V any](pending []Pending[K, V], i int) bool {
	for _, q := range pending[i+1:] {
		if q.Key == pending[i].Key {
			return false
		}
	}
	return true
}

// countRejected counts a run that a rule refused.
func (e *Engine[S]) countRejected(err error) {
	if re, ok := err.(*RuleError); ok {
		e.opts.metrics.RuleViolation(re.Process, re.Path, re.Rule)
	}
}

// undeclared reports whether the first DomainError in err's tree (as
// errors.As finds it) is not among the declared ones.
func undeclared(err error, declared []error) bool {
	var de DomainError
	return errors.As(err, &de) && !slices.Contains(declared, error(de))
}
