package redisstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/theus-go/theus/runtime/outbox"
)

// The fields of a stream entry.
const (
	FieldID      = "id"         // the message ID
	FieldTopic   = "topic"      // the topic
	FieldKey     = "key"        // the key
	FieldKeySeq  = "key_seq"    // KeySeq, decimal
	FieldVersion = "version"    // the commit version, decimal
	FieldCreated = "created_at" // RFC 3339 with nanoseconds, UTC; absent when zero
	FieldPayload = "payload"    // the payload
	// HeaderPrefix begins the field of each of the message's headers:
	// "h:traceparent".
	HeaderPrefix = "h:"
)

// Sink appends messages to Redis streams with XADD. It is safe for
// concurrent use.
type Sink struct {
	rdb    redis.UniversalClient
	stream func(outbox.Message) string
	maxLen int64
}

var _ outbox.Sink = (*Sink)(nil)

// Option configures a Sink.
type Option func(*Sink) error

// WithStream appends every message to one stream, whatever its topic.
func WithStream(name string) Option {
	return func(s *Sink) error {
		if name == "" {
			return errors.New("redisstream: WithStream: empty name")
		}
		s.stream = func(outbox.Message) string { return name }
		return nil
	}
}

// WithStreamFunc sets the function that names a message's stream
// (default: the topic). An empty name makes the message permanent.
func WithStreamFunc(f func(outbox.Message) string) Option {
	return func(s *Sink) error {
		if f == nil {
			return errors.New("redisstream: WithStreamFunc: nil func")
		}
		s.stream = f
		return nil
	}
}

// WithMaxLen caps each stream at about n entries (XADD MAXLEN ~ n): Redis
// trims the oldest entries when it can do so cheaply, so a stream may hold
// somewhat more. n <= 0: no cap (the default). Trimming drops entries
// whether consumer groups have read them or not: size n for the longest
// consumer outage.
func WithMaxLen(n int64) Option {
	return func(s *Sink) error {
		s.maxLen = max(n, 0)
		return nil
	}
}

// New returns a sink that appends through rdb (a *redis.Client,
// *redis.ClusterClient or *redis.Ring). The client is the caller's:
// configure it (address, TLS, pool, timeouts) and close it after the
// relay stopped. Streams are created by the first XADD.
func New(rdb redis.UniversalClient, opts ...Option) (*Sink, error) {
	if rdb == nil {
		return nil, errors.New("redisstream: nil client")
	}
	s := &Sink{rdb: rdb, stream: func(m outbox.Message) string { return m.Topic }}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Args builds the XADD arguments for m as Send appends it.
func (s *Sink) Args(m outbox.Message) (*redis.XAddArgs, error) {
	stream := s.stream(m)
	if stream == "" {
		return nil, fmt.Errorf("redisstream: message %s: empty stream name", m.ID)
	}
	v := make([]any, 0, 14+2*len(m.Headers))
	v = append(v,
		FieldID, m.ID,
		FieldTopic, m.Topic,
		FieldKey, m.Key,
		FieldKeySeq, strconv.FormatUint(m.KeySeq, 10),
		FieldVersion, strconv.FormatUint(m.Version, 10),
		FieldPayload, m.Payload)
	if !m.CreatedAt.IsZero() {
		v = append(v, FieldCreated, m.CreatedAt.UTC().Format(time.RFC3339Nano))
	}
	for k, hv := range m.Headers {
		v = append(v, HeaderPrefix+k, hv)
	}
	return &redis.XAddArgs{Stream: stream, MaxLen: s.maxLen, Approx: s.maxLen > 0, ID: "*", Values: v}, nil
}

// Decode rebuilds the outbox message from a stream entry the sink
// appended: for consumers, to feed outbox.Dedup.
func Decode(e redis.XMessage) (outbox.Message, error) {
	str := func(k string) string { v, _ := e.Values[k].(string); return v }
	m := outbox.Message{ID: str(FieldID), Topic: str(FieldTopic), Key: str(FieldKey), Payload: []byte(str(FieldPayload))}
	if m.ID == "" {
		return m, fmt.Errorf("redisstream: entry %s: no %s field", e.ID, FieldID)
	}
	var err error
	if m.KeySeq, err = strconv.ParseUint(str(FieldKeySeq), 10, 64); err != nil {
		return m, fmt.Errorf("redisstream: entry %s: %s: %w", e.ID, FieldKeySeq, err)
	}
	if m.Version, err = strconv.ParseUint(str(FieldVersion), 10, 64); err != nil {
		return m, fmt.Errorf("redisstream: entry %s: %s: %w", e.ID, FieldVersion, err)
	}
	if c := str(FieldCreated); c != "" {
		if m.CreatedAt, err = time.Parse(time.RFC3339Nano, c); err != nil {
			return m, fmt.Errorf("redisstream: entry %s: %s: %w", e.ID, FieldCreated, err)
		}
	}
	for k, v := range e.Values {
		if h, ok := strings.CutPrefix(k, HeaderPrefix); ok {
			if m.Headers == nil {
				m.Headers = make(map[string]string)
			}
			m.Headers[h], _ = v.(string)
		}
	}
	return m, nil
}

// Send appends batch in pipelined rounds. A round holds, in batch order,
// each message whose (topic, key) has no message in the round yet and no
// failed or unsent one before it, so a message Redis refuses is never
// overtaken by a later one of its key; a batch of n keys needs about
// len(batch)/n round trips. Send returns the number of leading messages
// appended and the error of the first that was not.
func (s *Sink) Send(ctx context.Context, batch []outbox.Message) (int, error) {
	args := make([]*redis.XAddArgs, len(batch))
	limit := len(batch) // messages from here on are not sent
	var limitErr error
	for i, m := range batch {
		a, err := s.Args(m)
		if err != nil {
			limit, limitErr = i, outbox.Permanent(err)
			break
		}
		args[i] = a
	}
	done := make([]bool, limit)
	blocked := make(map[outbox.TopicKey]bool) // a key with a failed message
	errs := make([]error, limit)
	acked := 0 // leading messages appended
	idx := make([]int, 0, limit)
	cmds := make([]*redis.StringCmd, 0, limit)
	for acked < limit {
		if err := ctx.Err(); err != nil {
			return acked, fmt.Errorf("redisstream: append %s: %w", batch[acked].ID, err)
		}
		idx, cmds = idx[:0], cmds[:0]
		inRound := make(map[outbox.TopicKey]bool)
		pipe := s.rdb.Pipeline()
		for i := acked; i < limit; i++ {
			tk := outbox.TopicKey{Topic: batch[i].Topic, Key: batch[i].Key}
			if done[i] || inRound[tk] || blocked[tk] {
				if !done[i] {
					inRound[tk] = true // later messages of tk wait for this one
				}
				continue
			}
			inRound[tk] = true
			idx = append(idx, i)
			cmds = append(cmds, pipe.XAdd(ctx, args[i]))
		}
		if len(cmds) == 0 {
			break // what is left waits behind failed messages
		}
		_, _ = pipe.Exec(ctx) // each command holds its own error
		for j, c := range cmds {
			i := idx[j]
			if err := c.Err(); err != nil {
				errs[i] = err
				blocked[outbox.TopicKey{Topic: batch[i].Topic, Key: batch[i].Key}] = true
				continue
			}
			done[i] = true
		}
		for acked < limit && done[acked] {
			acked++
		}
		if acked < limit && errs[acked] != nil {
			break
		}
	}
	if acked == limit {
		return acked, limitErr
	}
	m := batch[acked]
	err := errs[acked]
	if err == nil { // not sent: the round stopped behind another key's failure
		for _, e := range errs {
			if e != nil {
				err = e
				break
			}
		}
	}
	return acked, classify(ctx, fmt.Errorf("redisstream: XADD %s to %s: %w", m.ID, args[acked].Stream, err))
}

// classify marks the errors that say Redis, not the message, is the
// problem as outbox.Unavailable.
func classify(ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err // the caller's context ended
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrPoolExhausted),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded),
		redis.IsLoadingError(err), redis.IsReadOnlyError(err), redis.IsClusterDownError(err),
		redis.IsTryAgainError(err), redis.IsMasterDownError(err), redis.IsMaxClientsError(err),
		redis.IsOOMError(err), redis.IsNoReplicasError(err):
		return outbox.Unavailable(err)
	}
	return err
}
