package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
)

// The headers the sink sets on every request.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderTimestamp      = "X-Theus-Timestamp"
	HeaderSignature      = "X-Theus-Signature"
)

// DefaultTimeout bounds one request, from dial to the end of the response
// headers, unless WithTimeout says otherwise.
const DefaultTimeout = 10 * time.Second

// bodyQuote is how much of a refusing response's body an error quotes.
const bodyQuote = 256

// Sink posts messages to one URL. It is safe for concurrent use.
type Sink struct {
	url      string // with its password, for requests only
	redacted string // for errors and String
	secret   []byte
	timeout  time.Duration
	client   *http.Client
	own      *http.Transport // the default client's transport, closed by Close
	header   http.Header
	now      func() time.Time
}

var _ outbox.Sink = (*Sink)(nil)

// Option configures a Sink.
type Option func(*Sink)

// WithTimeout bounds each request (default DefaultTimeout); d <= 0 leaves
// only the client's own limits and the relay's context.
func WithTimeout(d time.Duration) Option {
	return func(s *Sink) { s.timeout = d }
}

// WithHTTPClient sets the client that sends the requests (default: a
// client of the sink's own, with its own connection pool, that does not
// follow redirects). The sink does not close a client given here.
func WithHTTPClient(c *http.Client) Option {
	return func(s *Sink) {
		if c != nil {
			s.client = c
		}
	}
}

// WithHeader adds a header to every request, e.g. an Authorization the
// receiver asks for. Content-Type, Idempotency-Key, X-Theus-Timestamp and
// X-Theus-Signature are the sink's and cannot be set this way.
func WithHeader(key, value string) Option {
	return func(s *Sink) { s.header.Add(key, value) }
}

// WithClock sets the clock for X-Theus-Timestamp and for Retry-After dates
// (default time.Now; for tests).
func WithClock(now func() time.Time) Option {
	return func(s *Sink) {
		if now != nil {
			s.now = now
		}
	}
}

// New returns a sink that posts to rawURL (http or https), signing with
// secret, which must not be empty. The sink keeps a copy of secret.
func New(rawURL string, secret []byte, opts ...Option) (*Sink, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Error quotes the whole URL, password included: keep only the
		// reason.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("webhook: invalid URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("webhook: URL %s: want http:// or https:// and a host", u.Redacted())
	}
	if len(secret) == 0 {
		return nil, errors.New("webhook: empty secret")
	}
	s := &Sink{
		url:      rawURL,
		redacted: u.Redacted(),
		secret:   bytes.Clone(secret),
		timeout:  DefaultTimeout,
		header:   make(http.Header),
		now:      time.Now,
	}
	for _, opt := range opts {
		opt(s)
	}
	for _, k := range []string{"Content-Type", HeaderIdempotencyKey, HeaderTimestamp, HeaderSignature} {
		if s.header.Get(k) != "" {
			return nil, fmt.Errorf("webhook: header %s is set by the sink", k)
		}
	}
	if s.client == nil {
		s.own = http.DefaultTransport.(*http.Transport).Clone()
		s.client = &http.Client{
			Transport: s.own,
			// A redirect would carry the signature and any credentials
			// to another URL, and turn a POST into a GET on 301-303.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return s, nil
}

// Close releases the idle connections of the sink's own client. It does
// nothing to a client given with WithHTTPClient.
func (s *Sink) Close() error {
	if s.own != nil {
		s.own.CloseIdleConnections()
	}
	return nil
}

// String names the sink by its URL, password redacted.
func (s *Sink) String() string { return "webhook.Sink(" + s.redacted + ")" }

// GoString is String, so %#v shows no secret either.
func (s *Sink) GoString() string { return s.String() }

// Send posts the messages of batch one by one, in order, and stops at the
// first that is not delivered, returning its index and its error.
func (s *Sink) Send(ctx context.Context, batch []outbox.Message) (int, error) {
	for i := range batch {
		if err := s.post(ctx, &batch[i]); err != nil {
			return i, err
		}
	}
	return len(batch), nil
}

// envelope is the request body; see the package doc.
type envelope struct {
	ID              string            `json:"id"`
	Topic           string            `json:"topic"`
	Key             string            `json:"key"`
	KeySeq          uint64            `json:"key_seq"`
	Version         uint64            `json:"version"`
	CreatedAt       time.Time         `json:"created_at"`
	Headers         map[string]string `json:"headers"`
	PayloadEncoding string            `json:"payload_encoding"`
	Payload         json.RawMessage   `json:"payload"`
}

// Envelope returns the request body for m.
func Envelope(m outbox.Message) ([]byte, error) {
	e := envelope{
		ID:              m.ID,
		Topic:           m.Topic,
		Key:             m.Key,
		KeySeq:          m.KeySeq,
		Version:         m.Version,
		CreatedAt:       m.CreatedAt.UTC(),
		Headers:         m.Headers,
		PayloadEncoding: "json",
		Payload:         m.Payload,
	}
	if e.Headers == nil {
		e.Headers = map[string]string{}
	}
	if !json.Valid(m.Payload) {
		e.PayloadEncoding = "base64"
		e.Payload, _ = json.Marshal(base64.StdEncoding.EncodeToString(m.Payload))
	}
	return json.Marshal(e)
}

// Sign returns the X-Theus-Signature value for body sent at timestamp
// (the X-Theus-Timestamp value).
func Sign(secret []byte, timestamp string, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func (s *Sink) post(ctx context.Context, m *outbox.Message) error {
	body, err := Envelope(*m)
	if err != nil {
		return outbox.Permanent(fmt.Errorf("webhook: message %s: encode envelope: %w", m.ID, err))
	}
	rctx := ctx
	if s.timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return outbox.Permanent(fmt.Errorf("webhook: POST %s: %v", s.redacted, errors.Unwrap(err)))
	}
	for k, vs := range s.header {
		req.Header[k] = vs
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderIdempotencyKey, m.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(s.secret, ts, body))

	resp, err := s.client.Do(req)
	if err != nil {
		return s.transportError(ctx, rctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Drain a little so the connection can be reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil
	}
	quote, _ := io.ReadAll(io.LimitReader(resp.Body, bodyQuote))
	serr := &StatusError{
		URL:        s.redacted,
		StatusCode: resp.StatusCode,
		Status:     resp.Status,
		Body:       s.scrub(quote),
	}
	serr.RetryAfter, serr.hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), s.now())
	if permanent(resp.StatusCode) {
		return outbox.Permanent(serr)
	}
	return serr
}

// permanent reports whether a status says the receiver refuses the message
// itself: 4xx but for 408 (it gave up waiting) and 429 (it is throttling).
func permanent(code int) bool {
	return code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests
}

// transportError classifies an error of client.Do. The client's errors
// already have the URL's password stripped.
func (s *Sink) transportError(ctx, rctx context.Context, err error) error {
	if ctx.Err() != nil {
		// The relay is stopping; it retries the message later.
		return fmt.Errorf("webhook: POST %s: %w", s.redacted, ctx.Err())
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return outbox.Unavailable(fmt.Errorf("webhook: %w", err))
	}
	if rctx.Err() != nil {
		return fmt.Errorf("webhook: POST %s: no response within %v: %w", s.redacted, s.timeout, context.DeadlineExceeded)
	}
	return fmt.Errorf("webhook: %w", err)
}

// scrub returns b as text with any copy of the secret, raw or hex, taken
// out: a receiver that echoes its input must not leak it into the logs.
func (s *Sink) scrub(b []byte) string {
	b = bytes.ReplaceAll(b, s.secret, []byte("[redacted]"))
	h := hex.EncodeToString(s.secret)
	b = bytes.ReplaceAll(b, []byte(h), []byte("[redacted]"))
	return string(bytes.ReplaceAll(b, bytes.ToUpper([]byte(h)), []byte("[redacted]")))
}
