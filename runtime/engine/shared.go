package engine

import (
	"context"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
)

// SharedStore is implemented by stores that several engines share, in
// different processes and machines (runtime/store/postgres). Every engine
// on such a store sees one history (DESIGN.md, invariants 9 to 11):
// versions are dense across all of them, KeySeq is dense per (topic, key)
// across all of them, and an engine validates each of its commits against
// every commit ordered before it, the other engines' included, before the
// commit is numbered.
//
// The engine calls CommitShared instead of Store.Commit. It learns the
// other engines' commits from CommitShared's rebase callback, when it
// commits, and from Follow, when it is idle.
type SharedStore interface {
	Store
	// CommitShared persists recs as Commit does, with other engines
	// committing to the same store. The engine numbered recs after the
	// last version it knows, recs[0].Version-1. With the other engines'
	// commits held off (for PostgreSQL: the head row locked in the
	// transaction that writes recs), CommitShared reads the commits made
	// after that version; if there are any, it calls rebase with them, in
	// version order, and written unset, and writes the records rebase
	// returns instead: the engine has applied the others' commits, dropped
	// the records that conflict with them (their callers run again) and
	// numbered the rest after the last of them. rebase may return no
	// record; it is called at most once per CommitShared. An error from
	// rebase fails the commit with nothing written.
	//
	// fp, when not nil, is what recs read and wrote (valid during the
	// call only). If none of the others' commits overlaps it (see
	// Footprint), the store may instead write recs as they are, numbered
	// after the others' commits: versions moved by the number of those
	// commits, and the versions in their message IDs and messages with
	// them; KeySeqs and values unchanged. It then calls rebase(others,
	// true) once that write is durable: the engine applies the others'
	// commits and numbers recs after them exactly so, dropping none, and
	// returns them.
	//
	// When CommitShared cannot tell whether its transaction committed (the
	// connection broke during COMMIT), it finds out before it returns
	// (DESIGN.md, invariant 11): it returns nil only if every record
	// returned to it is durable, and an error only if none is.
	CommitShared(ctx context.Context, recs []*Record, fp *Footprint, rebase func(others []Remote, written bool) ([]*Record, error)) error
	// Follow calls apply with the commits of other engines after version
	// from, in version order, soon after they are durable (PostgreSQL:
	// LISTEN/NOTIFY, polling as a backstop), until ctx ends, when it
	// returns nil; it retries store errors itself. apply returns the last
	// version the engine has applied, which may be below what it was
	// given (it was committing, and its own commit applies them): Follow
	// goes on after that version. apply(nil) only returns that version
	// (a store that does not tell an engine of its own commits learns
	// how far they reach). The engine runs Follow in a goroutine of
	// its own, so that an idle engine catches up within milliseconds.
	Follow(ctx context.Context, from uint64, apply func(others []Remote) (applied uint64)) error
	// Head returns the last durable version of the store, whichever
	// engine committed it (for Engine.Sync).
	Head(ctx context.Context) (uint64, error)
}

// Footprint is what a group of commits read and wrote, in the terms of
// Record.Writes: a commit of another engine overlaps it when one of its
// Writes has a Path in Paths or below one (a Path "domain.user" covers
// "domain.user.email" and every entry of a collection "domain.user"), or
// a Path and Key in Entries, or when it assigned a KeySeq to one of Keys.
// A group that no commit ordered before it overlaps reads the same values
// and leaves the same values, messages and KeySeqs whether it is ordered
// before or after those commits, and its invariants hold or not alike:
// they check only what a commit wrote (a collection checked whole counts
// as read whole).
type Footprint struct {
	// All is set when the group counts as reading everything (a
	// CompareAndSwap, or any commit under WithStrictCAS): every commit
	// overlaps it.
	All bool
	// Paths are the top-level fields the group read or wrote, and the
	// collections it read whole (or wrote, and an invariant checks whole).
	Paths []string
	// Entries are the collection entries the group read or wrote (Deleted
	// is unset).
	Entries []Write
	// Keys are the (topic, key) of the group's messages.
	Keys []outbox.TopicKey
}

// Remote is a commit of another engine, as a SharedStore hands it over.
type Remote struct {
	// Version of the commit.
	Version uint64
	// Process that committed; "" for CompareAndSwap.
	Process string
	// Time is when the commit was made (Record.Time, or the database's
	// clock).
	Time time.Time
	// Writes lists what the commit wrote, as its Record did: the engine
	// checks its own commits' reads against them.
	Writes []Write
	// Values are the values the commit left, encoded by the StateCodec the
	// store was given in Recover: the whole top-level field of every plain
	// field written (for a write of domain.user.email, domain.user), and
	// every collection entry written or deleted.
	Values []RemoteValue
	// KeySeqs holds the last KeySeq the commit assigned per (topic, key).
	KeySeqs []KeySeq
	// MessageIDs lists the commit's messages in emit order, for Watch; a
	// store may leave it nil, and Watch then gives none for the commit.
	MessageIDs []string
}

// RemoteValue is one value a Remote commit left.
type RemoteValue struct {
	// Field is the index of the top-level field in StateCodec.Fields.
	Field int
	// Key is the entry of a collection field; "" for a plain field.
	Key string
	// Data is the encoded value; nil for a deleted entry.
	Data []byte
}

// KeySeq is the last KeySeq of a (topic, key).
type KeySeq struct {
	outbox.TopicKey
	Seq uint64
}
