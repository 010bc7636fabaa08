package engine

import "time"

// OnWait makes e call f, with its lock held, whenever a CompareAndSwap
// starts to wait for another call's exclusive turn.
func OnWait[S any](e *Engine[S], f func()) {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	e.c.onWait = f
}

// Sequenced returns the last version e sequenced, durable or not.
func Sequenced[S any](e *Engine[S]) uint64 {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	return e.c.headp.Load().version
}

// OnRefuse makes e call f, with its lock held, when an invariant refuses a
// commit, before the refusal waits for the state it was decided on.
func OnRefuse[S any](e *Engine[S], f func()) {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	e.c.onRefuse = f
}

// LingerFor makes a group of e wait up to d for the calls inside the
// engine to join it, instead of the bound e would choose, and call f, with
// its lock held, when it starts to wait.
func LingerFor[S any](e *Engine[S], d time.Duration, f func()) {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	e.c.lingerFor, e.c.onLinger = d, f
}
