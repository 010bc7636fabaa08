package engine

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"unsafe"
)

// State invariants. A contract's `state.invariants:` are checks that every
// commit writing their path must keep, whichever process wrote it, and
// CompareAndSwap too. The engine checks them on the state a commit is
// about to publish, after applying its writes and before sequencing it, so
// that what a commit is checked on is what readers will see, writes of
// other paths by earlier commits included. Only the values the commit
// wrote are checked: an invariant whose path the commit did not touch is
// not evaluated, and of a collection only the entries it put (deletes are
// not checked).

// Invariant is one check of Schema.Invariants.
type Invariant struct {
	// Path is the invariant's path as the contract writes it
	// ("domain.events[*]", "domain.user.email").
	Path string
	// Field is the index in Schema.State of the top-level field the path
	// lies in.
	Field int
	// Each is set for a [*] path: the check applies to every entry of the
	// collection Field that a commit puts.
	Each bool
	// Sub are the names (JSON names) of the struct fields from the field's
	// value, or the entry, to the value checked.
	Sub []string
	// Rule names the check ("check" for an expression, "min", …), Check
	// is its expression for Schema.CompileCheck, and Must says what it
	// requires, for RuleError.Must ("be >= 1").
	Rule, Check, Must string
	// Message is the contract's message for it, if any.
	Message string
	// Warn: a broken invariant is logged and counted, and the commit
	// proceeds (on_fail: warn); otherwise the commit is refused.
	Warn bool
}

// CheckCompiler compiles the expression of an invariant for values of type
// t, at the fields sub below them (see Invariant.Sub). The check it returns
// is given a pointer to a value of type t and reports whether the
// invariant holds, and the value at sub, for the error, when it does not.
// It is called once per invariant when the engine starts; the checks are
// called with the engine's lock held, so one at a time.
type CheckCompiler func(expr string, t reflect.Type, sub []string) (func(v any) (holds bool, got any, err error), error)

type invariant struct {
	Invariant
	check func(any) (bool, any, error)
	codec fieldCodec
}

// compileInvariants compiles the schema's invariants and indexes them by
// the paths whose writes they check.
func (e *core) compileInvariants(schema *schema) error {
	if len(schema.invariants) == 0 {
		return nil
	}
	if schema.compileCheck == nil {
		return fmt.Errorf("theus: the schema has invariants and no CompileCheck")
	}
	e.invByPath = make([][]int, len(schema.paths))
	for i, inv := range schema.invariants {
		f := schema.state[inv.Field]
		check, err := schema.compileCheck(inv.Check, f.codec.valueType(), inv.Sub)
		if err != nil {
			return fmt.Errorf("theus: invariant %s: %w", inv.Path, err)
		}
		e.invs = append(e.invs, invariant{Invariant: inv, check: check, codec: f.codec})
		text := strings.Replace(inv.Path, "[*]", "", 1)
		for q, path := range schema.paths {
			if path == text || strings.HasPrefix(text, path+".") || strings.HasPrefix(path, text+".") {
				e.invByPath[q] = append(e.invByPath[q], i)
			}
		}
	}
	return nil
}

// checkInvariants checks the invariants that the writes of tx touch on
// s, the state the commit of process (empty for CompareAndSwap) is about
// to publish. It returns the RuleError of the first one broken with
// on_fail: reject (or the error of a check that failed to run), and
// records those broken with warn in tx. e.mu is held.
func (e *core) checkInvariants(process string, tx *Tx, s unsafe.Pointer) error {
	for _, w := range tx.writes {
		for _, i := range e.invByPath[w] {
			inv := &e.invs[i]
			if !inv.Each {
				v, _ := inv.codec.lookup(s, "")
				if err := e.checkOne(process, tx, inv, v, ""); err != nil {
					return err
				}
				continue
			}
			for _, k := range tx.keys {
				if k.path != w || k.del {
					continue
				}
				v, ok := inv.codec.lookup(s, k.key)
				if !ok { // deleted by a later write of the call
					continue
				}
				if err := e.checkOne(process, tx, inv, v, k.key); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (e *core) checkOne(process string, tx *Tx, inv *invariant, v any, key string) error {
	holds, got, err := inv.check(v)
	if err != nil {
		return fmt.Errorf("theus: invariant %s: %w", inv.Path, err)
	}
	if holds {
		return nil
	}
	re := RuleError{Process: process, Path: inv.Path, Rule: inv.Rule, Must: inv.Must, Message: inv.Message, Value: got, Invariant: true}
	if inv.Each {
		re.Key = inv.codec.keyOf(key)
	}
	if inv.Warn {
		tx.Warn(re)
		return nil
	}
	return &re
}

// refusal is what commit returns for a commit an invariant refused: the
// error, and a reference on the snapshot it was checked against (with the
// commit's writes applied to a copy), the last sequenced one.
type refusal struct {
	err  error
	base *snapshot
}

func (r *refusal) Error() string { return r.err.Error() }

// settleRefusal returns the error of a refused commit once the state it
// was decided on is durable, as for any error decided on a snapshot still
// with the store; lost reports that the store failed that state instead,
// so the call must run again.
func (e *core) settleRefusal(ctx context.Context, r *refusal) (lost bool, err error) {
	ok, werr := e.awaitSettled(ctx, r.base)
	e.release(r.base)
	switch {
	case werr != nil:
		return false, werr
	case !ok:
		return true, nil
	}
	e.countRejected(r.err)
	return false, r.err
}

// breaksInvariant reports whether the commit t, rebased onto other
// engines' commits, breaks an invariant with on_fail: reject on s (its
// warnings were recorded when it was first sequenced). e.mu is held.
func (e *core) breaksInvariant(t *Tx, s unsafe.Pointer) bool {
	n := len(t.warnings)
	err := e.checkInvariants("", t, s)
	t.warnings = t.warnings[:n]
	return err != nil
}
