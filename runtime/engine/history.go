package engine

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"
)

// Commit is one commit of the history, as History and Watch give it.
type Commit struct {
	Version uint64
	// Process is the process that committed; "" for CompareAndSwap.
	Process string
	// Time is when the commit was made (the committing engine's clock, or
	// the database's for a store that says so).
	Time time.Time
	// Writes lists the state paths and collection entries written.
	Writes []Write
	// MessageIDs lists the commit's messages in emit order.
	MessageIDs []string
	// Values holds the values the commit wrote, encoded as the store keeps
	// them (JSON unless the engine has WithCodec), when the store keeps
	// them (History of a durable store); Watch leaves them out.
	Values []Value
}

// Value is a value a commit wrote, as a store keeps it: a top-level field
// (Path, the field for a write of a path below it) or a collection entry
// (Key set; Data nil when the entry was deleted).
type Value struct {
	Path string
	Key  string
	Data []byte
}

// HistoryReader is implemented by stores that keep the history of commits
// for a while (the SQLite and PostgreSQL stores: a retention option says
// how long).
type HistoryReader interface {
	// History returns the commits from version from to version to, both
	// included, in version order, as far as the store still holds them:
	// the first one returned may be after from.
	History(ctx context.Context, from, to uint64) ([]Commit, error)
}

// ErrNoHistory is returned by History on a store that keeps no history of
// commits (the memory store), and by Watch when it cannot give the commits
// after the version it was asked for: the store no longer holds them, or
// the watcher fell too far behind.
var ErrNoHistory = errors.New("theus: the commits asked for are not kept")

// History returns the commits from version from to version to, both
// included, that the store still holds (see the stores' retention
// options), in version order, with the values they wrote.
func (e *Engine[S]) History(ctx context.Context, from, to uint64) ([]Commit, error) {
	return e.c.history(ctx, from, to)
}

func (e *core) history(ctx context.Context, from, to uint64) ([]Commit, error) {
	h, ok := e.store.(HistoryReader)
	if !ok {
		return nil, fmt.Errorf("%w: the %T store keeps no history", ErrNoHistory, e.store)
	}
	cs, err := h.History(ctx, from, to)
	if err != nil {
		return nil, fmt.Errorf("theus: history: %w", err)
	}
	return cs, nil
}

// watchBuffer is how many commits the engine keeps for its watchers, while
// it has any: a watcher that falls further behind reads the store's
// history, or fails with ErrNoHistory.
const watchBuffer = 1 << 16

// watching holds the commits made while Watch has watchers (e.watch is nil
// otherwise, and commits cost nothing for it).
type watching struct {
	watchers int
	buf      []Commit // in version order, at most watchBuffer
}

// noteCommit records the durable commit of t for the watchers. e.mu is held.
func (e *core) noteCommit(t *Tx) {
	if e.watch == nil {
		return
	}
	r := &t.rec
	c := Commit{Version: r.Version, Process: r.Process, Time: r.Time, Writes: slices.Clone(r.Writes)}
	for i := range r.Messages {
		c.MessageIDs = append(c.MessageIDs, r.Messages[i].ID)
	}
	e.watch.add(c)
}

// noteRemote records another engine's commit for the watchers. e.mu is
// held.
func (e *core) noteRemote(r *Remote) {
	if e.watch != nil {
		e.watch.add(Commit{Version: r.Version, Process: r.Process, Time: r.Time, Writes: slices.Clone(r.Writes),
			MessageIDs: slices.Clone(r.MessageIDs)})
	}
}

func (w *watching) add(c Commit) {
	if len(w.buf) == watchBuffer {
		w.buf = slices.Delete(w.buf, 0, watchBuffer/4)
	}
	w.buf = append(w.buf, c)
}

// Watch yields the commits after version from, in version order, as they
// become durable, whichever engine made them, until ctx ends or an error
// (which it yields last): the version, process, time, writes and message
// IDs of each, not the values (History has them). Iterate the sequence
// once. Commits made before Watch was called come from the store's
// history (HistoryReader): Watch fails with ErrNoHistory if it no longer
// holds them, or on a store that keeps none, for commits before the call.
func (e *Engine[S]) Watch(ctx context.Context, from uint64) iter.Seq2[Commit, error] {
	return e.c.watchFrom(ctx, from)
}

func (e *core) watchFrom(ctx context.Context, from uint64) iter.Seq2[Commit, error] {
	// The watcher counts from the call, so that the commits made between
	// the call and the first iteration come from the engine's buffer; it
	// stops counting when the iteration ends, or ctx does.
	e.mu.Lock()
	if e.watch == nil {
		e.watch = &watching{}
	}
	w := e.watch
	w.watchers++
	start := e.published.Load().version
	e.mu.Unlock()
	done := sync.OnceFunc(func() {
		e.mu.Lock()
		if w.watchers--; w.watchers == 0 {
			e.watch = nil
		}
		e.mu.Unlock()
	})
	stop := context.AfterFunc(ctx, done)
	return func(yield func(Commit, error) bool) {
		defer func() {
			stop()
			done()
		}()
		next := from + 1
		// The commits before the call, from the store.
		for next <= start {
			cs, err := e.history(ctx, next, min(start, next+999))
			if err == nil && (len(cs) == 0 || cs[0].Version != next) {
				err = fmt.Errorf("%w: the store holds no commit %d any more", ErrNoHistory, next)
			}
			if err != nil {
				yield(Commit{}, err)
				return
			}
			for _, c := range cs {
				c.Values = nil
				if !yield(c, nil) {
					return
				}
				next = c.Version + 1
			}
		}
		// The commits after it, from the engine's buffer.
		for {
			e.mu.Lock()
			buf := w.buf
			i, _ := slices.BinarySearchFunc(buf, next, func(c Commit, v uint64) int {
				switch {
				case c.Version < v:
					return -1
				case c.Version > v:
					return 1
				}
				return 0
			})
			if i < len(buf) && buf[i].Version != next {
				e.mu.Unlock()
				yield(Commit{}, fmt.Errorf("%w: the watcher fell %d commits behind", ErrNoHistory, buf[len(buf)-1].Version-next))
				return
			}
			cs := slices.Clone(buf[i:])
			var ch chan struct{}
			if len(cs) == 0 {
				if e.settle == nil {
					e.settle = make(chan struct{})
				}
				ch = e.settle
			}
			e.mu.Unlock()
			for _, c := range cs {
				if !yield(c, nil) {
					return
				}
				next = c.Version + 1
			}
			if ch != nil {
				select {
				case <-ch:
				case <-ctx.Done():
					return
				}
			}
		}
	}
}
