package engine

import (
	"sync"
	"testing"
	"time"
)

func TestCoarseClockReadsTheClockWhenIdle(t *testing.T) {
	c := newCoarseClock()
	defer c.close()
	for range 3 {
		before := time.Now().UnixNano()
		got := c.Now().UnixNano()
		after := time.Now().UnixNano()
		if got < before || got > after {
			t.Fatalf("Now() = %d, want a fresh reading in [%d, %d]", got, before, after)
		}
		// Without further calls the goroutine stops by itself; the next
		// call must read the clock again rather than an old reading.
		c.done.Wait()
		if c.running.Load() {
			t.Fatal("the clock goroutine returned but running is still set")
		}
	}
}

func TestCoarseClockNeverGoesBackwards(t *testing.T) {
	c := newCoarseClock()
	defer c.close()
	start := time.Now().UnixNano()
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Go(func() {
			last := int64(0)
			for range 20000 {
				n := c.Now().UnixNano()
				if n < last {
					errs <- "a reading went backwards"
					return
				}
				if n < start {
					errs <- "a reading predates the first call"
					return
				}
				last = n
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	// A reading taken before a look at the wall clock is not after it.
	if got, end := c.Now().UnixNano(), time.Now().UnixNano(); got > end {
		t.Fatal("a reading lies in the future")
	}
}

func TestCoarseClockAdvanceKeepsTheLatest(t *testing.T) {
	c := newCoarseClock()
	if got := c.advance(10); got != 10 {
		t.Fatalf("advance(10) = %d", got)
	}
	if got := c.advance(5); got != 10 {
		t.Fatalf("advance(5) after 10 = %d, want 10", got)
	}
	if got := c.advance(11); got != 11 {
		t.Fatalf("advance(11) = %d", got)
	}
}

func TestCoarseClockStopsOnClose(t *testing.T) {
	c := newCoarseClock()
	c.Now()
	c.close() // goleak (TestMain) fails the package if the goroutine stays
	c.close() // idempotent
	if c.running.Load() {
		t.Fatal("running after close")
	}
}
