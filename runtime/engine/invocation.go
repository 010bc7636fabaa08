package engine

import (
	"cmp"
	"fmt"
)

// What a call of a generated process needs besides the process's own
// arguments and outputs is the same for every process, and lives here
// rather than in each generated file. Generated code declares, per
// process, a Frame (frame.go): a struct that holds the call's arguments
// and outputs, with the two methods that depend on the process, Run and
// Apply; FrameCall pairs it with an Invocation, and the Engine method
// takes one from the process's pool (Take), hands it to Exec and gets it
// back.
//
// None of this is generic over the process: a generic type instantiated
// once per process costs the compiler about as much as the code it
// replaces, for every process of a contract.

// Invocation is the part of a generated call that is the same for every
// process: the Tx its runs record their effects in, and the Out handle of
// each run with the room for the message ID of its receipt. Calls are
// pooled, so an Invocation serves many calls; an Out serves one run.
type Invocation struct {
	tx Tx
	// Keep is set for a RunX run: emitters then keep a copy of each payload
	// for the run's effects.
	Keep bool
	gen  uint64
	call any // what Start was given, for Out.Live
	cur  *runSlot
	runs []runSlot
}

// runSlot is what one run of a call uses once: its Out, and room for the
// message ID of the receipt of the run's commit (see Call.ReceiptID).
type runSlot struct {
	out Out
	id  [1]string
}

// runBatch is how many runs a call allocates at a time: a commit on the
// memory store then allocates a sixteenth of a batch (512 bytes) and its
// share of the slab its payloads and IDs are cut from, nothing else.
const runBatch = 16

// Tx returns the call's effect collector (Call.Tx).
func (c *Invocation) Tx() *Tx { return &c.tx }

// ReceiptID implements Call.ReceiptID with the room of the last run.
func (c *Invocation) ReceiptID() *[1]string {
	if c.cur == nil {
		return nil
	}
	return &c.cur.id
}

// Start starts a run of call, the generated struct that embeds c, and
// returns the run's Out handle, which the previous run's stops being: Live
// returns call until the next Start or Finish. A handle is never handed
// out twice, so that one kept past its run panics instead of writing into
// a later run; handles come from batches of runBatch (a RunX run, which is
// alone, takes a batch of one).
//
// Start and Finish are functions, not methods of Invocation: a method
// would be promoted to every generated call type, and the compiler would
// write a wrapper of it for each process.
func Start(c *Invocation, call any) *Out {
	c.gen++
	c.call = call
	if len(c.runs) == 0 {
		n := runBatch
		if c.Keep {
			n = 1
		}
		c.runs = make([]runSlot, n)
	}
	c.cur, c.runs = &c.runs[0], c.runs[1:]
	c.cur.out = Out{c: c, gen: c.gen}
	return &c.cur.out
}

// Finish ends the call of c: the Out of its last run becomes stale, and c
// forgets the call, ready for the pool.
func Finish(c *Invocation) {
	c.gen++
	c.call, c.cur = nil, nil
}

// Out is what the Out type of a generated process is made of (type
// UpdateUserEmailOut engine.Out): a handle on one run of a call, which the
// process writes its outputs and messages through.
type Out struct {
	c   *Invocation
	gen uint64
}

// Live returns the call whose run o belongs to, as Start was given it. It
// panics once the run is over: an Out is valid only during its call.
func (o *Out) Live() any {
	if o.c == nil || o.c.gen != o.gen {
		panic("theus: an Out used after its call returned")
	}
	return o.c.call
}

// Set is Live for a setter of the output at index path: it records that
// the run writes path, unless path is negative (SetResult, an emitter),
// and returns the frame of the run.
func (o *Out) Set(path int) any {
	f := o.Live()
	if path >= 0 {
		o.c.tx.Write(path)
	}
	return f
}

// Tx returns the effect collector of o's call.
func (o *Out) Tx() *Tx { return &o.c.tx }

// Keep reports whether o's run is a RunX run, whose emitters keep a copy
// of each payload for its effects.
func (o *Out) Keep() bool { return o.c.Keep }

// Writer returns the writer of the collection at index path for the run
// of o, which must be live: writes go to pending, and the writer goes
// stale with o. clone deep-copies a value (nil when values hold no
// references).
func Writer[K cmp.Ordered, V any](o *Out, path int, pending *[]Pending[K, V], clone func(*V) V) CollectionWriter[K, V] {
	return NewCollectionWriter(&o.c.tx, path, pending, clone, &o.c.gen, o.gen)
}

// Written returns p, the output of path in a RunX's call, if the run
// recorded in tx wrote path, and nil otherwise: the field of the RunX's
// effects for an output. The call of a RunX is its own, so its effects
// may point into it.
//
// Like CheckOutput it takes a pointer type, so that the compiler makes one
// for every type of output.
func Written[P comparable](tx *Tx, path int, p P) P {
	if !tx.Written(path) {
		var zero P
		return zero
	}
	return p
}

// CheckOutput fails the attempt recorded in tx if the run wrote path (the
// contract's name) and its value v cannot be encoded as a durable store
// will encode it (see CheckValue; valid is nil for the types that JSON
// always encodes).
func CheckOutput[P any](tx *Tx, path int, name string, v P, valid func(P) error) {
	if (tx.codec != nil || valid != nil) && tx.Written(path) {
		if err := CheckValue(tx.codec, name, v, valid); err != nil {
			tx.Fail(err)
		}
	}
}

// EmitValue emits v on topic under key, encoded with the engine's codec,
// which must be set (Codec); a value the codec refuses fails the attempt.
func (t *Tx) EmitValue(topic, key string, v any) {
	b, err := t.codec.Marshal(v)
	if err != nil {
		t.Fail(fmt.Errorf("theus: encode %s: %w", topic, err))
		return
	}
	t.Emit(topic, key, b)
}

// EmitEncoded is EmitScratch for a payload that a generated encoder
// appended to Scratch and that returned err: an error fails the attempt.
func (t *Tx) EmitEncoded(topic, key string, payload []byte, err error) {
	if err != nil {
		t.Fail(fmt.Errorf("theus: encode %s: %w", topic, err))
		return
	}
	t.EmitScratch(topic, key, payload)
}
