package engine

import (
	"cmp"
	"context"
	"reflect"
	"sync"
	"unsafe"
)

// A call of a generated process is a FrameCall: what depends on the
// process is its arguments, which the call holds in a value of the type
// that ProcessSpec.Args names, and two functions of the schema,
// ProcessSpec.Run, which calls the application's method with them, and
// ProcessSpec.Rules, which checks the process's rules. Everything else a
// call needs (its Tx, the Out handles of its runs, the outputs its runs
// set, their checks and how to apply them, pooling, the receipt) is
// FrameCall's, driven by the tables of the Schema, the same for every
// process: generated code declares no type per process for its calls.
//
// Nothing here is generic over the process: a type or function
// instantiated once per process would cost the compiler about as much as
// the code it replaces, for every process of a contract. What is generic
// is generic over the type of an output, which processes share.

// RunFunc is ProcessSpec.Run: it runs the process with impl, the
// application's implementation of the processes, args, the call's
// arguments (a pointer to a value of the type ProcessSpec.Args names), on
// s, a *S that it must not modify, with out, the Out handle of this run.
type RunFunc func(ctx context.Context, impl, args, s any, out *Out) error

// RulesFunc is ProcessSpec.Rules, for a process with rules: it checks them
// on output i (ProcessSpec.Outputs[i]), whose value the run left in out (a
// *T, or a *[]Pending[K, V] for a collection), once the output passed its
// encoding check; args are the call's. A value output is checked only if
// the run wrote it.
type RulesFunc func(tx *Tx, i int, out, args any)

// Output describes to the calls of processes a state path that processes
// write: how to hold a value of it during a call, check it, and apply it.
// Generated code declares one per written path in Schema.Outputs, built
// with ValueOutput or CollectionOutput: the code is per type of output,
// shared by every process that writes one of the type.
//
// The methods of a generic type are compiled for each type of value it is
// instantiated with, used or not: what needs no type parameter (the
// holder's allocation, a value's reset, which is none) is outside them.
type Output[S any] struct {
	d outputDesc
}

// outputDesc is an Output with its state type erased (see outputDescs).
type outputDesc struct {
	o output
	// slot is the type of the holder of the output's value in a call.
	slot reflect.Type
	// reset forgets what a previous run left in a holder; nil when
	// nothing needs to be forgotten.
	reset func(slot any)
}

type output interface {
	// check fails tx if the run wrote path and slot holds a value a
	// durable store cannot encode; it reports whether the rules of the
	// output are to be checked.
	check(tx *Tx, path int, slot any) bool
	// apply writes the value of slot into s, which becomes version v, if
	// the run wrote path.
	apply(s unsafe.Pointer, tx *Tx, path int, slot any, v uint64)
}

// ValueOutput describes a path of type T that processes write, which name
// spells and get reaches in a state; valid is nil for the types that JSON
// always encodes (see CheckValue).
func ValueOutput[S, T any](name string, get func(*S) *T, valid func(*T) error) Output[S] {
	return SetterOutput(name, func(s *S, v *T) { *get(s) = *v }, valid)
}

// SetterOutput is ValueOutput for generated code: set writes a value,
// which P points to, into a state. P is a pointer type, so that the
// compiler makes the output's code once for all types of value, not once
// per type (a contract may have hundreds).
func SetterOutput[S, P any](name string, set func(*S, P), valid func(P) error) Output[S] {
	// A value that the run did not write (Tx.Written) is neither checked,
	// applied nor reported, and the next write replaces it: no reset.
	return Output[S]{outputDesc{o: &setterOutput[S, P]{name: name, set: set, valid: valid}, slot: reflect.TypeFor[P]().Elem()}}
}

type setterOutput[S, P any] struct {
	name  string
	set   func(*S, P)
	valid func(P) error
}

func (o *setterOutput[S, P]) check(tx *Tx, path int, slot any) bool {
	if !tx.Written(path) {
		return false
	}
	if tx.codec != nil || o.valid != nil {
		if err := CheckValue(tx.codec, o.name, slot.(P), o.valid); err != nil {
			tx.Fail(err)
		}
	}
	return true
}

func (o *setterOutput[S, P]) apply(s unsafe.Pointer, tx *Tx, path int, slot any, _ uint64) {
	if tx.Written(path) {
		o.set((*S)(s), slot.(P))
	}
}

// CollectionOutput describes a collection that processes write entries
// of, which name spells and get reaches in a state; valid is nil for the
// types that JSON always encodes (see CheckEntries).
func CollectionOutput[S any, K cmp.Ordered, V any](name string, get func(*S) *Collection[K, V], valid func(*V) error) Output[S] {
	return Output[S]{outputDesc{o: &collOutput[S, K, V]{name: name, get: get, valid: valid}, slot: reflect.TypeOf((*[]Pending[K, V])(nil)).Elem(), reset: resetPending[K, V]}}
}

type collOutput[S any, K cmp.Ordered, V any] struct {
	name  string
	get   func(*S) *Collection[K, V]
	valid func(*V) error
}

// resetPending drops the pending writes rather than reusing their array:
// the RunX effects of a run may still point into it.
func resetPending[K cmp.Ordered, V any](slot any) { *slot.(*[]Pending[K, V]) = nil }

func (o *collOutput[S, K, V]) check(tx *Tx, _ int, slot any) bool {
	if err := CheckEntries(tx.codec, o.name, *slot.(*[]Pending[K, V]), o.valid); err != nil {
		tx.Fail(err)
	}
	return true
}

func (o *collOutput[S, K, V]) apply(s unsafe.Pointer, _ *Tx, _ int, slot any, v uint64) {
	if p := *slot.(*[]Pending[K, V]); len(p) > 0 {
		c := o.get((*S)(s))
		*c = CollectionApply(*c, v, p)
	}
}

// FrameCall is a call of a generated process: an Invocation, the
// process's arguments, and the outputs of the process. Calls are pooled
// per process (Take). The Invocation is embedded (through frame, the
// untyped call that FrameCall wraps): Tx and ReceiptID are its.
type FrameCall[S any] struct {
	frame
}

// frame is a FrameCall with its state type erased: a *FrameCall[S] points
// to a frame (and the engine's pools hold frames).
type frame struct {
	Invocation
	impl   any
	args   any // a pointer to the arguments (ProcessSpec.Args)
	run    RunFunc
	rules  RulesFunc
	outs   []output    // per output of the process (ProcessSpec.Outputs)
	resets []func(any) // per output, nil for those that need none
	e      *core
	proc   int
}

// NewFrameCall returns a call of process proc of schema, with impl and
// args (a pointer to a value of the type that ProcessSpec.Args names), of
// no engine: the engine's pools and RunEffects make them, and a test may Run
// one (Exec needs a call of Take).
func NewFrameCall[S any](schema *Schema[S], proc int, impl, args any) *FrameCall[S] {
	return (*FrameCall[S])(unsafe.Pointer(newFrame(&schema.Processes[proc], outputDescs(schema.Outputs), proc, impl, args)))
}

// newFrame is NewFrameCall of spec, process proc of a schema whose
// Outputs are outputs.
func newFrame(spec *ProcessSpec, outputs []outputDesc, proc int, impl, args any) *frame {
	c := &frame{impl: impl, args: args, run: spec.Run, rules: spec.Rules, proc: proc, outs: make([]output, len(spec.Outputs))}
	c.paths = spec.Outputs
	c.slots = make([]any, len(spec.Outputs))
	c.resets = make([]func(any), len(spec.Outputs))
	for i, p := range spec.Outputs {
		out := &outputs[p]
		c.outs[i], c.resets[i] = out.o, out.reset
		c.slots[i] = reflect.New(out.slot).Interface()
	}
	return c
}

// Run implements Call: it runs the process, then checks the outputs that
// the run wrote, in the order the process declares them, each against the
// engine's codec and then the process's rules.
func (c *FrameCall[S]) Run(ctx context.Context, s *S) error { return c.runOn(ctx, s) }

// Apply implements Call.
func (c *FrameCall[S]) Apply(s *S, v uint64) { c.applyTo(unsafe.Pointer(s), v) }

func (c *frame) runOn(ctx context.Context, s any) error {
	for i, reset := range c.resets {
		if reset != nil {
			reset(c.slots[i])
		}
	}
	c.result.set = false
	c.kept = c.kept[:0]
	if err := c.run(ctx, c.impl, c.args, s, Start(&c.Invocation, c.args)); err != nil {
		return err
	}
	for i, o := range c.outs {
		if o.check(&c.tx, c.paths[i], c.slots[i]) && c.rules != nil {
			c.rules(&c.tx, i, c.slots[i], c.args)
		}
	}
	return nil
}

func (c *frame) applyTo(s unsafe.Pointer, v uint64) {
	for i, o := range c.outs {
		o.apply(s, &c.tx, c.paths[i], c.slots[i], v)
	}
}

// framePools returns a pool of frames per process, for the processes
// whose spec names a type of arguments.
func framePools(e *core, schema *schema) []sync.Pool {
	pools := make([]sync.Pool, len(schema.processes))
	for i := range schema.processes {
		p := &schema.processes[i]
		if p.Args == nil || p.Run == nil {
			continue
		}
		t := reflect.TypeOf(p.Args).Elem()
		pools[i].New = func() any {
			c := newFrame(p, schema.outputs, i, nil, reflect.New(t).Interface())
			c.e = e
			return c
		}
	}
	return pools
}

// Take takes a call of process proc of e from its pool, for impl, the
// application's implementation of the processes. Its Args are a pointer to
// a value of the type that the process's ProcessSpec names; the caller
// sets them and calls Exec or ExecResult, which return the call to the
// pool. Generated Engine methods call Invoke, which does the three.
func Take[S any](e *Engine[S], proc int, impl any) *FrameCall[S] {
	return (*FrameCall[S])(unsafe.Pointer(e.c.take(proc, impl)))
}

// take is Take. It is not inlined: each Engine method would carry a copy
// of the pool's code, for a call that costs a nanosecond.
//
//go:noinline
func (e *core) take(proc int, impl any) *frame {
	c := e.frames[proc].Get().(*frame)
	c.impl = impl
	return c
}

// Args returns the pointer to the arguments of c.
func (c *FrameCall[S]) Args() any { return c.args }

// Exec runs the call (Engine.Exec) and returns it to its pool.
func (c *FrameCall[S]) Exec(ctx context.Context) (Receipt, error) { return c.frame.exec(ctx) }

func (c *frame) exec(ctx context.Context) (Receipt, error) {
	r, err := c.e.exec(ctx, c.proc, c)
	c.release()
	if err != nil {
		return Receipt{}, err
	}
	return r, nil
}

// ReceiptOf is a Receipt with the value the process set with SetResult:
// the receipt of a generated process that declares a result.
type ReceiptOf[R any] struct {
	// Version of the commit, or of the snapshot a pure call read.
	Version uint64
	// MessageIDs lists the call's messages in emit order.
	MessageIDs []string
	// Result is what the process set with SetResult.
	Result R
}

// ExecResult is Exec for a process that declares a result of type R.
func ExecResult[R, S any](ctx context.Context, c *FrameCall[S]) (ReceiptOf[R], error) {
	r, err := c.e.exec(ctx, c.proc, &c.frame)
	var res R
	if c.result.set {
		res = *c.result.p.(*R)
	}
	c.release()
	if err != nil {
		return ReceiptOf[R]{}, err
	}
	return ReceiptOf[R]{Version: r.Version, MessageIDs: r.MessageIDs, Result: res}, nil
}

// release returns c to its pool. Its arguments and slots keep the call's
// arguments and outputs until the next call resets them (Run) or the pool
// drops it, which the garbage collector does with idle ones: zeroing them
// here would cost every call a reflective clear of the arguments.
func (c *frame) release() {
	Finish(&c.Invocation)
	c.e.frames[c.proc].Put(c)
}

// RunEffects runs process proc of schema with impl and args (a pointer to
// the arguments) once on s, with no engine and nothing committed (see
// Run), and fills *effects, the XxxEffects struct of a generated RunXxx,
// with what the run set and emitted: what generated RunXxx functions do.
// Emitters keep a copy of each payload (Out.Keep). Its fields are, in order: one per output
// (ProcessSpec.Outputs), a *T of the value, nil when the run did not write
// it, or for a collection a map[K]*V of the final value of each key
// written (nil for a delete); one per topic of ProcessSpec.Emits, a []T of
// the payloads emitted on it, in order; and the result (SetResult), if the
// process declares one. A run that fails leaves *effects as it is.
//
// It fills them by reflection: RunXxx is not hot, and a typed reader per
// effect would be compiled for every process.
func RunEffects[S any](ctx context.Context, schema *Schema[S], proc int, impl, args any, s *S, effects any) error {
	return runEffects(ctx, &schema.Processes[proc], outputDescs(schema.Outputs), proc, impl, args, s, effects)
}

func runEffects(ctx context.Context, spec *ProcessSpec, outputs []outputDesc, proc int, impl, args, s any, effects any) error {
	c := newFrame(spec, outputs, proc, impl, args)
	c.Keep = true
	err := runOnce(ctx, spec.Name, spec.Errors, nil, c, s)
	Finish(&c.Invocation)
	if err != nil {
		return err
	}
	ev := reflect.ValueOf(effects).Elem()
	f := 0
	for i := range spec.Outputs {
		field := ev.Field(f)
		f++
		if field.Kind() != reflect.Map {
			if c.tx.Written(c.paths[i]) {
				field.Set(reflect.ValueOf(c.slots[i]))
			}
			continue
		}
		pending := reflect.ValueOf(c.slots[i]).Elem() // a []Pending[K, V]
		if pending.Len() == 0 {
			continue
		}
		m := reflect.MakeMapWithSize(field.Type(), pending.Len())
		for j := range pending.Len() {
			m.SetMapIndex(pending.Index(j).Field(0), pending.Index(j).Field(1))
		}
		field.Set(m)
	}
	for _, topic := range spec.Emits {
		field := ev.Field(f)
		f++
		for _, k := range c.kept {
			if k.topic == topic {
				field.Set(reflect.Append(field, reflect.ValueOf(k.v)))
			}
		}
	}
	if f < ev.NumField() && c.result.set {
		ev.Field(f).Set(reflect.ValueOf(c.result.p).Elem())
	}
	return nil
}
