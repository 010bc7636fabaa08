package engine

import (
	"context"
	"slices"

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
	// idRooms holds, per message, where the engine writes its ID at
	// commit: the bytes EmitScratch allocated after the payload, or nil
	// for a message given with Emit, whose ID is allocated then.
	idRooms []*[outbox.IDLen]byte
	// scratch is the buffer generated code encodes payloads into (see
	// Scratch); it is kept across calls.
	scratch []byte

	// Inline buffers: the common call writes a path or two and emits one
	// message, and should not allocate for that. They are small on purpose:
	// every byte here is allocated (and scanned by the GC) once per call.
	writesBuf  [2]int
	msgsBuf    [1]outbox.Message
	wrecsBuf   [2]Write
	idRoomsBuf [1]*[outbox.IDLen]byte

	rec    Record
	status txStatus
	serr   error
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
	t.idRooms = append(t.idRooms, nil)
}

// Scratch returns an empty buffer to encode a payload into, for
// EmitScratch. It is the Tx's own, reused from call to call.
func (t *Tx) Scratch() []byte { return t.scratch[:0] }

// maxScratch bounds the capacity of the buffer a Tx keeps for Scratch, so
// that one large payload does not stay allocated in a pooled call.
const maxScratch = 64 << 10

// EmitScratch is Emit for a payload appended to what Scratch returned. The
// message gets a copy, allocated with room for its ID: one allocation per
// message, holding no pointers, which is all a message waiting in the
// outbox keeps alive. The buffer becomes the next Scratch.
func (t *Tx) EmitScratch(topic, key string, payload []byte) {
	n := len(payload)
	b := make([]byte, n+outbox.IDLen)
	copy(b, payload)
	t.msgs = append(t.msgs, outbox.Message{Topic: topic, Key: key, Payload: b[:n:n]})
	t.idRooms = append(t.idRooms, (*[outbox.IDLen]byte)(b[n:]))
	if cap(payload) <= maxScratch {
		t.scratch = payload[:0]
	}
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
	clear(t.idRooms)
	t.idRooms = t.idRoomsBuf[:0]
	t.ids = nil
	t.wrecs = t.wrecsBuf[:0]
	t.status = txRunning
	t.serr = nil
}
