package engine

import (
	"context"
	"reflect"
	"sync"
)

// Frame is the part of a call of a generated process that depends on the
// process: its arguments, what its runs set and emitted, and the two
// things only it knows, how to run the process and how to apply its
// outputs. Generated code declares a struct per process whose pointer is
// a Frame, and names its type in ProcessSpec.Frame; everything else a
// call needs (its Tx, the Out handles of its runs, pooling, the receipt)
// is FrameCall's, the same for every process.
//
// Nothing here is generic over the process: a type or function
// instantiated once per process would cost the compiler about as much as
// the code it replaces, for every process of a contract.
type Frame[S any] interface {
	// Run resets what the frame holds of a previous run and runs the
	// process on s, which it must not modify, with out, the Out handle of
	// this run (Out.Frame returns the frame).
	Run(ctx context.Context, s *S, out *Out) error
	// Apply writes the outputs of the last run, whose effects tx
	// recorded, into s, a copy of the state that the commit publishes as
	// version v.
	Apply(s *S, tx *Tx, v uint64)
}

// FrameCall is a call of a generated process: an Invocation and the
// process's Frame. Calls are pooled per process (Take).
type FrameCall[S any] struct {
	Invocation
	f    Frame[S]
	e    *Engine[S]
	proc int
}

// Run implements Call.
func (c *FrameCall[S]) Run(ctx context.Context, s *S) error {
	return c.f.Run(ctx, s, Start(&c.Invocation, c.f))
}

// Apply implements Call.
func (c *FrameCall[S]) Apply(s *S, v uint64) { c.f.Apply(s, &c.tx, v) }

// framePools returns a pool of calls per process, for the processes whose
// spec names a frame type.
func framePools[S any](e *Engine[S], specs []ProcessSpec) []sync.Pool {
	pools := make([]sync.Pool, len(specs))
	for i, p := range specs {
		if p.Frame == nil {
			continue
		}
		t := reflect.TypeOf(p.Frame).Elem()
		pools[i].New = func() any {
			return &FrameCall[S]{f: reflect.New(t).Interface().(Frame[S]), e: e, proc: i}
		}
	}
	return pools
}

// Take takes a call of process proc of e from its pool. Its Frame is of
// the type that the process's ProcessSpec names; the caller fills the
// frame's arguments and passes the call to Exec or ExecResult, which
// return it to the pool. (Take is not generic over the frame's type: an
// instantiation per process would cost the compiler a function and a
// dictionary per process; the caller asserts the type instead.)
func Take[S any](e *Engine[S], proc int) *FrameCall[S] {
	return e.frames[proc].Get().(*FrameCall[S])
}

// Frame returns the frame of c.
func (c *FrameCall[S]) Frame() Frame[S] { return c.f }

// Exec runs the call (Engine.Exec) and returns it to its pool.
func (c *FrameCall[S]) Exec(ctx context.Context) (Receipt, error) {
	r, err := c.e.Exec(ctx, c.proc, c)
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

// ExecResult is Exec for a process that declares a result, which its
// frame holds in *result.
func ExecResult[S, R any](ctx context.Context, c *FrameCall[S], result *R) (ReceiptOf[R], error) {
	r, err := c.e.Exec(ctx, c.proc, c)
	res := *result
	c.release()
	if err != nil {
		return ReceiptOf[R]{}, err
	}
	return ReceiptOf[R]{Version: r.Version, MessageIDs: r.MessageIDs, Result: res}, nil
}

// release returns c to its pool. Its frame keeps the call's arguments and
// outputs until the next call resets it (Frame.Run) or the pool drops it,
// which the garbage collector does with idle ones: zeroing it here would
// cost every call a reflective clear of the frame.
func (c *FrameCall[S]) release() {
	Finish(&c.Invocation)
	c.e.frames[c.proc].Put(c)
}

// RunFrame runs the process name, which declares the domain errors
// declared, with frame f once on s, with no engine and nothing committed
// (see Run), and returns the Tx that recorded its effects: what generated
// RunXxx functions do. Emitters keep a copy of each payload (Out.Keep).
func RunFrame[S any](ctx context.Context, name string, f Frame[S], s *S, declared ...error) (*Tx, error) {
	c := &FrameCall[S]{Invocation: Invocation{Keep: true}, f: f}
	err := runOnce(ctx, name, declared, nil, c, s)
	Finish(&c.Invocation)
	return &c.tx, err
}
