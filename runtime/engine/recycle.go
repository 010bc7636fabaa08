package engine

import (
	"sync/atomic"

	"github.com/theus-go/theus/runtime/internal/recyclable"
)

// Recycling snapshots.
//
// Every commit publishes a new snapshot: a copy of the state's top-level
// struct with the commit's writes applied, which no one may see change.
// With an in-memory store that allocation and the collections it causes
// are most of what a commit costs beyond running the process, so such an
// engine reuses the memory of snapshots no one can see any more, and a
// commit allocates nothing of its own.
//
// A snapshot can be seen by the calls running on it and by the callers of
// Engine.Snapshot. Each of them takes a reference (acquire); a call drops
// it when it returns (release), a Snapshot caller never does, so the
// snapshots handed out stay as they are for good. The commit that replaces
// a snapshot retires it; the last of retirement and releases frees it into
// a free list or a pool, whence a later commit takes it. A freed snapshot
// stays retired until a commit publishes it again, so a call that loaded
// it from Engine.published before it was retired cannot take a reference
// in between: acquire only succeeds on a snapshot that is published, is
// about to be (its commit is durable), or was until its replacement's
// commit, which has not retired it yet; never on one being refilled.
//
// Only the memory store qualifies (see runtime/internal/recyclable): a
// store may keep Record.State, and a durable store's commits wait for the
// store with the engine's lock released, which this scheme does not cover.

// retired marks, in snapshot.refs, a snapshot that a later one replaced.
const retired = 1 << 63

// recycles reports whether an engine on st may recycle its snapshots.
func recycles(st Store) bool {
	r, ok := st.(recyclable.Store)
	if !ok {
		return false
	}
	// The scheme needs the in-memory commit path: only there does a
	// commit publish its snapshot through publish, which makes it
	// acquirable.
	if _, ok := st.(InMemory); !ok {
		return false
	}
	return r.ForgetsReplacedStates(recyclable.Token{}) == any(st)
}

// acquire returns the snapshot at p with a reference taken on it, which
// the caller drops with release (or never, for Snapshot). It reads
// nothing of the snapshot before the reference is taken: the snapshot
// may have been replaced and refilled since p held it, but a reference
// taken is one on what the snapshot holds now.
func (e *core) acquire(p *atomic.Pointer[snapshot]) *snapshot {
	for {
		s := p.Load()
		if !e.recycle {
			return s
		}
		w := s.refs.Load()
		if w&retired == 0 && s.refs.CompareAndSwap(w, w+1) {
			return s
		}
		// Replaced since p.Load: p holds a newer one.
	}
}

// release drops a reference acquire took. Outside e.mu, a snapshot it
// frees goes to the pool.
func (e *core) release(s *snapshot) {
	if e.recycle && s.refs.Add(^uint64(0)) == retired {
		e.pool(s)
	}
}

// pool puts a freed snapshot in the pool, cleared, so that the pool keeps
// no old values alive.
func (e *core) pool(s *snapshot) {
	e.ops.zero(s.state)
	e.snaps.Put(s)
}

// maxFreed bounds Engine.freed. The snapshots there are not cleared,
// since the next commit overwrites one: an idle engine keeps the
// top-level values of at most this many replaced versions alive.
const maxFreed = 4

// newSnapshot returns room for the next snapshot: a freed one, or a new
// one that, in a recycling engine, starts retired too, until published
// (see publish). e.mu is held.
func (e *core) newSnapshot() *snapshot {
	if !e.recycle {
		return e.ops.newSnap()
	}
	if n := len(e.freed); n > 0 {
		s := e.freed[n-1]
		e.freed[n-1] = nil
		e.freed = e.freed[:n-1]
		return s
	}
	if s, _ := e.snaps.Get().(*snapshot); s != nil {
		return s
	}
	s := e.ops.newSnap()
	s.refs.Store(retired)
	return s
}

// discard gives back next, a snapshot that newSnapshot returned and that
// will not be published (a commit that broke an invariant). e.mu is held.
func (e *core) discard(next *snapshot) {
	if !e.recycle {
		return
	}
	if len(e.freed) < maxFreed {
		e.freed = append(e.freed, next)
	} else {
		e.pool(next)
	}
}

// publish makes next, the snapshot of a durable commit, the published one
// and retires the one it replaces, which is often the one the committing
// call ran on and holds: held, whose reference publish then drops in the
// same step, and reports it. An in-memory engine only; e.mu is held.
func (e *core) publish(next, held *snapshot) (released bool) {
	old := e.published.Load()
	if !e.recycle {
		e.published.Store(next)
		return false
	}
	next.refs.Store(0)
	e.published.Store(next)
	d := uint64(retired)
	if old == held {
		d, released = retired-1, true
	}
	if old.refs.Add(d) == retired { // no call holds it
		if len(e.freed) < maxFreed {
			e.freed = append(e.freed, old)
		} else {
			e.pool(old)
		}
	}
	return released
}
