package engine

import (
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

	writes []int
	msgs   []outbox.Message
	ids    []string
	wrecs  []Write

	// Inline buffers: the common call writes a path or two and emits one
	// message, and should not allocate for that. They are small on purpose:
	// every byte here is allocated (and scanned by the GC) once per call.
	writesBuf [2]int
	msgsBuf   [1]outbox.Message
	wrecsBuf  [2]Write

	rec    Record
	status txStatus
	serr   error
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

// Emit appends a message; the engine assigns its ID, KeySeq, Version and
// CreatedAt at commit.
func (t *Tx) Emit(topic, key string, payload []byte) {
	t.msgs = append(t.msgs, outbox.Message{Topic: topic, Key: key, Payload: payload})
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

func (t *Tx) reset(codec Codec) {
	clear(t.msgs) // drop payload references of a discarded attempt
	t.codec = codec
	t.err = nil
	t.writes = t.writesBuf[:0]
	t.msgs = t.msgsBuf[:0]
	t.ids = nil
	t.wrecs = t.wrecsBuf[:0]
	t.status = txRunning
	t.serr = nil
}
