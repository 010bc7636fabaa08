package watermill

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

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/theus-go/theus/runtime/outbox"
)

// The metadata the sink sets on every message, besides the message's own
// headers. The message ID is also the Watermill message UUID.
const (
	MetaID      = "theus-id"
	MetaTopic   = "theus-topic"
	MetaKey     = "theus-key"
	MetaKeySeq  = "theus-key-seq"    // decimal
	MetaVersion = "theus-version"    // decimal
	MetaCreated = "theus-created-at" // RFC 3339 with nanoseconds, UTC; absent when zero
)

// Sink publishes messages through a Watermill message.Publisher. It is
// safe for concurrent use if the publisher is, as Watermill requires.
type Sink struct {
	pub      message.Publisher
	topic    func(outbox.Message) string
	classify func(error) error
	runs     bool
}

var _ outbox.Sink = (*Sink)(nil)

// Option configures a Sink.
type Option func(*Sink) error

// WithTopicFunc sets the function that names a message's Watermill topic
// (for watermill-amqp the queue or exchange, for watermill-kafka the
// topic); default: the outbox topic. An empty name makes the message
// permanent.
func WithTopicFunc(f func(outbox.Message) string) Option {
	return func(s *Sink) error {
		if f == nil {
			return errors.New("watermill: WithTopicFunc: nil func")
		}
		s.topic = f
		return nil
	}
}

// WithTopic publishes every message to one Watermill topic.
func WithTopic(name string) Option {
	return func(s *Sink) error {
		if name == "" {
			return errors.New("watermill: WithTopic: empty name")
		}
		s.topic = func(outbox.Message) string { return name }
		return nil
	}
}

// WithErrorClass sets the function that classes the publisher's errors
// for the relay: return outbox.Unavailable(err) for an error that says the
// broker is out of reach (retried, never counted), outbox.Permanent(err)
// for one that says the message can never be published, err for a
// transient error (retried, counted). It is called after the default
// classing (see the package doc), with errors that it left plain.
func WithErrorClass(f func(error) error) Option {
	return func(s *Sink) error {
		if f == nil {
			return errors.New("watermill: WithErrorClass: nil func")
		}
		s.classify = f
		return nil
	}
}

// WithPublishRuns publishes each run of consecutive messages with the same
// Watermill topic in one Publish call, instead of one call per message.
// Use it only with a publisher that publishes the messages of a call in
// order and stops at the first that fails, as Watermill asks of them: a
// failed call counts all of its run as not delivered (the ones published
// before the failure come again, as duplicates).
func WithPublishRuns() Option {
	return func(s *Sink) error {
		s.runs = true
		return nil
	}
}

// New returns a sink that publishes through pub. The publisher is the
// caller's: close it after the relay stopped.
func New(pub message.Publisher, opts ...Option) (*Sink, error) {
	if pub == nil {
		return nil, errors.New("watermill: nil publisher")
	}
	s := &Sink{
		pub:      pub,
		topic:    func(m outbox.Message) string { return m.Topic },
		classify: func(err error) error { return err },
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Message builds the Watermill message for m as Send publishes it, with
// ctx as its context.
func Message(ctx context.Context, m outbox.Message) *message.Message {
	wm := message.NewMessageWithContext(ctx, m.ID, message.Payload(m.Payload))
	for k, v := range m.Headers {
		if !isReserved(k) {
			wm.Metadata.Set(k, v)
		}
	}
	wm.Metadata.Set(MetaID, m.ID)
	wm.Metadata.Set(MetaTopic, m.Topic)
	wm.Metadata.Set(MetaKey, m.Key)
	wm.Metadata.Set(MetaKeySeq, strconv.FormatUint(m.KeySeq, 10))
	wm.Metadata.Set(MetaVersion, strconv.FormatUint(m.Version, 10))
	if !m.CreatedAt.IsZero() {
		wm.Metadata.Set(MetaCreated, m.CreatedAt.UTC().Format(time.RFC3339Nano))
	}
	return wm
}

// isReserved reports whether a header would clash with the sink's
// metadata.
func isReserved(k string) bool { return strings.HasPrefix(strings.ToLower(k), "theus-") }

// Decode rebuilds the outbox message from a Watermill message the sink
// published (after whatever the subscriber's unmarshaler did): for
// consumers, to feed outbox.Dedup. The theus metadata is removed from
// Headers.
func Decode(wm *message.Message) (outbox.Message, error) {
	md := wm.Metadata
	m := outbox.Message{ID: md.Get(MetaID), Topic: md.Get(MetaTopic), Key: md.Get(MetaKey), Payload: wm.Payload}
	if m.ID == "" {
		m.ID = wm.UUID
	}
	var err error
	if m.KeySeq, err = strconv.ParseUint(md.Get(MetaKeySeq), 10, 64); err != nil {
		return m, fmt.Errorf("watermill: message %s: %s: %w", m.ID, MetaKeySeq, err)
	}
	if m.Version, err = strconv.ParseUint(md.Get(MetaVersion), 10, 64); err != nil {
		return m, fmt.Errorf("watermill: message %s: %s: %w", m.ID, MetaVersion, err)
	}
	if c := md.Get(MetaCreated); c != "" {
		if m.CreatedAt, err = time.Parse(time.RFC3339Nano, c); err != nil {
			return m, fmt.Errorf("watermill: message %s: %s: %w", m.ID, MetaCreated, err)
		}
	}
	for k, v := range md {
		if isReserved(k) {
			continue
		}
		if m.Headers == nil {
			m.Headers = make(map[string]string)
		}
		m.Headers[k] = v
	}
	return m, nil
}

// Send publishes batch in order, one Publish call per message (or per run,
// WithPublishRuns), each returning before the next is made; n is the
// number of leading messages whose call returned nil. A publisher that
// returns before the broker confirmed (an asynchronous one) makes n
// count messages the broker may still lose: see the package doc.
func (s *Sink) Send(ctx context.Context, batch []outbox.Message) (int, error) {
	sent := 0
	for sent < len(batch) {
		if err := ctx.Err(); err != nil {
			return sent, fmt.Errorf("watermill: publish %s: %w", batch[sent].ID, err)
		}
		topic := s.topic(batch[sent])
		if topic == "" {
			return sent, outbox.Permanent(fmt.Errorf("watermill: message %s: empty topic", batch[sent].ID))
		}
		end := sent + 1
		for s.runs && end < len(batch) && s.topic(batch[end]) == topic {
			end++
		}
		msgs := make([]*message.Message, 0, end-sent)
		for _, m := range batch[sent:end] {
			msgs = append(msgs, Message(ctx, m))
		}
		if err := s.publish(topic, msgs); err != nil {
			return sent, s.class(ctx, fmt.Errorf("watermill: publish %s to %s: %w", batch[sent].ID, topic, err))
		}
		sent = end
	}
	return sent, nil
}

// publish calls the publisher, turning its panic into an error of the
// message.
func (s *Sink) publish(topic string, msgs []*message.Message) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("publisher panicked: %v", v)
		}
	}()
	return s.pub.Publish(topic, msgs...)
}

// class marks network errors and timeouts as outbox.Unavailable, then
// hands plain errors to WithErrorClass's func.
func (s *Sink) class(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded) {
		return outbox.Unavailable(err)
	}
	return s.classify(err)
}
