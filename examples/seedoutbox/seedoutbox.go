// Package seedoutbox is the Transactional Outbox exactly as the seed chapter
// describes it, next to Theus's built-in outbox, so the two can be compared
// on the same engine.
//
// The seed's way (queue_* processes and SeedRelay): a process appends its
// message to domain.outbox_queue, which it must therefore read and write;
// a relay reads the queue from a snapshot, persists the batch, and clears
// the queue with CompareAndSwap(snapshot version). Two costs follow:
//
//   - Every pair of concurrent producers conflicts on the queue, even when
//     they change unrelated state, so one of them is re-run.
//   - The clearing CompareAndSwap fails whenever anything committed after the
//     relay's snapshot; the batch was persisted already, so the next round
//     persists it again: duplicates, and under steady load the queue may
//     never be cleared.
//
// The built-in way (emit_* processes and outbox.Relay): messages are not
// state. They are committed with the state change but kept apart, so
// producers touching different state never conflict, and the relay acks
// each delivered message without a CompareAndSwap on the state.
package seedoutbox

//go:generate go run github.com/theus-go/theus/cmd/theusgen generate

import (
	"context"
	"errors"

	"github.com/theus-go/theus/runtime/engine"
)

// Impl implements the generated Processes.
type Impl struct{}

func queue(in []OutboxMsg, u User) []OutboxMsg {
	return append(in, OutboxMsg{Topic: "USER_UPDATED", UserID: u.ID, Email: u.Email})
}

func (Impl) QueueAliceEmail(_ context.Context, in QueueAliceEmailIn, out *QueueAliceEmailOut) error {
	u := in.Alice().Clone()
	u.Email = in.Args.Email
	out.SetAlice(u)
	out.SetOutboxQueue(queue(in.OutboxQueue().Clone(), u))
	return nil
}

func (Impl) QueueBobEmail(_ context.Context, in QueueBobEmailIn, out *QueueBobEmailOut) error {
	u := in.Bob().Clone()
	u.Email = in.Args.Email
	out.SetBob(u)
	out.SetOutboxQueue(queue(in.OutboxQueue().Clone(), u))
	return nil
}

func (Impl) EmitAliceEmail(_ context.Context, in EmitAliceEmailIn, out *EmitAliceEmailOut) error {
	u := in.Alice().Clone()
	u.Email = in.Args.Email
	out.SetAlice(u)
	out.EmitUserUpdated(UserUpdated{ID: u.ID, Email: u.Email})
	return nil
}

func (Impl) EmitBobEmail(_ context.Context, in EmitBobEmailIn, out *EmitBobEmailOut) error {
	u := in.Bob().Clone()
	u.Email = in.Args.Email
	out.SetBob(u)
	out.EmitUserUpdated(UserUpdated{ID: u.ID, Email: u.Email})
	return nil
}

// SeedRelay is the seed's relay loop, one round at a time: read the queue
// from an immutable snapshot, persist it (insert stands for db.insert),
// then clear it with CompareAndSwap on the snapshot's version.
type SeedRelay struct {
	Engine *Engine
	Insert func(batch []OutboxMsg) error
}

// RoundResult tells what one round did.
type RoundResult struct {
	Persisted int  // messages handed to Insert
	Cleared   bool // whether the CompareAndSwap that clears the queue won
}

// Round runs one relay round.
func (r SeedRelay) Round(ctx context.Context) (RoundResult, error) {
	// 1. Read immutable state.
	snap := r.Engine.Snapshot()
	buffer := snap.OutboxQueue().Clone()
	if len(buffer) == 0 {
		return RoundResult{}, nil
	}
	// 2. Persist (side effect).
	if err := r.Insert(buffer); err != nil {
		return RoundResult{}, err
	}
	// 3. Atomic clear (CAS): reset the queue to acknowledge processing.
	var p Patch
	p.SetOutboxQueue(nil)
	_, err := r.Engine.CompareAndSwap(ctx, snap.Version(), p)
	if errors.Is(err, engine.ErrVersionMismatch) {
		// Something committed since the snapshot: the queue now holds more
		// than was persisted, so it cannot be cleared. The next round will
		// persist this batch again.
		return RoundResult{Persisted: len(buffer)}, nil
	}
	if err != nil {
		return RoundResult{}, err
	}
	return RoundResult{Persisted: len(buffer), Cleared: true}, nil
}
