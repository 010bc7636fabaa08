package sqlite

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// tailCap is the most messages the tail keeps. A relay that falls further
// behind reads from the file, in large rounds, until it catches up.
const tailCap = 4096

// tail holds the messages of the latest commit groups, for the relay to
// read without a read transaction of its own per round (see Undelivered).
// While the relay keeps up, a commit group of a few messages is read from
// here; anything out of the ordinary (a parked, held or ready message, an
// ack out of order, a failed commit, a backlog larger than tailCap) makes
// Undelivered read the file, whose read says whether the tail can answer
// again.
//
// Another process cannot make the tail wrong: it cannot commit (the
// engine holds the file) nor deliver (the relay holds it), and Replay and
// Skip, which cmd/theus runs from another process, act on parked
// messages, and the tail does not answer while any message is parked.
type tail struct {
	mu sync.Mutex
	// on is set once Undelivered was called: from then on Commit adds its
	// messages. A store without a relay keeps none.
	on bool
	// writer is set once the store's engine recovered it: only then does
	// every message committed to the file go through Commit, so only then
	// can the tail hold every message after from.
	writer bool
	// valid is set while the tail may answer Undelivered: every message
	// committed after from is in msgs and pending, and no message of the
	// file is parked, held or ready. Set by a read of the file (check),
	// cleared by reset.
	valid bool
	// epoch counts resets: a read of the file that started before one
	// cannot make the tail valid.
	epoch uint64
	from  string
	msgs  []outbox.Message // in commit order, all after from
	// reads counts the reads the tail answered; max, when not 0, replaces
	// tailCap (tests).
	reads uint64
	max   int
}

// add appends the messages of a commit group that is durable. The caller
// wakes the relay afterwards.
func (t *tail) add(recs []*engine.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.on {
		return
	}
	for _, r := range recs {
		for _, m := range r.Messages {
			if m.ID <= t.from {
				continue
			}
			// As a read of the file returns it.
			m.CreatedAt = time.Unix(0, m.CreatedAt.UnixNano())
			if len(m.Headers) == 0 {
				m.Headers = nil
			}
			if m.Payload == nil {
				m.Payload = []byte{}
			}
			t.msgs = append(t.msgs, m)
		}
	}
	limit := tailCap
	if t.max > 0 {
		limit = t.max
	}
	if len(t.msgs) > limit {
		// Drop half, so that appending does not copy the tail every time.
		t.drop(len(t.msgs) - limit/2)
	}
}

// drop forgets the first n messages: the tail holds every message after
// the last one dropped.
func (t *tail) drop(n int) {
	if n <= 0 {
		return
	}
	t.from = max(t.from, t.msgs[n-1].ID)
	clear(t.msgs[:n]) // their payloads go to the collector
	t.msgs = t.msgs[n:]
}

// upTo returns how many messages of the tail have IDs up to id.
func (t *tail) upTo(id string) int {
	i, found := slices.BinarySearchFunc(t.msgs, id, func(m outbox.Message, id string) int {
		return strings.Compare(m.ID, id)
	})
	if found {
		i++
	}
	return i
}

// read returns up to limit messages after cursor, the relay's, and true
// when the tail can answer; otherwise false and the epoch to give check
// after reading the file.
func (t *tail) read(cursor string, limit int) (msgs []outbox.Message, ok bool, epoch uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.on = true
	if !t.valid || cursor < t.from {
		return nil, false, t.epoch
	}
	// What the cursor passed is delivered.
	t.drop(t.upTo(cursor))
	t.from = cursor
	t.reads++
	return slices.Clone(t.msgs[:min(limit, len(t.msgs))]), true, 0
}

// check records what a read of the file that started at epoch found:
// clean when no message is parked, held or ready and none is acked out of
// order, last the ID of the last message committed that it saw.
func (t *tail) check(epoch uint64, clean bool, last string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !clean || !t.writer || t.epoch != epoch {
		t.valid = false
		return
	}
	// The messages after last were committed after the read began, with
	// t.on set: add has them, or dropped them and moved from past them.
	t.drop(t.upTo(last))
	t.from = max(t.from, last)
	t.valid = true
}

// reset makes the next reads read the file: a message may no longer be
// pending, or one not in the tail may be.
func (t *tail) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.valid = false
	t.epoch++
}

// setWriter records that the store's engine recovered it.
func (t *tail) setWriter() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.writer = true
}
