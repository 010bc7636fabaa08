package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/theus-go/theus/runtime/outbox"
)

// The headers the sink sets on every message, besides the message's own.
const (
	HeaderMsgID   = jetstream.MsgIDHeader // "Nats-Msg-Id": the message ID
	HeaderTopic   = "Theus-Topic"
	HeaderKey     = "Theus-Key"
	HeaderKeySeq  = "Theus-Key-Seq"    // decimal
	HeaderVersion = "Theus-Version"    // decimal
	HeaderCreated = "Theus-Created-At" // RFC 3339 with nanoseconds, UTC
)

// Defaults for the options.
const (
	DefaultMaxInFlight = 256
	DefaultAckTimeout  = 5 * time.Second
)

// EmptyKey stands for the empty key in a subject template: a subject
// token cannot be empty.
const EmptyKey = "_"

// Sink publishes messages to JetStream. It is safe for concurrent use.
type Sink struct {
	js       jetstream.JetStream
	subject  func(outbox.Message) (string, error)
	inFlight int
	timeout  time.Duration
}

var _ outbox.Sink = (*Sink)(nil)

// Option configures a Sink.
type Option func(*Sink) error

// WithSubject sets the function that names a message's subject (default:
// the topic). A subject the function returns is checked like a
// template's: an invalid one makes the message permanent.
func WithSubject(f func(outbox.Message) string) Option {
	return func(s *Sink) error {
		if f == nil {
			return errors.New("natsjs: WithSubject: nil func")
		}
		s.subject = func(m outbox.Message) (string, error) { return checkSubject(f(m)) }
		return nil
	}
}

// WithSubjectTemplate names subjects by a template in which {topic} and
// {key} stand for the message's topic and key, e.g. "events.{topic}.{key}".
// An empty key becomes EmptyKey ("_"). A key that would not make a valid
// subject token (it holds a space, '.', '*' or '>') makes the message
// permanent: it would land on another subject or none.
func WithSubjectTemplate(tmpl string) Option {
	return func(s *Sink) error {
		if !strings.Contains(tmpl, "{topic}") && !strings.Contains(tmpl, "{key}") {
			if _, err := checkSubject(tmpl); err != nil {
				return fmt.Errorf("natsjs: WithSubjectTemplate(%q): %w", tmpl, err)
			}
		}
		useKey := strings.Contains(tmpl, "{key}")
		s.subject = func(m outbox.Message) (string, error) {
			key := m.Key
			if key == "" {
				key = EmptyKey
			}
			if useKey && strings.ContainsAny(key, ". \t\r\n*>") {
				return "", fmt.Errorf("key %q is not a valid subject token", m.Key)
			}
			subj := strings.ReplaceAll(tmpl, "{topic}", m.Topic)
			subj = strings.ReplaceAll(subj, "{key}", key)
			return checkSubject(subj)
		}
		return nil
	}
}

// WithMaxInFlight bounds the messages published and not yet acked by the
// stream (default DefaultMaxInFlight); n < 1 means 1, one at a time.
func WithMaxInFlight(n int) Option {
	return func(s *Sink) error {
		s.inFlight = max(n, 1)
		return nil
	}
}

// WithAckTimeout bounds the wait for one message's ack from the stream
// (default DefaultAckTimeout). A message not acked in time is an
// outbox.Unavailable error: the broker is not answering.
func WithAckTimeout(d time.Duration) Option {
	return func(s *Sink) error {
		if d <= 0 {
			return fmt.Errorf("natsjs: WithAckTimeout(%v): must be positive", d)
		}
		s.timeout = d
		return nil
	}
}

// New returns a sink that publishes through js. The stream that captures
// the subjects must exist; the sink does not create it.
func New(js jetstream.JetStream, opts ...Option) (*Sink, error) {
	if js == nil {
		return nil, errors.New("natsjs: nil JetStream")
	}
	s := &Sink{
		js:       js,
		subject:  func(m outbox.Message) (string, error) { return checkSubject(m.Topic) },
		inFlight: DefaultMaxInFlight,
		timeout:  DefaultAckTimeout,
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// checkSubject accepts a subject to publish on: non-empty tokens, no
// whitespace, no wildcards.
func checkSubject(subj string) (string, error) {
	if subj == "" {
		return "", errors.New("empty subject")
	}
	if strings.ContainsAny(subj, " \t\r\n") {
		return "", fmt.Errorf("subject %q holds whitespace", subj)
	}
	for tok := range strings.SplitSeq(subj, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return "", fmt.Errorf("subject %q is not a valid publish subject", subj)
		}
	}
	return subj, nil
}

// Msg builds the NATS message for m (subject, headers, payload) as Send
// publishes it.
func (s *Sink) Msg(m outbox.Message) (*nats.Msg, error) {
	subj, err := s.subject(m)
	if err != nil {
		return nil, fmt.Errorf("natsjs: message %s: %w", m.ID, err)
	}
	h := make(nats.Header, len(m.Headers)+6)
	for k, v := range m.Headers {
		if isReserved(k) {
			continue
		}
		h.Set(k, v)
	}
	h.Set(HeaderMsgID, m.ID)
	h.Set(HeaderTopic, m.Topic)
	h.Set(HeaderKey, m.Key)
	h.Set(HeaderKeySeq, strconv.FormatUint(m.KeySeq, 10))
	h.Set(HeaderVersion, strconv.FormatUint(m.Version, 10))
	if !m.CreatedAt.IsZero() {
		h.Set(HeaderCreated, m.CreatedAt.UTC().Format(time.RFC3339Nano))
	}
	return &nats.Msg{Subject: subj, Header: h, Data: m.Payload}, nil
}

// isReserved reports whether a message header would steer the broker
// (Nats-*) or clash with the sink's own (Theus-*); such headers are not
// carried.
func isReserved(k string) bool {
	k = strings.ToLower(k)
	return strings.HasPrefix(k, "nats-") || strings.HasPrefix(k, "theus-")
}

// Decode rebuilds the outbox message from a NATS message the sink
// published: for consumers, to feed outbox.Dedup. The theus headers are
// removed from Headers; Payload is the data.
func Decode(subject string, h nats.Header, data []byte) (outbox.Message, error) {
	m := outbox.Message{
		ID:      h.Get(HeaderMsgID),
		Topic:   h.Get(HeaderTopic),
		Key:     h.Get(HeaderKey),
		Payload: data,
	}
	var err error
	if m.KeySeq, err = strconv.ParseUint(h.Get(HeaderKeySeq), 10, 64); err != nil {
		return m, fmt.Errorf("natsjs: message on %s: %s: %w", subject, HeaderKeySeq, err)
	}
	if m.Version, err = strconv.ParseUint(h.Get(HeaderVersion), 10, 64); err != nil {
		return m, fmt.Errorf("natsjs: message on %s: %s: %w", subject, HeaderVersion, err)
	}
	if c := h.Get(HeaderCreated); c != "" {
		if m.CreatedAt, err = time.Parse(time.RFC3339Nano, c); err != nil {
			return m, fmt.Errorf("natsjs: message on %s: %s: %w", subject, HeaderCreated, err)
		}
	}
	for k, vs := range h {
		if isReserved(k) || len(vs) == 0 {
			continue
		}
		if m.Headers == nil {
			m.Headers = make(map[string]string)
		}
		m.Headers[k] = vs[0]
	}
	return m, nil
}

// Send publishes batch asynchronously and waits for the acks. Messages of
// different (topic, key)s are pipelined, at most WithMaxInFlight unacked
// at a time; a message is published only after the one before it of the
// same (topic, key) was acked, so a message the stream refuses is never
// overtaken by a later one of its key. Send returns the number of leading
// messages the stream acked (a duplicate ack, for an ID still in the
// stream's window, counts as acked) and the error of the first message
// that was not.
func (s *Sink) Send(ctx context.Context, batch []outbox.Message) (int, error) {
	type pending struct {
		f  jetstream.PubAckFuture
		tk outbox.TopicKey
	}
	queue := make([]pending, 0, min(len(batch), s.inFlight))
	busy := make(map[outbox.TopicKey]bool, min(len(batch), s.inFlight))
	acked := 0 // leading messages acked; queue holds batch[acked:acked+len(queue)]
	// wait waits for the ack of batch[acked].
	wait := func() error {
		p := queue[0]
		timer := time.NewTimer(s.timeout)
		defer timer.Stop()
		select {
		case <-p.f.Ok():
		case err := <-p.f.Err():
			return classify(fmt.Errorf("natsjs: publish %s on %s: %w", batch[acked].ID, p.f.Msg().Subject, err))
		case <-timer.C:
			return outbox.Unavailable(fmt.Errorf("natsjs: publish %s on %s: no ack within %v: %w",
				batch[acked].ID, p.f.Msg().Subject, s.timeout, jetstream.ErrAsyncPublishTimeout))
		case <-ctx.Done():
			return fmt.Errorf("natsjs: publish %s: %w", batch[acked].ID, ctx.Err())
		}
		delete(busy, p.tk)
		queue = queue[1:]
		acked++
		return nil
	}
	for i, m := range batch {
		tk := outbox.TopicKey{Topic: m.Topic, Key: m.Key}
		for len(queue) == s.inFlight || busy[tk] {
			if err := wait(); err != nil {
				return acked, err
			}
		}
		var sendErr error
		msg, err := s.Msg(m)
		switch {
		case err != nil:
			sendErr = outbox.Permanent(err)
		case ctx.Err() != nil:
			sendErr = fmt.Errorf("natsjs: publish %s: %w", m.ID, ctx.Err())
		default:
			f, err := s.js.PublishMsgAsync(msg)
			if err == nil {
				queue = append(queue, pending{f: f, tk: tk})
				busy[tk] = true
				continue
			}
			sendErr = classify(fmt.Errorf("natsjs: publish %s on %s: %w", m.ID, msg.Subject, err))
		}
		// batch[i] was not published; the ones before it still count.
		for acked < i {
			if err := wait(); err != nil {
				return acked, err
			}
		}
		return acked, sendErr
	}
	for len(queue) > 0 {
		if err := wait(); err != nil {
			return acked, err
		}
	}
	return acked, nil
}

// classify marks the errors that say the broker, not the message, is the
// problem as outbox.Unavailable.
func classify(err error) error {
	for _, target := range []error{
		nats.ErrNoResponders, jetstream.ErrNoStreamResponse,
		nats.ErrConnectionClosed, jetstream.ErrConnectionClosed,
		nats.ErrConnectionDraining, nats.ErrConnectionReconnecting,
		nats.ErrDisconnected, nats.ErrStaleConnection, nats.ErrReconnectBufExceeded,
		nats.ErrTimeout, jetstream.ErrAsyncPublishTimeout, context.DeadlineExceeded,
		jetstream.ErrTooManyStalledMsgs, jetstream.ErrJetStreamPublisherClosed,
		jetstream.ErrJetStreamNotEnabled, jetstream.ErrJetStreamNotEnabledForAccount,
	} {
		if errors.Is(err, target) {
			return outbox.Unavailable(err)
		}
	}
	return err
}
