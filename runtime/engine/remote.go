package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
)

// Several engines on one SharedStore (PostgreSQL). Each engine commits as
// it does alone: it validates a commit against the commits it knows and
// numbers it after them. The store serialises the groups of all engines;
// when a group finds commits of other engines after the version it was
// numbered from, the engine rebases (rebase, under the store's lock): it
// applies the others' commits to its durable state, drops its own commits
// that read what they wrote (their callers run again, as after any
// conflict), and numbers the rest after them, re-applying their outputs.
// The history that results is serial: the others' commits, then the
// survivors in their order. An engine that commits nothing learns the
// others' commits from Follow (follow).

// errRebase marks a store's rebase callback error that is the engine's.
var errRebase = errors.New("theus: rebase")

// rebase is the callback of SharedStore.CommitShared, called while
// flushGroup has handed the group in e.flushTxs to the store and released
// e.mu. It applies others, rebases the group and the commits sequenced
// after it onto them, and returns the group's records that survive: all
// of them when the store has written them (written), having found that
// others overlap none of the group's footprint.
func (e *core) rebase(others []Remote, written bool) ([]*Record, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	base := e.published.Load().version
	if len(others) > 0 && others[len(others)-1].Version > base {
		// The KeySeqs as of the published state: the local commits'
		// are handed out again after the others'.
		e.unassignKeySeqs(slices.Concat(e.flushTxs, e.pending))
	}
	if err := e.applyRemotes(others); err != nil {
		return nil, err
	}
	e.rebaseLocal(base, written)
	recs := make([]*Record, len(e.flushTxs))
	for i, t := range e.flushTxs {
		recs[i] = &t.rec
	}
	return recs, nil
}

// applyRemotes applies the commits of other engines, in version order, to
// the published state, skipping those it has applied already. The commits
// this engine has sequenced and not made durable are left to rebaseLocal.
// e.mu is held.
func (e *core) applyRemotes(others []Remote) error {
	pub := e.published.Load()
	for len(others) > 0 && others[0].Version <= pub.version {
		others = others[1:]
	}
	if len(others) == 0 {
		return nil
	}
	if others[0].Version != pub.version+1 {
		return fmt.Errorf("%w: the store hands over version %d after version %d", errRebase, others[0].Version, pub.version)
	}
	next := e.ops.newSnap()
	next.version = pub.version
	e.ops.copy(next.state, pub.state)
	for _, r := range others {
		if r.Version != next.version+1 {
			return fmt.Errorf("%w: the store hands over version %d after version %d", errRebase, r.Version, next.version)
		}
		for _, rv := range r.Values {
			if err := e.sc.applyRemote(next.state, rv, r.Version); err != nil {
				return fmt.Errorf("%w: version %d: %v", errRebase, r.Version, err)
			}
		}
		for _, w := range r.Writes {
			e.noteRemoteWrite(w, r.Version)
		}
		e.noteRemote(&r)
		for _, ks := range r.KeySeqs {
			if p := e.keySeqs.of(ks.Topic, ks.Key); *p < ks.Seq {
				*p = ks.Seq
			}
		}
		next.version = r.Version
	}
	e.published.Store(next)
	if e.flushTxs == nil && len(e.pending) == 0 {
		e.head.Store(next)
	}
	e.settled()
	return nil
}

// noteRemoteWrite records that another engine's commit at version v wrote
// w. e.mu is held.
func (e *core) noteRemoteWrite(w Write, v uint64) {
	i, ok := e.pathIndex[w.Path]
	if !ok {
		// A path no process of this contract reads or writes: only its
		// top-level field can matter.
		if i, ok = e.pathIndex[topLevel(w.Path)]; !ok {
			return
		}
	}
	e.durableWrite[i] = max(e.durableWrite[i], v)
	e.lastWrite[i] = max(e.lastWrite[i], v) // for the calls running now
	if w.Deleted {
		e.deleted[collKey{path: i, key: w.Key}] = v
	}
}

// topLevel returns the top-level field of a state path: zone and field
// ("domain.user" of "domain.user.email").
func topLevel(path string) string {
	if i := strings.IndexByte(path, '.'); i >= 0 {
		if j := strings.IndexByte(path[i+1:], '.'); j >= 0 {
			return path[:i+1+j]
		}
	}
	return path
}

// rebaseLocal moves the commits this engine has sequenced and not made
// durable (the group with the store, e.flushTxs, and those sequenced
// after it, e.pending) onto the published state, after applyRemotes moved
// it on from version base, which they were sequenced after. A commit that read what a commit now ordered before it wrote
// without seeing it (another engine's, or one of this engine's that is
// dropped) is dropped: its caller gets ErrConflict and runs again. The
// others are numbered after the published version, in their order, and
// their outputs applied again. When keep is set, the store has written
// the group (e.flushTxs) after the others' commits, none of which overlaps
// its footprint: none of it is dropped. e.mu is held.
func (e *core) rebaseLocal(base uint64, keep bool) {
	pub := e.published.Load()
	local := slices.Concat(e.flushTxs, e.pending)
	if len(local) == 0 || pub.version == base {
		return
	}
	for _, s := range e.flushSnaps {
		s.failed.Store(true)
	}
	for _, s := range e.pendingSnaps {
		s.failed.Store(true)
	}
	copy(e.lastWrite, e.durableWrite)
	for i := range e.lastRead {
		e.lastRead[i] = min(e.lastRead[i], pub.version)
	}
	e.lastReadAll = min(e.lastReadAll, pub.version)

	// What a surviving commit must not have read: everything written after
	// its snapshot by a commit now ordered before it. Written here as the
	// versions of the published state (other engines' commits) and the
	// writes of the dropped local commits.
	var dropped []*Tx
	head := pub
	var flushTxs, pending []*Tx
	var flushSnaps, pendingSnaps []*snapshot
	nflush := len(e.flushTxs)
	for i, t := range local {
		check := !keep || i >= nflush
		if check && e.invalidated(t, dropped, base) {
			dropped = append(dropped, t)
			t.status, t.serr = txConflict, ErrConflict
			t.rec.State = nil
			continue // woken below: invalidated reads its reads and writes until the loop ends
		}
		next := e.newSnapshot()
		next.version = head.version + 1
		e.ops.copy(next.state, head.state)
		t.applier.applyTo(next.state, next.version)
		if check && e.invs != nil && e.breaksInvariant(t, next.state) {
			// Its invariants held on the state it was sequenced on, not
			// on this one: it runs again, and is checked again.
			dropped = append(dropped, t)
			t.status, t.serr = txConflict, ErrConflict
			t.rec.State = nil
			e.discard(next) // woken below, like the commits invalidated drops
			continue
		}
		e.resequence(t, next)
		head = next
		if i < nflush {
			flushTxs, flushSnaps = append(flushTxs, t), append(flushSnaps, next)
		} else {
			pending, pendingSnaps = append(pending, t), append(pendingSnaps, next)
		}
	}
	e.flushTxs, e.flushSnaps = flushTxs, flushSnaps
	e.pending, e.pendingSnaps = pending, pendingSnaps
	e.head.Store(head)
	// Only now: a woken caller resets its Tx for its next run.
	for _, t := range dropped {
		wake(t)
	}
}

// footprint returns the footprint of the group batch (see Footprint),
// built in e.fp: what invalidated checks of each commit, what it wrote,
// and the (topic, key) of its messages. e.mu is held.
func (e *core) footprint(batch []*Tx) *Footprint {
	fp := &e.fp
	fp.All, fp.Paths, fp.Entries, fp.Keys = false, fp.Paths[:0], fp.Entries[:0], fp.Keys[:0]
	// A collection's path covers its entries; any other path its
	// top-level field, which the store writes whole.
	path := func(q int) {
		p := e.paths[q]
		if e.colls[q] == nil {
			p = topLevel(p)
		}
		if !slices.Contains(fp.Paths, p) {
			fp.Paths = append(fp.Paths, p)
		}
	}
	for _, t := range batch {
		if t.proc == nil || e.opts.strictCAS {
			fp.All = true
			return fp
		}
		for _, q := range t.proc.conflicts {
			path(q)
		}
		for _, q := range t.readAlls {
			path(q)
		}
		for _, q := range t.writes {
			// A collection's writes are its entries, unless an invariant
			// checks it whole.
			if e.colls[q] == nil || e.checkedWhole(q) {
				path(q)
			}
		}
		for _, r := range t.reads {
			fp.Entries = append(fp.Entries, Write{Path: e.paths[r.path], Key: r.key})
		}
		for _, k := range t.keys {
			if !slices.Contains(t.reads, k.collKey) { // an entry read and written once
				fp.Entries = append(fp.Entries, Write{Path: e.paths[k.path], Key: k.key})
			}
		}
		for i := range t.msgs {
			// A commit's messages to one key often come together.
			if tk := (outbox.TopicKey{Topic: t.msgs[i].Topic, Key: t.msgs[i].Key}); len(fp.Keys) == 0 || fp.Keys[len(fp.Keys)-1] != tk {
				fp.Keys = append(fp.Keys, tk)
			}
		}
	}
	return fp
}

// checkedWhole reports whether an invariant checks the whole value of the
// collection with index q, not entry by entry.
func (e *core) checkedWhole(q int) bool {
	if e.invByPath == nil {
		return false
	}
	for _, i := range e.invByPath[q] {
		if !e.invs[i].Each {
			return true
		}
	}
	return false
}

// unassignKeySeqs gives back the KeySeqs that txs, the last commits
// sequenced, took. e.mu is held.
func (e *core) unassignKeySeqs(txs []*Tx) {
	for i := len(txs) - 1; i >= 0; i-- {
		for j := len(txs[i].msgs) - 1; j >= 0; j-- {
			m := &txs[i].msgs[j]
			*e.keySeqs.of(m.Topic, m.Key) = m.KeySeq - 1
		}
	}
}

// invalidated reports whether the local commit t, now ordered after the
// published state and the local commits before it, read something it did
// not see: a path or entry that another engine's commit after version base
// wrote (every local commit was validated against the commits up to base,
// and saw none after it), or that a local commit in dropped wrote. e.mu is
// held.
func (e *core) invalidated(t *Tx, dropped []*Tx, base uint64) bool {
	if t.proc == nil || e.opts.strictCAS {
		// A CompareAndSwap, and any commit under WithStrictCAS, counts as
		// reading everything.
		return e.published.Load().version > base || len(dropped) > 0
	}
	for _, q := range t.proc.conflicts {
		if e.durableWrite[q] > base || writtenBy(dropped, q) {
			return true
		}
	}
	for _, q := range t.readAlls {
		if e.durableWrite[q] > base || writtenBy(dropped, q) {
			return true
		}
	}
	pub := e.published.Load()
	for _, r := range t.reads {
		if e.entryChanged(pub, r, base) {
			return true
		}
		for _, d := range dropped {
			for _, k := range d.keys {
				if k.collKey == r {
					return true
				}
			}
		}
	}
	return false
}

// writtenBy reports whether a commit in txs wrote the path with index q.
func writtenBy(txs []*Tx, q int) bool {
	for _, t := range txs {
		if slices.Contains(t.writes, q) {
			return true
		}
	}
	return false
}

// resequence numbers the local commit t anew as next, the snapshot its
// outputs were applied to again: its writes, message IDs and KeySeqs, and
// its record. e.mu is held.
func (e *core) resequence(t *Tx, next *snapshot) {
	v := next.version
	for _, w := range t.writes {
		e.lastWrite[w] = v
	}
	for _, k := range t.keys {
		if k.del {
			e.deleted[k.collKey] = v
		}
	}
	for i := range t.msgs {
		m := &t.msgs[i]
		m.ID = t.newID(e.inc, v, i)
		if i < len(t.ids) {
			t.ids[i] = m.ID
		}
		m.Version = v
		p := e.keySeqs.of(m.Topic, m.Key)
		*p++
		m.KeySeq = *p
	}
	t.rec.Version, t.rec.State = v, next.boxed
	e.noteReads(t.proc, v)
}

// follow runs the store's Follow until ctx ends, so that an idle engine
// applies the other engines' commits within milliseconds.
func (e *core) follow(ctx context.Context) {
	defer close(e.followed)
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		err := e.shared.Follow(ctx, e.published.Load().version, e.applyFollowed)
		if err == nil || ctx.Err() != nil {
			return
		}
		e.opts.logger.Warn("theus: follow the store's commits; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// applyFollowed is the callback of SharedStore.Follow: it applies the
// other engines' commits unless a group of this engine is with the store,
// whose commit will apply them (rebase).
func (e *core) applyFollowed(others []Remote) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.flushing && len(e.pending) == 0 {
		if err := e.applyRemotes(others); err != nil {
			e.opts.logger.Error("theus: apply the store's commits", "err", err)
		}
	}
	return e.published.Load().version
}

// Sync waits until the engine has applied every commit that was durable in
// the store when it was called, whichever engine made it, or until ctx
// ends. Snapshot and pure calls read the engine's own copy of the state,
// which follows other engines' commits within milliseconds; a caller that
// must read what another engine has just committed calls Sync first. On a
// store no other engine writes, Sync returns at once.
func (e *Engine[S]) Sync(ctx context.Context) error { return e.c.sync(ctx) }

func (e *core) sync(ctx context.Context) error {
	if e.shared == nil {
		return nil
	}
	head, err := e.shared.Head(ctx)
	if err != nil {
		return fmt.Errorf("theus: sync: %w", err)
	}
	for {
		e.mu.Lock()
		if e.published.Load().version >= head {
			e.mu.Unlock()
			return nil
		}
		if e.settle == nil {
			e.settle = make(chan struct{})
		}
		ch := e.settle
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
