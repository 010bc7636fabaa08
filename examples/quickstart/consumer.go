package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/theus-go/theus/runtime/outbox"
)

// consumer stands for the downstream service. Its effect is a line per
// message in a log file, and what it has seen, by (topic, key, KeySeq), is
// rebuilt from that same log when it starts: the effect and the dedup
// record are one write, synced before the batch is confirmed to the relay.
// So a message redelivered after a crash, in this run or the next, is
// dropped, never applied twice. Without a log file (no data directory) it
// remembers in memory only.
type consumer struct {
	dedup *outbox.Dedup
	log   *os.File // nil: in memory

	mu         sync.Mutex
	seen       map[string]bool // message IDs in the log
	delivered  int             // deliveries this run, duplicates included
	unique     int             // messages applied this run
	dropped    int             // redeliveries dropped by the dedup this run
	duplicates int             // messages applied twice, over all runs: must stay 0
	gaps       uint64
	lastEmail  string
	lastEvent  string    // the last message applied this run, formatted
	out        io.Writer // nil: print nothing
}

// printFirst is how many of the messages applied in a run are printed as
// they arrive; the last one is printed with the summary.
const printFirst = 3

// newConsumer opens (creating it) the consumer's log at path and replays
// it; path "" keeps everything in memory.
func newConsumer(path string) (*consumer, error) {
	c := &consumer{dedup: outbox.NewDedup(), seen: make(map[string]bool)}
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// A crash can leave a partial last line: it was never confirmed, so
	// the message will come again. Cut it off.
	if i := bytes.LastIndexByte(data, '\n'); i+1 < len(data) {
		data = data[:i+1]
		if err := os.Truncate(path, int64(len(data))); err != nil {
			return nil, err
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m, err := parseLogLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		c.dedup.Observe(m)
		c.apply(m)
	}
	c.log, err = os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// close closes the log.
func (c *consumer) close() error {
	if c.log == nil {
		return nil
	}
	return c.log.Close()
}

// Send implements outbox.Sink: the fresh messages of the batch are written
// to the log with one sync, then confirmed all at once.
func (c *consumer) Send(_ context.Context, batch []outbox.Message) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Decide what is fresh before writing, so that a failed write changes
	// nothing and the relay sends the batch again.
	last := map[outbox.TopicKey]uint64{}
	var fresh []outbox.Message
	var buf bytes.Buffer
	for _, m := range batch {
		tk := outbox.TopicKey{Topic: m.Topic, Key: m.Key}
		l, ok := last[tk]
		if !ok {
			l = c.dedup.Last(m.Topic, m.Key)
		}
		if m.KeySeq <= l {
			continue
		}
		last[tk] = m.KeySeq
		fresh = append(fresh, m)
		fmt.Fprintf(&buf, "%s\t%s\t%s\t%d\t%s\n", m.ID, m.Topic, m.Key, m.KeySeq, m.Payload)
	}
	if c.log != nil && buf.Len() > 0 {
		if _, err := c.log.Write(buf.Bytes()); err != nil {
			return 0, err
		}
		if err := c.log.Sync(); err != nil {
			return 0, err
		}
	}
	for _, m := range batch {
		ok, gap := c.dedup.Observe(m)
		c.delivered++
		c.gaps += gap
		if !ok {
			c.dropped++
			continue
		}
		c.unique++
		c.apply(m)
		c.lastEvent = formatEvent(m)
		if c.out != nil && c.unique <= printFirst {
			fmt.Fprintf(c.out, "received:           %s\n", c.lastEvent)
		}
	}
	return len(batch), nil
}

// apply records an applied message. c.mu is held (or c is not shared yet).
func (c *consumer) apply(m outbox.Message) {
	if c.seen[m.ID] {
		c.duplicates++
	}
	c.seen[m.ID] = true
	c.lastEmail = string(m.Payload)
}

func formatEvent(m outbox.Message) string {
	return fmt.Sprintf("%s key %s #%d %s", m.Topic, m.Key, m.KeySeq, m.Payload)
}

func parseLogLine(line string) (outbox.Message, error) {
	f := strings.SplitN(line, "\t", 5)
	if len(f) != 5 {
		return outbox.Message{}, fmt.Errorf("malformed line %q", line)
	}
	seq, err := strconv.ParseUint(f[3], 10, 64)
	if err != nil {
		return outbox.Message{}, fmt.Errorf("malformed line %q: %w", line, err)
	}
	return outbox.Message{ID: f[0], Topic: f[1], Key: f[2], KeySeq: seq, Payload: []byte(f[4])}, nil
}
