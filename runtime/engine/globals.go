package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unsafe"
)

// WithGlobals applies configuration at start: once the engine has
// recovered its state (or taken the initial one), set writes the wanted
// values into a copy of it, and the engine commits the global fields that
// differ (compared by their encoding) as one ordinary commit, a
// CompareAndSwap on the recovered version: it is in the history and
// Watch, checked for conflicts, and made only when a value changed, so
// that restarts with the same configuration commit nothing, and of several
// instances starting together on one shared store only the first commits
// (the others find the values set). A change outside the global zone is
// an error; so is a set whose state type is not the engine's.
//
//	shop.NewEngine(ctx, shop.State{}, impl, engine.WithGlobals(func(s *shop.State) {
//		s.Global.MaxEmailChanges = cfg.MaxEmailChanges
//	}))
//
// The global fields are those of Schema.State (generated code declares
// them all).
func WithGlobals[S any](set func(s *S)) Option {
	return func(o *options) {
		o.globals = func(s unsafe.Pointer) { set((*S)(s)) }
		o.globalsType = reflect.TypeFor[*S]()
	}
}

// applyGlobals commits what WithGlobals changes, if anything.
func (e *core) applyGlobals(ctx context.Context) error {
	set := e.opts.globals
	if e.opts.globalsType != e.ops.ptrType {
		return fmt.Errorf("theus: WithGlobals: got a func(%v), want a func(%v) for the engine's state", e.opts.globalsType, e.ops.ptrType)
	}
	for attempt := 0; ; attempt++ {
		if e.shared != nil {
			if err := e.sync(ctx); err != nil {
				return fmt.Errorf("theus: WithGlobals: %w", err)
			}
		}
		v, cur := e.snapshot()
		ch, err := e.globalsChange(cur, set)
		if err != nil || len(ch.fields) == 0 {
			return err
		}
		_, err = e.cas(ctx, v, ch)
		if errors.Is(err, ErrVersionMismatch) && attempt < 100 {
			continue // another commit came first: compare again
		}
		if err != nil {
			return fmt.Errorf("theus: WithGlobals: %w", err)
		}
		return nil
	}
}

// globalsChange returns the change that makes the global fields of cur
// what set makes them.
func (e *core) globalsChange(cur unsafe.Pointer, set func(unsafe.Pointer)) (globalsChange, error) {
	ch := globalsChange{sc: e.sc}
	want := e.ops.clone(cur)
	set(want)
	check := e.ops.clone(cur)
	var a, b []byte
	for i, f := range e.sc.infos {
		if f.Collection {
			continue // collections are domain state; set must not touch them (not compared)
		}
		var err error
		if a, err = e.sc.appendField(a[:0], cur, i); err != nil {
			return ch, fmt.Errorf("theus: WithGlobals: %w", err)
		}
		if b, err = e.sc.appendField(b[:0], want, i); err != nil {
			return ch, fmt.Errorf("theus: WithGlobals: %w", err)
		}
		if bytes.Equal(a, b) {
			continue
		}
		if !strings.HasPrefix(f.Path, "global.") {
			return ch, fmt.Errorf("theus: WithGlobals changes %s: it sets global values only", f.Path)
		}
		p, ok := e.pathIndex[f.Path]
		if !ok {
			return ch, fmt.Errorf("theus: WithGlobals changes %s, which Schema.Paths does not list", f.Path)
		}
		g := globalValue{field: i, path: p, data: bytes.Clone(b)}
		// Decoded once here, so that Apply, which cannot fail, does not.
		if err := e.sc.applyRemote(check, RemoteValue{Field: i, Data: g.data}, 0); err != nil {
			return ch, fmt.Errorf("theus: WithGlobals: %w", err)
		}
		ch.fields = append(ch.fields, g)
	}
	return ch, nil
}

// globalsChange is the commit of WithGlobals: encoded values of plain
// global fields.
type globalsChange struct {
	sc     *stateCodec
	fields []globalValue
}

type globalValue struct {
	field, path int // in the codec's fields, in Schema.Paths
	data        []byte
}

func (c globalsChange) Record(tx *Tx) {
	for _, g := range c.fields {
		tx.Write(g.path)
	}
}

func (c globalsChange) applyTo(s unsafe.Pointer, v uint64) {
	for _, g := range c.fields {
		_ = c.sc.applyRemote(s, RemoteValue{Field: g.field, Data: g.data}, v) // decoded once already
	}
}
