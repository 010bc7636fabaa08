package engine

import (
	"context"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
)

// Store persists commits. A store commits state changes and messages in one
// transaction and recovers both after a restart. The stores under
// runtime/store implement it; most users only pass one to WithStore.
type Store interface {
	outbox.Store
	// Recover returns what the store holds, or nil when it is empty. It is
	// called once, by the engine's constructor, with the codec of the
	// engine's state: a durable store keeps it to encode the state values
	// of later commits and decodes the recovered state with it.
	Recover(ctx context.Context, codec StateCodec) (*Recovered, error)
	// Commit persists recs, which hold consecutive versions in ascending
	// order, atomically and durably: when it returns nil every record is
	// durable; when it returns an error none is visible, now or after a
	// restart. The engine never calls Commit concurrently with itself.
	//
	// The records, and the slices they hold, are reused by the engine once
	// Commit returns: a store copies what it keeps (the values inside, such
	// as payloads, IDs and State, are immutable and may be kept).
	Commit(ctx context.Context, recs []*Record) error
}

// InMemory is implemented by stores whose Commit does no I/O and returns at
// once (runtime/store/memory). The engine calls their Commit without
// releasing its own lock, which saves a lock round trip per commit; group
// commit has no sync to share with them. A store that may block must not
// implement it: every caller would wait on it.
type InMemory interface {
	Store
	// CommitsInMemory marks the store; it is never called.
	CommitsInMemory()
}

// Incarnated is implemented by stores that name each history they hold
// with an incarnation, which the engine puts in every message ID (see
// outbox.Message.ID): a store starts a new one when it is created and when
// it is restored from a backup, so that the versions and KeySeqs it hands
// out again after a restore make IDs, and Dedup marks, that no consumer
// has seen. The engine asks once, after Recover. A store that does not
// implement it has incarnation 0: its IDs carry none, and a restored copy
// of it hands out IDs that consumers may already have seen.
type Incarnated interface {
	Store
	Incarnation() uint64
}

// Record is one commit as the engine hands it to the store.
type Record struct {
	Version uint64
	// Process is the name of the process that committed, "" for
	// CompareAndSwap.
	Process string
	// Time is when the commit was sequenced, by the engine's clock (the
	// CreatedAt of its messages).
	Time time.Time
	// Writes lists the state paths the commit wrote.
	Writes []Write
	// Messages are the commit's outbox messages, in emit order, with every
	// field assigned.
	Messages []outbox.Message
	// State is the whole state after this commit (a *S of the generated
	// State type). It is immutable: stores read it, never modify it.
	State any
}

// Write is one state path written by a commit: a field, or one entry of a
// collection (Key set; Deleted when the entry was removed).
type Write struct {
	Path    string
	Key     string
	Deleted bool
}

// Recovered is the content of a non-empty store.
type Recovered struct {
	// Version is the last durable version.
	Version uint64
	// State is the state at Version, as Record.State.
	State any
	// KeySeqs holds the last KeySeq assigned per (topic, key).
	KeySeqs map[outbox.TopicKey]uint64
	// Warnings are what the engine logs about the recovery, such as the
	// compatible changes of the contract that drop stored values
	// (Evolution.Warnings).
	Warnings []string
}
