package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/theus-go/theus/runtime/outbox"
)

// The headers the sink adds to every record, besides the message's own.
const (
	HeaderID      = "theus-id"         // the message ID
	HeaderTopic   = "theus-topic"      // the outbox topic (the record's topic may differ)
	HeaderKeySeq  = "theus-key-seq"    // decimal
	HeaderVersion = "theus-version"    // decimal
	HeaderCreated = "theus-created-at" // RFC 3339 with nanoseconds, UTC; absent when zero
)

// DefaultProduceTimeout bounds one Send (see WithProduceTimeout).
const DefaultProduceTimeout = 30 * time.Second

// maxTopicLen is Kafka's limit on a topic name.
const maxTopicLen = 249

// Sink produces messages to Kafka through a franz-go client. It is safe
// for concurrent use.
type Sink struct {
	cl      *kgo.Client
	topic   func(outbox.Message) (string, error)
	timeout time.Duration
}

var _ outbox.Sink = (*Sink)(nil)

// Option configures a Sink.
type Option func(*Sink) error

// WithTopic sends every record to the one Kafka topic (default: the
// message's topic). The outbox topic stays in the theus-topic header.
func WithTopic(topic string) Option {
	return func(s *Sink) error {
		if err := checkTopic(topic); err != nil {
			return fmt.Errorf("kafka: WithTopic(%q): %w", topic, err)
		}
		s.topic = func(outbox.Message) (string, error) { return topic, nil }
		return nil
	}
}

// WithTopicFunc sets the function that names a message's Kafka topic. A
// name Kafka would refuse makes the message outbox.Permanent.
func WithTopicFunc(f func(outbox.Message) string) Option {
	return func(s *Sink) error {
		if f == nil {
			return errors.New("kafka: WithTopicFunc: nil func")
		}
		s.topic = func(m outbox.Message) (string, error) {
			t := f(m)
			return t, checkTopic(t)
		}
		return nil
	}
}

// WithProduceTimeout bounds the wait for one Send's records (default
// DefaultProduceTimeout). Records not produced in time fail with an
// outbox.Unavailable error: the cluster is not answering.
func WithProduceTimeout(d time.Duration) Option {
	return func(s *Sink) error {
		if d <= 0 {
			return fmt.Errorf("kafka: WithProduceTimeout(%v): must be positive", d)
		}
		s.timeout = d
		return nil
	}
}

// New returns a sink that produces through cl, a client the caller
// configured and closes. Keep franz-go's default idempotent producer
// (do not set kgo.DisableIdempotentWrite): it is what keeps the records
// of a partition, and so of a key, in order across retries.
func New(cl *kgo.Client, opts ...Option) (*Sink, error) {
	if cl == nil {
		return nil, errors.New("kafka: nil client")
	}
	s := &Sink{
		cl: cl,
		topic: func(m outbox.Message) (string, error) {
			return m.Topic, checkTopic(m.Topic)
		},
		timeout: DefaultProduceTimeout,
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// checkTopic accepts what Kafka accepts as a topic name: 1 to 249 of
// [a-zA-Z0-9._-], neither "." nor "..".
func checkTopic(t string) error {
	if t == "" || t == "." || t == ".." || len(t) > maxTopicLen {
		return fmt.Errorf("%w: %q", errInvalidTopic, t)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q", errInvalidTopic, t)
		}
	}
	return nil
}

var (
	errInvalidTopic = errors.New("invalid Kafka topic name")
	errTooLarge     = errors.New("record larger than the client's ProducerBatchMaxBytes")
)

// Record builds the Kafka record for m (topic, key, headers, value) as
// Send produces it.
func (s *Sink) Record(m outbox.Message) (*kgo.Record, error) {
	topic, err := s.topic(m)
	if err != nil {
		return nil, fmt.Errorf("kafka: message %s: %w", m.ID, err)
	}
	hs := make([]kgo.RecordHeader, 0, len(m.Headers)+5)
	for k, v := range m.Headers {
		if isReserved(k) {
			continue
		}
		hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderID, Value: []byte(m.ID)},
		kgo.RecordHeader{Key: HeaderTopic, Value: []byte(m.Topic)},
		kgo.RecordHeader{Key: HeaderKeySeq, Value: strconv.AppendUint(nil, m.KeySeq, 10)},
		kgo.RecordHeader{Key: HeaderVersion, Value: strconv.AppendUint(nil, m.Version, 10)},
	)
	if !m.CreatedAt.IsZero() {
		hs = append(hs, kgo.RecordHeader{Key: HeaderCreated, Value: []byte(m.CreatedAt.UTC().Format(time.RFC3339Nano))})
	}
	return &kgo.Record{
		Topic: topic,
		// Never nil, not even for "": a nil key is spread over partitions,
		// and the messages of a key must stay in one.
		Key:     []byte(m.Key),
		Value:   m.Payload,
		Headers: hs,
	}, nil
}

// isReserved reports whether a message header clashes with the sink's own
// (theus-*, in any case); such headers are not carried.
func isReserved(k string) bool {
	return len(k) >= 6 && strings.EqualFold(k[:6], "theus-")
}

// recordSize over-estimates the bytes r takes in a record batch.
func recordSize(r *kgo.Record) int {
	n := 32 + len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += 10 + len(h.Key) + len(h.Value)
	}
	return n
}

// Decode rebuilds the outbox message from a record the sink produced: for
// consumers, to feed outbox.Dedup. The theus headers are removed from
// Headers; Key is the record key and Payload the value.
func Decode(r *kgo.Record) (outbox.Message, error) {
	m := outbox.Message{Key: string(r.Key), Payload: r.Value}
	var seq, version, created string
	for _, h := range r.Headers {
		switch h.Key {
		case HeaderID:
			m.ID = string(h.Value)
		case HeaderTopic:
			m.Topic = string(h.Value)
		case HeaderKeySeq:
			seq = string(h.Value)
		case HeaderVersion:
			version = string(h.Value)
		case HeaderCreated:
			created = string(h.Value)
		default:
			if isReserved(h.Key) {
				continue
			}
			if m.Headers == nil {
				m.Headers = make(map[string]string)
			}
			m.Headers[h.Key] = string(h.Value)
		}
	}
	where := fmt.Sprintf("%s/%d@%d", r.Topic, r.Partition, r.Offset)
	if m.ID == "" || m.Topic == "" {
		return m, fmt.Errorf("kafka: record %s: no %s or %s header", where, HeaderID, HeaderTopic)
	}
	var err error
	if m.KeySeq, err = strconv.ParseUint(seq, 10, 64); err != nil {
		return m, fmt.Errorf("kafka: record %s: %s: %w", where, HeaderKeySeq, err)
	}
	if m.Version, err = strconv.ParseUint(version, 10, 64); err != nil {
		return m, fmt.Errorf("kafka: record %s: %s: %w", where, HeaderVersion, err)
	}
	if created != "" {
		if m.CreatedAt, err = time.Parse(time.RFC3339Nano, created); err != nil {
			return m, fmt.Errorf("kafka: record %s: %s: %w", where, HeaderCreated, err)
		}
	}
	return m, nil
}

// Send produces batch and waits for every record's result. It returns the
// number of leading records the cluster acknowledged and the error of the
// first record that failed. Records are built and checked before any is
// produced: if batch[i] cannot be built (invalid topic name, larger than
// the client's ProducerBatchMaxBytes) only batch[:i] is produced and
// batch[i] fails with an outbox.Permanent error, so no later message of
// its key reaches Kafka ahead of it.
//
// Records that follow a failed one may have been produced too; they are
// not counted, the relay sends them again, and consumers drop the
// duplicates with outbox.Dedup.
func (s *Sink) Send(ctx context.Context, batch []outbox.Message) (int, error) {
	maxBytes := int(^uint32(0) >> 1)
	if v, ok := s.cl.OptValue(kgo.ProducerBatchMaxBytes).(int32); ok && v > 0 {
		maxBytes = int(v)
	}
	recs := make([]*kgo.Record, 0, len(batch))
	var buildErr error
	for _, m := range batch {
		r, err := s.Record(m)
		if err == nil && recordSize(r) > maxBytes {
			err = fmt.Errorf("kafka: message %s: %w (%d > %d bytes)", m.ID, errTooLarge, recordSize(r), maxBytes)
		}
		if err != nil {
			buildErr = outbox.Permanent(err)
			break
		}
		recs = append(recs, r)
	}

	pctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var (
		mu      sync.Mutex
		settled = make([]bool, len(recs))
		errs    = make([]error, len(recs))
		left    = len(recs)
		done    = make(chan struct{})
	)
	if left == 0 {
		close(done)
	}
	for i, r := range recs {
		// The promise is called with the record's result, or with pctx's
		// error for a record not yet sent when pctx ended. The idempotent
		// producer does not give up on records already in flight, so Send
		// also stops waiting when pctx ends; such records may still land.
		s.cl.Produce(pctx, r, func(_ *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			settled[i], errs[i] = true, err
			if left--; left == 0 {
				close(done)
			}
		})
	}
	select {
	case <-done:
	case <-pctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range recs {
		err := errs[i]
		if !settled[i] { // pctx ended first
			err = pctx.Err()
		}
		if err != nil {
			return i, s.classify(ctx, fmt.Errorf("kafka: produce %s to %s: %w", batch[i].ID, recs[i].Topic, err))
		}
	}
	return len(recs), buildErr
}

// classify maps a produce error to the outbox's classes: the cluster
// unreachable or not answering in time is outbox.Unavailable; a record or
// topic Kafka refuses is outbox.Permanent; the rest is plain.
func (s *Sink) classify(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return err // the caller gave up; the relay stops
	}
	for _, target := range []error{
		kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidTopicException,
		kerr.InvalidRecord, kerr.CorruptMessage,
	} {
		if errors.Is(err, target) {
			return outbox.Permanent(err)
		}
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return err // a missing topic: counted, then parked
	}
	for _, target := range []error{
		context.DeadlineExceeded, kgo.ErrRecordTimeout, kgo.ErrRecordRetries,
		kgo.ErrMaxBuffered, kgo.ErrClientClosed, kgo.ErrAborting,
		io.EOF, io.ErrUnexpectedEOF, syscall.ECONNREFUSED, syscall.ECONNRESET,
	} {
		if errors.Is(err, target) {
			return outbox.Unavailable(err)
		}
	}
	var ne net.Error
	var eof *kgo.ErrFirstReadEOF
	var ke *kerr.Error
	switch {
	case errors.As(err, &ne), errors.As(err, &eof):
		return outbox.Unavailable(err)
	case errors.As(err, &ke) && ke.Retriable:
		return outbox.Unavailable(err) // not leader, not enough replicas, broker timeouts
	}
	return err
}
