package workload

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// ChannelBuffer is the capacity of the in-process channel every relay
// delivers to.
const ChannelBuffer = 1024

// consumer checks what the relay delivers: each transaction's event once
// (duplicates are counted), and how long after its commit started it
// arrived. Receive is called from one goroutine at a time; the others
// methods may be called concurrently with it.
type consumer struct {
	mu        sync.Mutex
	seen      []uint64 // bit per transaction ID
	distinct  int64
	dups      int64
	bytes     int64 // payload bytes of the distinct events
	e2e       []int64
	last      int64 // Clock at the last distinct event
	bad       error // the first payload that was not an Event
	want      int64 // distinct events that close done; 0: not known yet
	done      chan struct{}
	warm      chan struct{} // closed when the warm-up event arrives
	warmDone  bool
	doneFired bool
}

func newConsumer() *consumer {
	return &consumer{done: make(chan struct{}), warm: make(chan struct{})}
}

// Receive is the consumer's work on one delivered payload: it decodes the
// event as any consumer would, then checks it.
func (c *consumer) Receive(payload []byte) {
	now := Clock()
	var ev struct {
		Tx      uint64 `json:"tx"`
		StartNS int64  `json:"start_ns"`
	}
	err := json.Unmarshal(payload, &ev)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.bad == nil {
			c.bad = fmt.Errorf("consumer: payload %.60q is not an event: %w", payload, err)
		}
		return
	}
	if ev.Tx == 0 {
		if !c.warmDone {
			c.warmDone = true
			close(c.warm)
		}
		return
	}
	word, bit := ev.Tx/64, uint64(1)<<(ev.Tx%64)
	for uint64(len(c.seen)) <= word {
		c.seen = append(c.seen, 0)
	}
	if c.seen[word]&bit != 0 {
		c.dups++
		return
	}
	c.seen[word] |= bit
	c.distinct++
	c.bytes += int64(len(payload))
	c.e2e = append(c.e2e, now-ev.StartNS)
	c.last = now
	c.check()
}

// expect closes done once n distinct events have arrived.
func (c *consumer) expect(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.want = n
	c.check()
}

func (c *consumer) check() {
	if c.want > 0 && c.distinct >= c.want && !c.doneFired {
		c.doneFired = true
		close(c.done)
	}
}

// delivered is how many distinct events have arrived.
func (c *consumer) delivered() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.distinct
}

// consumed is what the consumer saw, read once the relay has stopped.
type consumed struct {
	distinct, dups, bytes int64
	e2e                   []int64
	last                  int64
	bad                   error
}

func (c *consumer) result() consumed {
	c.mu.Lock()
	defer c.mu.Unlock()
	return consumed{distinct: c.distinct, dups: c.dups, bytes: c.bytes, e2e: c.e2e, last: c.last, bad: c.bad}
}

// Pipe runs a relay that delivers payloads to an in-process channel, and
// the consumer goroutine that reads it and hands each payload to recv,
// until ctx ends. The returned channel yields relay's error once both
// goroutines have returned: nil if ctx had ended, for an error then is
// the shutdown's.
func Pipe(ctx context.Context, recv func(payload []byte), relay func(ctx context.Context, out chan<- []byte) error) <-chan error {
	ch := make(chan []byte, ChannelBuffer)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for p := range ch {
			recv(p)
		}
	}()
	done := make(chan error, 1)
	go func() {
		err := relay(ctx, ch)
		close(ch)
		<-consumed
		if ctx.Err() != nil {
			err = nil
		}
		done <- err
	}()
	return done
}
