package engine

import (
	"sync"
	"sync/atomic"
	"time"
)

// coarseClock is the default clock of Message.CreatedAt. Reading the wall
// clock costs 50–100 ns on virtual machines, a third of a commit, and a
// message's creation time needs no nanoseconds: while commits keep coming,
// a goroutine owned by the engine reads the clock every tick and commits
// take that reading. The goroutine stops after idleTicks ticks without a
// commit (the next commit reads the clock itself and starts it again) and
// when the engine closes.
//
// A reading is at most one tick old, plus however late the scheduler runs
// the goroutine on a saturated machine; readings never go backwards.
type coarseClock struct {
	now     atomic.Int64 // Unix nanoseconds of the latest reading
	used    atomic.Bool  // read since the last tick
	running atomic.Bool  // the ticking goroutine runs
	stop    chan struct{}
	done    sync.WaitGroup
}

const (
	clockTick = time.Millisecond
	idleTicks = 10
)

func newCoarseClock() *coarseClock { return &coarseClock{stop: make(chan struct{})} }

// Now returns the latest reading, reading the clock itself when no
// goroutine keeps the reading fresh. It must not be called after close.
func (c *coarseClock) Now() time.Time {
	if !c.used.Load() {
		c.used.Store(true)
	}
	// used is stored before running is loaded, and the goroutine clears
	// running before it loads used: either it sees this call and keeps
	// ticking, or this call sees it gone and reads the clock.
	if c.running.Load() {
		return time.Unix(0, c.now.Load())
	}
	n := c.advance(time.Now().UnixNano())
	if c.running.CompareAndSwap(false, true) {
		c.done.Add(1)
		go c.tick()
	}
	return time.Unix(0, n)
}

// advance records the reading n unless a later one is recorded, and
// returns the latest.
func (c *coarseClock) advance(n int64) int64 {
	for {
		old := c.now.Load()
		if n <= old {
			return old
		}
		if c.now.CompareAndSwap(old, n) {
			return n
		}
	}
}

func (c *coarseClock) tick() {
	defer c.done.Done()
	t := time.NewTicker(clockTick)
	defer t.Stop()
	idle := 0
	for {
		select {
		case <-c.stop:
			c.running.Store(false)
			return
		case <-t.C:
		}
		c.advance(time.Now().UnixNano())
		if c.used.Swap(false) {
			idle = 0
			continue
		}
		if idle++; idle < idleTicks {
			continue
		}
		c.running.Store(false)
		if !c.used.Load() || !c.running.CompareAndSwap(false, true) {
			return
		}
		idle = 0
	}
}

// close stops the goroutine and waits for it.
func (c *coarseClock) close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.done.Wait()
}
