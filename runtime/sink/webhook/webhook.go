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
	"slices"
	"strconv"
	"strings"
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
	url      string // with its password and query, for requests only
	redacted string // for errors and String: see redactURL
	secret   []byte
	// hidden holds what must not appear in a receiver's text that errors
	// quote, longest first: see secrets.
	hidden  [][]byte
	timeout time.Duration
	client  *http.Client
	own     *http.Transport // the default client's transport, closed by Close
	header  http.Header
	now     func() time.Time
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
		return nil, fmt.Errorf("webhook: URL %s: want http:// or https:// and a host", redactURL(u))
	}
	if len(secret) == 0 {
		return nil, ErrEmptySecret
	}
	s := &Sink{
		url:      rawURL,
		redacted: redactURL(u),
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
	s.hidden = secrets(s.secret, u, s.header)
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
	// Read enough past the quote to see whole any secret that starts in it.
	quote, _ := io.ReadAll(io.LimitReader(resp.Body, int64(bodyQuote+len(s.hidden[0]))))
	serr := &StatusError{
		URL:        s.redacted,
		StatusCode: resp.StatusCode,
		Status:     s.scrub([]byte(resp.Status), len(resp.Status)),
		Body:       s.scrub(quote, bodyQuote),
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

// transportError classifies an error of client.Do.
func (s *Sink) transportError(ctx, rctx context.Context, err error) error {
	if ue, ok := err.(*url.Error); ok {
		// The client strips the URL's password, not its query.
		err = &url.Error{Op: ue.Op, URL: s.redacted, Err: ue.Err}
	}
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

// redactURL returns u as errors and String show it: like u.Redacted, and
// with the value of every query parameter replaced by xxxxx too, since
// receivers often take a token there.
func redactURL(u *url.URL) string {
	r := *u
	if r.RawQuery != "" {
		params := strings.Split(r.RawQuery, "&")
		for i, p := range params {
			if name, _, ok := strings.Cut(p, "="); ok {
				params[i] = name + "=xxxxx"
			} else if p != "" {
				params[i] = "xxxxx" // a bare value may be a token
			}
		}
		r.RawQuery = strings.Join(params, "&")
	}
	return r.Redacted()
}

// secrets returns what a receiver could echo that errors must not quote,
// longest first: the signing secret (raw and hex), the URL's password and
// the Basic credentials the client makes of it, every query value (as
// sent and decoded), and every header value given with WithHeader, with
// its last word alone too (the token of "Bearer <token>").
func secrets(secret []byte, u *url.URL, h http.Header) [][]byte {
	seen := make(map[string]bool)
	var out [][]byte
	add := func(v string) {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, []byte(v))
		}
	}
	add(string(secret))
	add(hex.EncodeToString(secret))
	add(strings.ToUpper(hex.EncodeToString(secret)))
	if pw, ok := u.User.Password(); ok {
		add(pw)
		add(base64.StdEncoding.EncodeToString([]byte(u.User.Username() + ":" + pw)))
	}
	for p := range strings.SplitSeq(u.RawQuery, "&") {
		_, v, ok := strings.Cut(p, "=")
		if !ok {
			v = p
		}
		add(v)
		if dv, err := url.QueryUnescape(v); err == nil {
			add(dv)
		}
	}
	for _, vs := range h {
		for _, v := range vs {
			add(v)
			if f := strings.Fields(v); len(f) > 1 {
				add(f[len(f)-1])
			}
		}
	}
	slices.SortStableFunc(out, func(a, b []byte) int { return len(b) - len(a) })
	return out
}

// scrub returns the first limit bytes of a receiver's text b, with every
// secret that starts in them replaced by [redacted]: a receiver that
// echoes its input must not leak it into errors and logs. b must hold
// the secrets that start before limit whole.
func (s *Sink) scrub(b []byte, limit int) string {
	var out strings.Builder
next:
	for i := 0; i < len(b) && i < limit; {
		for _, h := range s.hidden {
			if bytes.HasPrefix(b[i:], h) {
				out.WriteString("[redacted]")
				i += len(h)
				continue next
			}
		}
		out.WriteByte(b[i])
		i++
	}
	return out.String()
}
