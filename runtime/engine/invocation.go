package engine

import (
	"cmp"
	"fmt"
)

// What a call of a generated process needs besides the process's own
// arguments and outputs is the same for every process, and lives here
// rather than in each generated file. Generated code declares, per
// process, its type of arguments and two functions (frame.go): Run, which
// calls the application, and Rules; FrameCall holds the arguments with an
// Invocation and the holders of the process's outputs (Output), and the
// Engine method takes one from the process's pool (Take), hands it to Exec
// and gets it back.
//
// None of this is generic over the process: a generic type instantiated
// once per process costs the compiler about as much as the code it
// replaces, for every process of a contract. What is generic (SetOutput,
// OutputWriter, SetResult, the effects of RunX) is generic over the type
// of an output, which processes share.

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
	// The outputs of the process: their paths (ProcessSpec.Outputs), the
	// holders of the values its runs set (see Output), the result, and in
	// a RunX run the payloads emitted.
	paths  []int
	slots  []any
	result struct {
		p   any // a *R, allocated by the first SetResult
		set bool
	}
	kept []keptMsg
}

// keptMsg is a payload that a RunX run emitted on topic.
type keptMsg struct {
	topic string
	v     any
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

// Tx returns the effect collector of o's call. Like Live it panics once
// the run is over.
func (o *Out) Tx() *Tx {
	o.Live()
	return &o.c.tx
}

// Keep reports whether o's run is a RunX run, whose emitters keep a copy
// of each payload for its effects (Out.Kept).
func (o *Out) Keep() bool { return o.c.Keep }

// Kept keeps v, a copy of a payload that o's RunX run emitted on topic,
// for its effects (Emitted).
func (o *Out) Kept(topic string, v any) { o.c.kept = append(o.c.kept, keptMsg{topic, v}) }

// SetOutput sets output i (ProcessSpec.Outputs[i]) of o's process, of
// type T, to v for o's run, which must be live: the setter of a generated
// Out.
func SetOutput[T any](o *Out, i int, v T) {
	o.Live()
	o.c.tx.Write(o.c.paths[i])
	*o.c.slots[i].(*T) = v
}

// OutputWriter returns the writer of output i (ProcessSpec.Outputs[i]) of
// o's process, a collection, for o's run, which must be live: writes are
// pending until the commit, and the writer goes stale with o. clone
// deep-copies a value (nil when values hold no references).
func OutputWriter[K cmp.Ordered, V any](o *Out, i int, clone func(*V) V) CollectionWriter[K, V] {
	o.Live()
	return NewCollectionWriter(&o.c.tx, o.c.paths[i], o.c.slots[i].(*[]Pending[K, V]), clone, &o.c.gen, o.gen)
}

// SetResult sets the result of o's run, which must be live, to v: what
// ExecResult returns in ReceiptOf.Result.
func SetResult[R any](o *Out, v R) {
	o.Live()
	r := &o.c.result
	p, _ := r.p.(*R)
	if p == nil {
		p = new(R)
		r.p = p
	}
	*p, r.set = v, true
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
