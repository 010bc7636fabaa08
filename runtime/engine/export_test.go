package engine

// OnWait makes e call f, with its lock held, whenever a CompareAndSwap
// starts to wait for another call's exclusive turn.
func OnWait[S any](e *Engine[S], f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.onWait = f
}
