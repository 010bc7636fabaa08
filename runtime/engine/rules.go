package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"strings"
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
	// Must is what the value had to satisfy, as a phrase after "must":
	// "be >= 1", "have length <= 32", "match ^[a-z]+$", "be one of
	// [admin member]", "be set" (required), "satisfy self.sold <=
	// self.capacity" (a CEL check).
	Must string
	// Message is the rule's `message:` in the contract, if any.
	Message string
	// Invariant is set for a state invariant (`state.invariants:`): Process
	// is then the process whose commit broke it, empty for CompareAndSwap.
	Invariant bool
}

// Error says who broke what, the value and the key, and the contract's
// message: `theus: process sell: domain.events[*] must satisfy self.sold
// <= self.capacity, got {...} (key "e1"): sold out`.
func (e *RuleError) Error() string {
	var b strings.Builder
	b.WriteString("theus: ")
	switch {
	case e.Process != "":
		b.WriteString("process " + e.Process + ": ")
	case e.Invariant:
		b.WriteString("CompareAndSwap: ")
	}
	if e.Invariant {
		b.WriteString("invariant ")
	}
	b.WriteString(e.Path)
	if e.Must != "" {
		b.WriteString(" must " + e.Must)
	} else {
		b.WriteString(" breaks rule " + e.Rule)
	}
	b.WriteString(", got " + shortValue(e.Value))
	if e.Key != nil {
		b.WriteString(" (key " + shortValue(e.Key) + ")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
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
		s = fmt.Sprintf("%+v", v)
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
func (e *core) warn(ctx context.Context, tx *Tx, v uint64) {
	for i := range tx.warnings {
		w := &tx.warnings[i]
		e.opts.metrics.RuleViolation(w.Process, w.Path, w.Rule)
		attrs := []slog.Attr{
			slog.String("process", w.Process), slog.String("path", w.Path), slog.String("rule", w.Rule),
			slog.Any("value", w.Value), slog.Uint64("version", v),
		}
		if w.Must != "" {
			attrs = append(attrs, slog.String("must", w.Must))
		}
		if w.Message != "" {
			attrs = append(attrs, slog.String("message", w.Message))
		}
		if w.Invariant {
			attrs = append(attrs, slog.Bool("invariant", true))
		}
		if w.Key != nil {
			attrs = append(attrs, slog.Any("key", w.Key))
		}
		e.opts.logger.LogAttrs(ctx, slog.LevelWarn, "theus: rule broken, committed anyway (on_fail: warn)", attrs...)
	}
}

// FinalWrites yields the writes of pending that a commit applies (see
// Collection.Apply): the last write of each key, in the order of pending.
// A [*] rule checks only those, so that a value a process overwrote in the
// same call does not count. It takes time linear in len(pending), and
// allocates only for more than finalScan writes.
func FinalWrites[K cmp.Ordered, V any](pending []Pending[K, V]) iter.Seq[Pending[K, V]] {
	return func(yield func(Pending[K, V]) bool) {
		if len(pending) <= finalScan {
			for i, p := range pending {
				if Final(pending, i) && !yield(p) {
					return
				}
			}
			return
		}
		last := make(map[K]int, len(pending))
		for i, p := range pending {
			last[p.Key] = i
		}
		for i, p := range pending {
			if last[p.Key] == i && !yield(p) {
				return
			}
		}
	}
}

// finalScan is the most writes FinalWrites compares pairwise: a call
// usually writes a few entries, and a map would cost more than the scan.
const finalScan = 16

// Final reports whether pending[i] is the last write of its key. It scans
// the writes after i: to visit the final writes of a call, use
// FinalWrites, which is linear (code generated by earlier versions of
// theusgen calls Final for each write).
func Final[K cmp.Ordered, V any](pending []Pending[K, V], i int) bool {
	for _, q := range pending[i+1:] {
		if q.Key == pending[i].Key {
			return false
		}
	}
	return true
}

// countRejected counts a run that a rule refused.
func (e *core) countRejected(err error) {
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
