package amqp

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/theus-go/theus/runtime/outbox"
)

// The headers the sink sets on every message, besides the message's own.
// The message ID travels in the MessageId property and the commit time,
// to the second, in Timestamp; Theus-Created-At keeps its nanoseconds.
const (
	HeaderTopic   = "theus-topic"
	HeaderKey     = "theus-key"
	HeaderKeySeq  = "theus-key-seq"    // decimal string
	HeaderVersion = "theus-version"    // decimal string
	HeaderCreated = "theus-created-at" // RFC 3339 with nanoseconds, UTC
)

// Defaults for the options.
const (
	DefaultMaxInFlight    = 256
	DefaultConfirmTimeout = 5 * time.Second
	DefaultDialTimeout    = 5 * time.Second
	DefaultBackoffMin     = 100 * time.Millisecond
	DefaultBackoffMax     = 10 * time.Second
)

// maxShortStr is the longest AMQP short string: a routing key or an
// exchange name.
const maxShortStr = 255

// ErrReturned is wrapped by the error of a message the broker returned: it
// was published mandatory and no queue was bound to take it. The error is
// a *ReturnedError with the broker's reply.
var ErrReturned = errors.New("amqp: message returned unroutable")

// ErrNacked is wrapped by the error of a message the broker refused with a
// basic.nack (a queue full with overflow reject-publish, an internal
// error).
var ErrNacked = errors.New("amqp: message nacked by the broker")

// ErrClosed is wrapped by the error of a Send on a closed Sink.
var ErrClosed = errors.New("amqp: sink closed")

// ReturnedError is the error of a message the broker returned.
type ReturnedError struct {
	ID         string // the message ID
	Exchange   string
	RoutingKey string
	ReplyCode  uint16 // 312 NO_ROUTE for a message no queue takes
	ReplyText  string
}

func (e *ReturnedError) Error() string {
	return fmt.Sprintf("amqp: message %s returned by exchange %q with routing key %q: %d %s",
		e.ID, e.Exchange, e.RoutingKey, e.ReplyCode, e.ReplyText)
}

func (e *ReturnedError) Unwrap() error { return ErrReturned }

// Sink publishes messages to a RabbitMQ exchange with publisher confirms.
// It owns its connection: it dials lazily, redials with backoff after the
// connection is lost, and Close closes it. It is safe for concurrent use;
// Sends run one at a time.
type Sink struct {
	url      string // holds the password: never in an error
	safeURL  string
	exchange string
	key      func(outbox.Message) string
	mand     bool
	persist  bool
	ctype    string
	inFlight int
	timeout  time.Duration
	config   amqp.Config
	dialTO   time.Duration
	bmin     time.Duration
	bmax     time.Duration

	mu       sync.Mutex // serialises Send, Close and the connection state below
	conn     *amqp.Connection
	ch       *amqp.Channel
	returns  chan amqp.Return
	chClose  chan *amqp.Error
	blocks   chan amqp.Blocking // the connection's blocked/unblocked notices
	blocked  *amqp.Blocking     // the last one that said blocked, nil when not
	backoff  time.Duration      // the wait after the last failed dial
	nextDial time.Time          // no dial before this
	dialErr  error              // the last failed dial's
	closed   bool
}

var _ outbox.Sink = (*Sink)(nil)

// Option configures a Sink.
type Option func(*Sink) error

// WithRoutingKey sets the function that gives a message's routing key
// (default: the message key). A routing key longer than 255 bytes makes
// the message permanent.
func WithRoutingKey(f func(outbox.Message) string) Option {
	return func(s *Sink) error {
		if f == nil {
			return errors.New("amqp: WithRoutingKey: nil func")
		}
		s.key = f
		return nil
	}
}

// WithMandatory sets the mandatory flag (default true): the broker returns
// a message no queue takes, and Send reports it as an error (ErrReturned)
// instead of counting it delivered. Without it such a message is dropped
// by the broker and counts as delivered.
func WithMandatory(on bool) Option {
	return func(s *Sink) error {
		s.mand = on
		return nil
	}
}

// WithTransient publishes messages non-persistent (delivery mode 1): a
// broker restart loses those in a durable queue not yet consumed. The
// default is persistent (2).
func WithTransient() Option {
	return func(s *Sink) error {
		s.persist = false
		return nil
	}
}

// WithContentType sets the ContentType property of every message, such as
// "application/json" (default: none).
func WithContentType(ct string) Option {
	return func(s *Sink) error {
		s.ctype = ct
		return nil
	}
}

// WithMaxInFlight bounds the messages published and not yet confirmed
// (default DefaultMaxInFlight); n < 1 means 1, one at a time.
func WithMaxInFlight(n int) Option {
	return func(s *Sink) error {
		s.inFlight = max(n, 1)
		return nil
	}
}

// WithConfirmTimeout bounds the wait for one message's confirm (default
// DefaultConfirmTimeout). A message not confirmed in time is an
// outbox.Unavailable error (the broker is not answering) and the sink
// drops its connection.
func WithConfirmTimeout(d time.Duration) Option {
	return func(s *Sink) error {
		if d <= 0 {
			return fmt.Errorf("amqp: WithConfirmTimeout(%v): must be positive", d)
		}
		s.timeout = d
		return nil
	}
}

// WithConfig sets the amqp091 Config the sink dials with: TLS, SASL,
// heartbeat, vhost, connection properties. Its Dial is replaced by one
// with WithDialTimeout's timeout unless set, and its Recovery is ignored:
// the sink reconnects by itself.
func WithConfig(c amqp.Config) Option {
	return func(s *Sink) error {
		s.config = c
		return nil
	}
}

// WithDialTimeout bounds a connection attempt (default
// DefaultDialTimeout).
func WithDialTimeout(d time.Duration) Option {
	return func(s *Sink) error {
		if d <= 0 {
			return fmt.Errorf("amqp: WithDialTimeout(%v): must be positive", d)
		}
		s.dialTO = d
		return nil
	}
}

// WithReconnectBackoff sets the wait after a failed connection attempt
// before the next one: min after the first failure, doubling up to max
// (defaults DefaultBackoffMin, DefaultBackoffMax). A Send in that wait
// fails at once with an outbox.Unavailable error.
func WithReconnectBackoff(minWait, maxWait time.Duration) Option {
	return func(s *Sink) error {
		if minWait <= 0 || maxWait < minWait {
			return fmt.Errorf("amqp: WithReconnectBackoff(%v, %v): want 0 < min <= max", minWait, maxWait)
		}
		s.bmin, s.bmax = minWait, maxWait
		return nil
	}
}

// New returns a sink that publishes to exchange ("" is the default
// exchange, which routes by queue name) on the broker at url
// ("amqp://user:password@host:5672/vhost"). It does not connect: the first
// Send does. The exchange and the queues bound to it must exist; the sink
// declares nothing.
func New(url, exchange string, opts ...Option) (*Sink, error) {
	uri, err := amqp.ParseURI(url)
	if err != nil {
		safe := redact(url)
		return nil, fmt.Errorf("amqp: bad URL %s: %w", safe, scrub(err, url, safe))
	}
	if len(exchange) > maxShortStr {
		return nil, fmt.Errorf("amqp: exchange name of %d bytes, at most %d", len(exchange), maxShortStr)
	}
	s := &Sink{
		url:      url,
		safeURL:  fmt.Sprintf("%s://%s:%d/%s", uri.Scheme, uri.Host, uri.Port, uri.Vhost),
		exchange: exchange,
		key:      func(m outbox.Message) string { return m.Key },
		mand:     true,
		persist:  true,
		inFlight: DefaultMaxInFlight,
		timeout:  DefaultConfirmTimeout,
		dialTO:   DefaultDialTimeout,
		bmin:     DefaultBackoffMin,
		bmax:     DefaultBackoffMax,
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// redact hides the password of an AMQP URL.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

// Close closes the sink's connection. Sends after it fail with ErrClosed
// (outbox.Unavailable). Close it after the relay stopped.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn == nil {
		return nil
	}
	conn := s.conn
	s.conn, s.ch = nil, nil
	if conn.IsClosed() {
		return nil
	}
	if err := conn.CloseDeadline(time.Now().Add(s.dialTO)); err != nil && !errors.Is(err, amqp.ErrClosed) {
		return fmt.Errorf("amqp: close %s: %w", s.safeURL, err)
	}
	return nil
}

// channel returns the sink's confirming channel, dialing and opening it
// when it has none or lost it. Called with s.mu held.
func (s *Sink) channel() (*amqp.Channel, error) {
	if s.closed {
		return nil, outbox.Unavailable(ErrClosed)
	}
	if s.ch != nil && !s.ch.IsClosed() {
		return s.ch, nil
	}
	s.ch = nil
	if s.conn != nil && s.conn.IsClosed() {
		s.conn = nil
	}
	if s.conn == nil {
		if wait := time.Until(s.nextDial); wait > 0 {
			return nil, outbox.Unavailable(fmt.Errorf("amqp: %s: next connection attempt in %v after: %w",
				s.safeURL, wait.Round(time.Millisecond), s.dialErr))
		}
		cfg := s.config
		cfg.Recovery = nil
		if cfg.Dial == nil {
			cfg.Dial = amqp.DefaultDial(s.dialTO)
		}
		conn, err := amqp.DialConfig(s.url, cfg)
		if err != nil {
			s.backoff = min(max(2*s.backoff, s.bmin), s.bmax)
			s.nextDial = time.Now().Add(s.backoff)
			s.dialErr = scrub(err, s.url, s.safeURL)
			return nil, outbox.Unavailable(fmt.Errorf("amqp: connect %s: %w", s.safeURL, s.dialErr))
		}
		s.conn, s.backoff, s.dialErr, s.blocked = conn, 0, nil, nil
		s.blocks = conn.NotifyBlocked(make(chan amqp.Blocking, 8))
	}
	ch, err := s.conn.Channel()
	if err == nil {
		if err = ch.Confirm(false); err != nil {
			_ = ch.Close()
		}
	}
	if err != nil {
		s.dropConn()
		return nil, outbox.Unavailable(fmt.Errorf("amqp: open a confirming channel on %s: %w", s.safeURL, err))
	}
	// Each in-flight message is returned at most once, and the sink reads
	// the returns before it counts the confirm that follows them, so this
	// buffer never fills.
	s.returns = ch.NotifyReturn(make(chan amqp.Return, s.inFlight+1))
	s.chClose = ch.NotifyClose(make(chan *amqp.Error, 1))
	s.ch = ch
	return ch, nil
}

// scrub makes sure an error text does not hold the URL with its password.
func scrub(err error, raw, safe string) error {
	if raw != "" && strings.Contains(err.Error(), raw) {
		return errors.New(strings.ReplaceAll(err.Error(), raw, safe))
	}
	return err
}

// dropConn closes and forgets the connection, after an error that leaves
// its state unknown (a confirm timeout, a cancelled Send). Called with
// s.mu held.
func (s *Sink) dropConn() {
	if s.conn != nil && !s.conn.IsClosed() {
		_ = s.conn.CloseDeadline(time.Now().Add(time.Second))
	}
	s.conn, s.ch = nil, nil
}

// dropChannel closes and forgets the channel, keeping the connection.
// Called with s.mu held.
func (s *Sink) dropChannel() {
	if s.ch != nil && !s.ch.IsClosed() {
		_ = s.ch.Close()
	}
	s.ch = nil
}

// Publishing builds the AMQP message for m (routing key and publishing) as
// Send publishes it.
func (s *Sink) Publishing(m outbox.Message) (routingKey string, p amqp.Publishing, err error) {
	routingKey = s.key(m)
	if len(routingKey) > maxShortStr {
		return "", p, fmt.Errorf("amqp: message %s: routing key of %d bytes, at most %d", m.ID, len(routingKey), maxShortStr)
	}
	h := make(amqp.Table, len(m.Headers)+5)
	for k, v := range m.Headers {
		if isReserved(k) {
			continue
		}
		h[k] = v
	}
	h[HeaderTopic] = m.Topic
	h[HeaderKey] = m.Key
	h[HeaderKeySeq] = strconv.FormatUint(m.KeySeq, 10)
	h[HeaderVersion] = strconv.FormatUint(m.Version, 10)
	if !m.CreatedAt.IsZero() {
		h[HeaderCreated] = m.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	p = amqp.Publishing{
		Headers:     h,
		ContentType: s.ctype,
		MessageId:   m.ID,
		Timestamp:   m.CreatedAt,
		Type:        m.Topic,
		Body:        m.Payload,
	}
	if s.persist {
		p.DeliveryMode = amqp.Persistent
	} else {
		p.DeliveryMode = amqp.Transient
	}
	return routingKey, p, nil
}

// isReserved reports whether a message header would steer the broker
// (x-*, and CC and BCC, which add routing keys) or clash with the sink's
// own (theus-*); such headers are not carried.
func isReserved(k string) bool {
	k = strings.ToLower(k)
	return strings.HasPrefix(k, "x-") || strings.HasPrefix(k, "theus-") || k == "cc" || k == "bcc"
}

// Decode rebuilds the outbox message from a delivery of a message the
// sink published: for consumers, to feed outbox.Dedup. The theus headers
// are removed from Headers, and only string headers are kept.
func Decode(d amqp.Delivery) (outbox.Message, error) {
	m := outbox.Message{ID: d.MessageId, Payload: d.Body}
	str := func(k string) string { v, _ := d.Headers[k].(string); return v }
	m.Topic, m.Key = str(HeaderTopic), str(HeaderKey)
	var err error
	if m.KeySeq, err = strconv.ParseUint(str(HeaderKeySeq), 10, 64); err != nil {
		return m, fmt.Errorf("amqp: message %s: %s: %w", m.ID, HeaderKeySeq, err)
	}
	if m.Version, err = strconv.ParseUint(str(HeaderVersion), 10, 64); err != nil {
		return m, fmt.Errorf("amqp: message %s: %s: %w", m.ID, HeaderVersion, err)
	}
	if c := str(HeaderCreated); c != "" {
		if m.CreatedAt, err = time.Parse(time.RFC3339Nano, c); err != nil {
			return m, fmt.Errorf("amqp: message %s: %s: %w", m.ID, HeaderCreated, err)
		}
	}
	for k, v := range d.Headers {
		s, ok := v.(string)
		if !ok || isReserved(k) {
			continue
		}
		if m.Headers == nil {
			m.Headers = make(map[string]string)
		}
		m.Headers[k] = s
	}
	return m, nil
}

// Send publishes batch on one confirming channel and waits for the
// broker's confirms. Messages of different (topic, key)s are pipelined, at
// most WithMaxInFlight unconfirmed at a time; a message is published only
// after the one before it of the same (topic, key) was confirmed, so a
// message the broker refuses is never overtaken by a later one of its
// key. Send returns the number of leading messages the broker confirmed
// (basic.ack, and not returned) and the error of the first that was not.
func (s *Sink) Send(ctx context.Context, batch []outbox.Message) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}
	ch, err := s.channel()
	if err != nil {
		return 0, err
	}
	if err := s.checkBlocked(); err != nil {
		return 0, err
	}
	type pending struct {
		dc *amqp.DeferredConfirmation
		tk outbox.TopicKey
	}
	queue := make([]pending, 0, min(len(batch), s.inFlight))
	busy := make(map[outbox.TopicKey]bool, min(len(batch), s.inFlight))
	var returned map[string]amqp.Return
	acked := 0 // leading messages confirmed; queue holds batch[acked:acked+len(queue)]
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	// wait waits for the confirm of batch[acked]. Its error leaves the
	// channel or the connection dropped when their state is unknown.
	wait := func() error {
		p, m := queue[0], batch[acked]
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(s.timeout)
		select {
		case <-p.dc.Done():
		case <-timer.C:
			s.dropConn()
			return outbox.Unavailable(fmt.Errorf("amqp: publish %s to %s: no confirm within %v", m.ID, s.safeURL, s.timeout))
		case <-ctx.Done():
			s.dropConn()
			return fmt.Errorf("amqp: publish %s: %w", m.ID, ctx.Err())
		}
		// A return comes before the confirm of its message.
		for drained := false; !drained; {
			select {
			case r, ok := <-s.returns:
				if !ok { // closed with the channel
					drained = true
					break
				}
				if returned == nil {
					returned = make(map[string]amqp.Return)
				}
				returned[r.MessageId] = r
			default:
				drained = true
			}
		}
		if !p.dc.Acked() {
			if ch.IsClosed() { // the channel's end nacks what it had pending
				return s.lost(m.ID)
			}
			return fmt.Errorf("amqp: publish %s to exchange %q: %w", m.ID, s.exchange, ErrNacked)
		}
		if r, ok := returned[m.ID]; ok {
			return &ReturnedError{ID: m.ID, Exchange: r.Exchange, RoutingKey: r.RoutingKey, ReplyCode: r.ReplyCode, ReplyText: r.ReplyText}
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
		rk, pub, err := s.Publishing(m)
		switch {
		case err != nil:
			sendErr = outbox.Permanent(err)
		case ctx.Err() != nil:
			sendErr = fmt.Errorf("amqp: publish %s: %w", m.ID, ctx.Err())
		default:
			dc, err := ch.PublishWithDeferredConfirm(s.exchange, rk, s.mand, false, pub)
			if err == nil {
				queue = append(queue, pending{dc: dc, tk: tk})
				busy[tk] = true
				continue
			}
			if ch.IsClosed() {
				sendErr = s.lost(m.ID)
			} else {
				sendErr = fmt.Errorf("amqp: publish %s to exchange %q: %w", m.ID, s.exchange, err)
			}
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

// checkBlocked reads the connection's blocked notices and fails while the
// broker blocks publishers (a memory or disk alarm): a publish then hangs
// in the socket until the alarm clears, past any confirm timeout. Called
// with s.mu held.
func (s *Sink) checkBlocked() error {
	for {
		select {
		case b, ok := <-s.blocks:
			if !ok {
				return nil // the connection closed: the publish says so
			}
			if b.Active {
				s.blocked = &b
			} else {
				s.blocked = nil
			}
			continue
		default:
		}
		break
	}
	if s.blocked != nil {
		return outbox.Unavailable(fmt.Errorf("amqp: %s blocks publishers: %s", s.safeURL, s.blocked.Reason))
	}
	return nil
}

// lost is the error of message id when its channel closed: the broker
// closed the channel over a fault of the publishing, such as an exchange
// that does not exist or access refused (a plain error, counted), or the
// connection is lost (outbox.Unavailable). Called with s.mu held.
func (s *Sink) lost(id string) error {
	var reason *amqp.Error
	select {
	case e, ok := <-s.chClose:
		if ok {
			reason = e
		}
	default:
	}
	if reason != nil && reason.Server && isSoft(reason.Code) && s.conn != nil && !s.conn.IsClosed() {
		s.dropChannel()
		return fmt.Errorf("amqp: publish %s to exchange %q: channel closed by the broker: %w", id, s.exchange, reason)
	}
	s.dropConn()
	var cause error = amqp.ErrClosed
	if reason != nil {
		cause = reason
	}
	return outbox.Unavailable(fmt.Errorf("amqp: publish %s: connection to %s lost: %w", id, s.safeURL, cause))
}

// isSoft reports whether an AMQP reply code is a channel error about what
// was published (AMQP 0-9-1 soft errors), not about the connection.
func isSoft(code int) bool {
	switch code {
	case amqp.ContentTooLarge, amqp.NoRoute, amqp.NoConsumers, amqp.AccessRefused,
		amqp.NotFound, amqp.ResourceLocked, amqp.PreconditionFailed:
		return true
	}
	return false
}
