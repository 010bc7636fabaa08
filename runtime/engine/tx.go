package engine

import (
	"context"
	"slices"
	"unsafe"

	"github.com/theus-go/theus/runtime/outbox"
)

// Tx collects the effects of one call of a process: the state paths its
// outputs wrote and the messages it emitted. Generated code embeds a Tx in
// each call and drives it; the engine resets it before every attempt, so
// only the attempt that commits leaves effects. The zero Tx is ready to use
// (generated RunXxx functions use one without an engine).
type Tx struct {
	codec Codec
	err   error
	// warnings are the rules with on_fail: warn that the attempt broke.
	warnings []RuleError

	writes []int
	msgs   []outbox.Message
	// Collection bookkeeping: entries read, collections read whole, and
	// entries written (for Record.Writes and deleted-key tracking).
	reads    []collKey
	readAlls []int
	keys     []collWrite
	// sources caches the call's collection views (see CollectionView).
	sources []any
	ids     []string
	wrecs   []Write
	// slab is what generated code encodes payloads into (see Scratch) and
	// message IDs are cut from, kept across calls. Its bytes up to len
	// belong to payloads and IDs already given out, which are immutable: it
	// is only ever appended to.
	slab []byte

	// Inline buffers: the common call writes a path or two and emits one
	// message, and should not allocate for that. They are small on purpose:
	// every byte here is allocated (and scanned by the GC) once per call.
	writesBuf [2]int
	msgsBuf   [1]outbox.Message
	wrecsBuf  [2]Write

	rec    Record
	status txStatus
	// What a shared store's rebase needs of a sequenced commit
	// (remote.go): its process (nil for CompareAndSwap), the version of
	// the snapshot it ran on, and its Call or Change, to apply its
	// outputs again.
	proc    *process
	snapv   uint64
	applier applier
	serr    error
	// wake carries the leader's signal to a caller sleeping in group
	// commit (sleeping set); it is made once and kept across reuses.
	wake     chan struct{}
	sleeping bool
}

// collKey is an entry of a collection: its path and its key's text.
type collKey struct {
	path int
	key  string
}

type collWrite struct {
	collKey
	del bool
}

type txStatus uint8

const (
	txRunning txStatus = iota
	txPending          // sequenced, waiting for the store
	txDurable
	txFailed
	txConflict // dropped when rebased onto other engines' commits (remote.go)
)

// Write records that the call wrote the state path with index path (an
// index into Schema.Paths).
func (t *Tx) Write(path int) {
	if !slices.Contains(t.writes, path) {
		t.writes = append(t.writes, path)
	}
}

// Emit appends a message whose payload it keeps as given; the engine
// assigns its ID, KeySeq, Version and CreatedAt at commit.
func (t *Tx) Emit(topic, key string, payload []byte) {
	t.msgs = append(t.msgs, outbox.Message{Topic: topic, Key: key, Payload: payload})
}

// Scratch returns an empty buffer to encode a payload into, for
// EmitScratch: the free end of the Tx's slab.
func (t *Tx) Scratch() []byte {
	t.room(minScratch)
	return t.slab[len(t.slab):]
}

// Payloads and IDs are cut from slabs of slabSize bytes, each shared by the
// payloads and IDs that fit (about seventy commits of the quickstart's), so
// that emitting allocates once per slab rather than once per message. A
// slab with less than minScratch bytes left takes no new payload. A payload
// that outgrows the slab is in the array its encoder's append allocated,
// which becomes the slab if it is at most maxSlab bytes.
const (
	slabSize   = 4 << 10
	minScratch = 256
	maxSlab    = 64 << 10
)

// room makes sure the slab has n bytes free.
func (t *Tx) room(n int) {
	if cap(t.slab)-len(t.slab) < n {
		t.slab = make([]byte, 0, slabSize)
	}
}

// EmitScratch is Emit for a payload appended to what Scratch returned. The
// payload stays where it was encoded, and its bytes are never written
// again: the next Scratch starts after it.
func (t *Tx) EmitScratch(topic, key string, payload []byte) {
	n, end := len(t.slab), len(payload)
	switch {
	case end > 0 && n < cap(t.slab) && &t.slab[:n+1][n] == &payload[0]:
		t.slab = t.slab[:n+end] // encoded in place
	case cap(payload) <= maxSlab:
		t.slab = payload // append outgrew the slab: its array is the next one
	}
	t.msgs = append(t.msgs, outbox.Message{Topic: topic, Key: key, Payload: payload[:end:end]})
}

// newID returns the ID of the index-th message of version v of store
// incarnation inc, cut from the slab: an ID kept by a receipt or by a
// message waiting in the outbox keeps a slab alive, never a snapshot.
func (t *Tx) newID(inc, v uint64, index int) string {
	t.room(outbox.MaxIDLen)
	n := len(t.slab)
	t.slab = outbox.AppendMessageID(t.slab, inc, v, index)
	return unsafe.String(&t.slab[n], len(t.slab)-n)
}

// setHeaders gives the attempt's messages the headers f returns for ctx
// (see WithHeaders); f is not called when there are none.
func (t *Tx) setHeaders(ctx context.Context, f func(context.Context) map[string]string) {
	if len(t.msgs) == 0 {
		return
	}
	h := f(ctx)
	if len(h) == 0 {
		return
	}
	for i := range t.msgs {
		t.msgs[i].Headers = h
	}
}

// Fail makes the attempt fail with err (the first error wins), for errors
// found while recording effects, such as a payload the codec refused.
func (t *Tx) Fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

// Codec returns the engine's payload codec, nil when generated code should
// use its built-in JSON encoders.
func (t *Tx) Codec() Codec { return t.codec }

// Messages returns the messages emitted so far (before commit, without IDs).
func (t *Tx) Messages() []outbox.Message { return t.msgs }

// Written reports whether the path with index path was written.
func (t *Tx) Written(path int) bool { return slices.Contains(t.writes, path) }

func (t *Tx) readKey(path int, key string) {
	t.reads = append(t.reads, collKey{path: path, key: key})
}

func (t *Tx) readAll(path int) {
	if !slices.Contains(t.readAlls, path) {
		t.readAlls = append(t.readAlls, path)
	}
}

// WriteKey records that the call wrote the entry key of the collection at
// index path (deleted it, when del). CollectionWriter calls it; generated
// Patch code calls it for PutX and DeleteX.
func (t *Tx) WriteKey(path int, key any, del bool) { t.writeKey(path, keyString(key), del) }

func (t *Tx) writeKey(path int, key string, del bool) {
	t.Write(path)
	t.keys = append(t.keys, collWrite{collKey{path: path, key: key}, del})
}

func (t *Tx) reset(codec Codec) {
	clear(t.msgs) // drop payload references of a discarded attempt
	clear(t.reads)
	clear(t.keys)
	t.reads, t.readAlls, t.keys = t.reads[:0], t.readAlls[:0], t.keys[:0]
	t.codec = codec
	t.err = nil
	clear(t.warnings)
	t.warnings = t.warnings[:0]
	t.writes = t.writesBuf[:0]
	t.msgs = t.msgsBuf[:0]
	t.ids = nil
	t.wrecs = t.wrecsBuf[:0]
	t.status = txRunning
	t.serr = nil
}
