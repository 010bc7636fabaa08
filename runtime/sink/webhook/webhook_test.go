package webhook_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink/webhook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	secret   = []byte("s3cr3t-signing-key")
	password = "hunter2-url-password"
	clock    = time.Unix(1767225600, 0)
)

func now() time.Time { return clock }

func msg(i int) outbox.Message {
	return outbox.Message{
		ID:        outbox.MessageID(0, uint64(40+i), 0),
		Topic:     "user.updated",
		Key:       "u-42",
		KeySeq:    uint64(i + 1),
		Version:   uint64(40 + i),
		Payload:   []byte(`{"id":"u-42","n":` + strconv.Itoa(i) + `}`),
		Headers:   map[string]string{"traceparent": "00-abc-def-01"},
		CreatedAt: time.Date(2026, 1, 1, 1, 0, 0, 123456789, time.FixedZone("CET", 3600)),
	}
}

// withPassword puts userinfo into a server's URL, so tests see that its
// password does not leak.
func withPassword(u string) string {
	return strings.Replace(u, "http://", "http://theus:"+password+"@", 1)
}

// newSink returns a sink to url, closed at the end of the test.
func newSink(t *testing.T, url string, opts ...webhook.Option) *webhook.Sink {
	t.Helper()
	s, err := webhook.New(url, secret, append([]webhook.Option{webhook.WithClock(now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// server starts a test server, closed at the end of the test.
func server(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// hanging returns a server that never answers: each request calls
// arrived (if not nil) and then waits until the client hangs up.
func hanging(t *testing.T, arrived func()) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		// The server watches for the client hanging up, which ends the
		// request's context, only once the body is read.
		io.Copy(io.Discard, r.Body)
		if arrived != nil {
			arrived()
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	// Cleanups run last first: this frees a handler the server never saw
	// hang up before Close waits for it.
	t.Cleanup(func() { close(release) })
	return srv
}

// assertNoSecret fails if err's text, in any form, holds the secret (raw or
// hex) or the URL's password.
func assertNoSecret(t *testing.T, err error) {
	t.Helper()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		s := fmt.Sprintf(verb, err)
		for _, bad := range []string{string(secret), hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret)), password} {
			if strings.Contains(s, bad) {
				t.Errorf("error formatted with %s leaks %q: %s", verb, bad, s)
			}
		}
	}
}

// The fault-injection table of issue 6: each response or failure ends in
// the class the package doc gives it.
func TestFaults(t *testing.T) {
	const (
		delivered   = "delivered"
		permanent   = "permanent"   // outbox.Permanent: parked at once
		unavailable = "unavailable" // outbox.Unavailable: retried, not counted
		retried     = "retried"     // plain error: retried, counted
	)
	status := func(code int, hdr ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(hdr); i += 2 {
				w.Header().Set(hdr[i], hdr[i+1])
			}
			w.WriteHeader(code)
			io.WriteString(w, http.StatusText(code))
		}
	}
	var redirected sync.Mutex
	redirectHit := false
	tests := []struct {
		name       string
		handler    http.HandlerFunc // nil: nothing listens
		want       string
		retryAfter time.Duration // wanted RetryAfter(err); -1: none
		timeout    bool
	}{
		{name: "200", handler: status(200), want: delivered, retryAfter: -1},
		{name: "204", handler: status(204), want: delivered, retryAfter: -1},
		{name: "409", handler: status(409), want: permanent, retryAfter: -1},
		{name: "400", handler: status(400), want: permanent, retryAfter: -1},
		{name: "404", handler: status(404), want: permanent, retryAfter: -1},
		{name: "408", handler: status(408), want: retried, retryAfter: -1},
		{name: "429 Retry-After seconds", handler: status(429, "Retry-After", "7"), want: retried, retryAfter: 7 * time.Second},
		{name: "500", handler: status(500), want: retried, retryAfter: -1},
		{name: "503 Retry-After date", handler: status(503, "Retry-After", clock.Add(90*time.Second).UTC().Format(http.TimeFormat)), want: retried, retryAfter: 90 * time.Second},
		{name: "503 Retry-After past date", handler: status(503, "Retry-After", clock.Add(-time.Hour).UTC().Format(http.TimeFormat)), want: retried, retryAfter: 0},
		{name: "503 Retry-After garbage", handler: status(503, "Retry-After", "soon"), want: retried, retryAfter: -1},
		{name: "500 echoing the secret", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			fmt.Fprintf(w, "bad %s %s", secret, hex.EncodeToString(secret))
		}, want: retried, retryAfter: -1},
		{name: "302 not followed", handler: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				redirected.Lock()
				redirectHit = true
				redirected.Unlock()
				return
			}
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, want: retried, retryAfter: -1},
		{name: "slow beyond timeout", want: retried, retryAfter: -1, timeout: true},
		{name: "connection refused", want: unavailable, retryAfter: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var url string
			switch {
			case tt.timeout:
				url = hanging(t, nil).URL
			case tt.handler != nil:
				url = server(t, tt.handler).URL
			default:
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				url = "http://" + ln.Addr().String()
				ln.Close()
			}
			s := newSink(t, withPassword(url)+"/hook", webhook.WithTimeout(100*time.Millisecond))
			n, err := s.Send(context.Background(), []outbox.Message{msg(0)})

			got := delivered
			switch {
			case outbox.IsPermanent(err) && outbox.IsUnavailable(err):
				t.Fatalf("err is both permanent and unavailable: %v", err)
			case outbox.IsPermanent(err):
				got = permanent
			case outbox.IsUnavailable(err):
				got = unavailable
			case err != nil:
				got = retried
			}
			if got != tt.want {
				t.Fatalf("Send: %s (err %v), want %s", got, err, tt.want)
			}
			if wantN := map[bool]int{true: 1, false: 0}[tt.want == delivered]; n != wantN {
				t.Errorf("Send: n = %d, want %d", n, wantN)
			}
			d, ok := webhook.RetryAfter(err)
			if tt.retryAfter < 0 && ok {
				t.Errorf("RetryAfter = %v, want none", d)
			}
			if tt.retryAfter >= 0 && (!ok || d != tt.retryAfter) {
				t.Errorf("RetryAfter = %v, %t; want %v", d, ok, tt.retryAfter)
			}
			if tt.timeout && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want one matching context.DeadlineExceeded", err)
			}
			if err != nil {
				t.Logf("err: %v", err)
				assertNoSecret(t, err)
			}
		})
	}
	redirected.Lock()
	defer redirected.Unlock()
	if redirectHit {
		t.Error("the sink followed a redirect")
	}
}

func TestStatusErrorText(t *testing.T) {
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, strings.Repeat("x", 1000))
	})
	_, err := newSink(t, srv.URL).Send(context.Background(), []outbox.Message{msg(0)})
	var se *webhook.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want a *StatusError", err)
	}
	if se.StatusCode != 503 || len(se.Body) != 256 {
		t.Errorf("StatusCode %d, len(Body) %d; want 503, 256", se.StatusCode, len(se.Body))
	}
	if want := "webhook: POST " + srv.URL + ": 503 Service Unavailable (retry after 3s): \"xxx"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %.80s…, want prefix %s", err, want)
	}
}

// received is what a recording server saw.
type received struct {
	header http.Header
	body   []byte
}

// recorder returns a server that records each request and answers with
// status(request) (200 when nil), and the function that returns the
// requests so far.
func recorder(t *testing.T, status func(received) int) (*httptest.Server, func() []received) {
	var mu sync.Mutex
	var reqs []received
	srv := server(t, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		rec := received{header: r.Header.Clone(), body: body}
		mu.Lock()
		reqs = append(reqs, rec)
		mu.Unlock()
		code := 200
		if status != nil {
			code = status(rec)
		}
		w.WriteHeader(code)
	})
	return srv, func() []received {
		mu.Lock()
		defer mu.Unlock()
		return append([]received(nil), reqs...)
	}
}

func TestSignature(t *testing.T) {
	srv, reqs := recorder(t, nil)
	s := newSink(t, srv.URL, webhook.WithHeader("Authorization", "Bearer tok"), webhook.WithHeader("X-Tenant", "acme"))
	m := msg(0)
	if n, err := s.Send(context.Background(), []outbox.Message{m}); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	r := reqs()[0]
	for k, want := range map[string]string{
		"Content-Type":      "application/json",
		"Idempotency-Key":   m.ID,
		"X-Theus-Timestamp": "1767225600",
		"Authorization":     "Bearer tok",
		"X-Tenant":          "acme",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}

	// The recipe of the package doc, by hand.
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(r.header.Get("X-Theus-Timestamp") + "." + string(r.body)))
	if got, want := r.header.Get("X-Theus-Signature"), "v1="+hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("X-Theus-Signature = %s, want %s", got, want)
	}

	if err := webhook.Verify(secret, r.header, r.body, clock.Add(time.Minute), 0); err != nil {
		t.Errorf("Verify: %v", err)
	}
	rotated := r.header.Clone()
	rotated.Set("X-Theus-Signature", "v1=00ff, "+r.header.Get("X-Theus-Signature"))
	if err := webhook.Verify(secret, rotated, r.body, clock, 0); err != nil {
		t.Errorf("Verify with a list of signatures: %v", err)
	}

	tampered := bytes.Replace(r.body, []byte(`"n":0`), []byte(`"n":1`), 1)
	laterTS := r.header.Clone()
	laterTS.Set("X-Theus-Timestamp", "1767225601")
	noSig := r.header.Clone()
	noSig.Del("X-Theus-Signature")
	badTS := r.header.Clone()
	badTS.Set("X-Theus-Timestamp", "yesterday")
	for _, tc := range []struct {
		name   string
		secret []byte
		header http.Header
		body   []byte
		now    time.Time
		want   error
	}{
		{"tampered body", secret, r.header, tampered, clock, webhook.ErrSignatureMismatch},
		{"tampered timestamp", secret, laterTS, r.body, clock, webhook.ErrSignatureMismatch},
		{"wrong secret", []byte("other"), r.header, r.body, clock, webhook.ErrSignatureMismatch},
		{"too old", secret, r.header, r.body, clock.Add(6 * time.Minute), webhook.ErrStaleTimestamp},
		{"from the future", secret, r.header, r.body, clock.Add(-6 * time.Minute), webhook.ErrStaleTimestamp},
		{"no signature", secret, noSig, r.body, clock, webhook.ErrNoSignature},
		{"bad timestamp", secret, badTS, r.body, clock, webhook.ErrBadTimestamp},
	} {
		err := webhook.Verify(tc.secret, tc.header, tc.body, tc.now, 0)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.want)
		}
		assertNoSecret(t, err)
	}
}

func TestEnvelope(t *testing.T) {
	srv, reqs := recorder(t, nil)
	s := newSink(t, srv.URL)
	jsonMsg := msg(0)
	binMsg := msg(1)
	binMsg.Payload = []byte{0xff, 0x00, 'x'}
	binMsg.Headers = nil
	if n, err := s.Send(context.Background(), []outbox.Message{jsonMsg, binMsg}); n != 2 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	type env struct {
		ID              string            `json:"id"`
		Topic           string            `json:"topic"`
		Key             string            `json:"key"`
		KeySeq          uint64            `json:"key_seq"`
		Version         uint64            `json:"version"`
		CreatedAt       string            `json:"created_at"`
		Headers         map[string]string `json:"headers"`
		PayloadEncoding string            `json:"payload_encoding"`
		Payload         json.RawMessage   `json:"payload"`
	}
	var got [2]env
	for i, r := range reqs() {
		dec := json.NewDecoder(bytes.NewReader(r.body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&got[i]); err != nil {
			t.Fatalf("request %d: %v: %s", i, err, r.body)
		}
	}
	want := env{
		ID: jsonMsg.ID, Topic: "user.updated", Key: "u-42", KeySeq: 1, Version: 40,
		CreatedAt: "2026-01-01T00:00:00.123456789Z",
		Headers:   map[string]string{"traceparent": "00-abc-def-01"},
	}
	if g := got[0]; g.ID != want.ID || g.Topic != want.Topic || g.Key != want.Key || g.KeySeq != want.KeySeq ||
		g.Version != want.Version || g.CreatedAt != want.CreatedAt || fmt.Sprint(g.Headers) != fmt.Sprint(want.Headers) {
		t.Errorf("envelope = %+v, want %+v", g, want)
	}
	if got[0].PayloadEncoding != "json" || string(got[0].Payload) != string(jsonMsg.Payload) {
		t.Errorf("JSON payload: %s %s, want json %s", got[0].PayloadEncoding, got[0].Payload, jsonMsg.Payload)
	}
	var b64 string
	if err := json.Unmarshal(got[1].Payload, &b64); err != nil || got[1].PayloadEncoding != "base64" {
		t.Fatalf("binary payload: %s %s (%v), want base64", got[1].PayloadEncoding, got[1].Payload, err)
	}
	if raw, err := base64.StdEncoding.DecodeString(b64); err != nil || !bytes.Equal(raw, binMsg.Payload) {
		t.Errorf("binary payload decodes to %x (%v), want %x", raw, err, binMsg.Payload)
	}
	if got[1].Headers == nil {
		t.Error(`nil message headers: want "headers": {}`)
	}
}

// A batch goes one message at a time, in order, and stops at the first
// failure, whose index is n.
func TestBatchStopsAtFirstFailure(t *testing.T) {
	batch := []outbox.Message{msg(0), msg(1), msg(2), msg(3), msg(4)}
	srv, reqs := recorder(t, func(r received) int {
		if r.header.Get("Idempotency-Key") == batch[2].ID {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	n, err := newSink(t, srv.URL).Send(context.Background(), batch)
	if n != 2 || err == nil || outbox.IsPermanent(err) {
		t.Fatalf("Send = %d, %v; want 2 and a transient error", n, err)
	}
	var ids []string
	for _, r := range reqs() {
		ids = append(ids, r.header.Get("Idempotency-Key"))
	}
	if want := []string{batch[0].ID, batch[1].ID, batch[2].ID}; fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("requests for %v, want %v", ids, want)
	}

	if n, err := newSink(t, srv.URL).Send(context.Background(), nil); n != 0 || err != nil {
		t.Errorf("empty batch: Send = %d, %v", n, err)
	}
}

// A relay stopping mid-request gets an error, not a delivery.
func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	srv := hanging(t, cancel)
	n, err := newSink(t, srv.URL).Send(ctx, []outbox.Message{msg(0)})
	if n != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("Send = %d, %v; want 0, context.Canceled", n, err)
	}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		secret    []byte
		opts      []webhook.Option
	}{
		{"bad port", "http://theus:" + password + "@host:port/x", secret, nil},
		{"bad escape", "http://theus:" + password + "@host/%zz", secret, nil},
		{"scheme", "ftp://theus:" + password + "@host/x", secret, nil},
		{"no host", "http:///x", secret, nil},
		{"empty secret", "http://host/x", nil, nil},
		{"reserved header", "http://host/x", secret, []webhook.Option{webhook.WithHeader("X-Theus-Signature", "v1=00")}},
	} {
		s, err := webhook.New(tc.url, tc.secret, tc.opts...)
		if err == nil {
			s.Close()
			t.Errorf("%s: New(%q) succeeded", tc.name, tc.url)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		assertNoSecret(t, err)
	}

	s := newSink(t, "https://theus:"+password+"@example.com/hook")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		str := fmt.Sprintf(verb, s)
		if strings.Contains(str, password) || strings.Contains(str, string(secret)) || strings.Contains(str, hex.EncodeToString(secret)) {
			t.Errorf("sink formatted with %s leaks: %s", verb, str)
		}
	}
}

// Verify refuses an empty secret, as New does: an HMAC under an empty key
// is one anybody can compute.
func TestVerifyRefusesEmptySecret(t *testing.T) {
	body := []byte(`{"id":"x"}`)
	h := http.Header{}
	h.Set(webhook.HeaderTimestamp, "1767225600")
	h.Set(webhook.HeaderIdempotencyKey, "x")
	h.Set(webhook.HeaderSignature, webhook.Sign(nil, "1767225600", body))
	for _, s := range [][]byte{nil, {}} {
		if err := webhook.Verify(s, h, body, clock, 0); !errors.Is(err, webhook.ErrEmptySecret) {
			t.Errorf("Verify(%q) = %v, want ErrEmptySecret", s, err)
		}
	}
	if _, err := webhook.New("http://host/x", nil); !errors.Is(err, webhook.ErrEmptySecret) {
		t.Errorf("New with no secret: %v, want ErrEmptySecret", err)
	}
}

// The signature covers the body, which holds the message ID; the
// Idempotency-Key header is a copy of it, and Verify refuses a request
// whose header says otherwise, so a replayed request cannot pass a
// receiver's dedup by changing the header.
func TestVerifyChecksIdempotencyKey(t *testing.T) {
	srv, reqs := recorder(t, nil)
	m := msg(0)
	if n, err := newSink(t, srv.URL).Send(context.Background(), []outbox.Message{m}); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	r := reqs()[0]
	if err := webhook.Verify(secret, r.header, r.body, clock, 0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	other := r.header.Clone()
	other.Set(webhook.HeaderIdempotencyKey, outbox.MessageID(0, 99, 0))
	missing := r.header.Clone()
	missing.Del(webhook.HeaderIdempotencyKey)
	for name, h := range map[string]http.Header{"changed": other, "missing": missing} {
		if err := webhook.Verify(secret, h, r.body, clock, 0); !errors.Is(err, webhook.ErrIdempotencyKeyMismatch) {
			t.Errorf("%s Idempotency-Key: Verify = %v, want ErrIdempotencyKeyMismatch", name, err)
		}
	}
}

// Credentials the sink is configured with (header values, the URL's query
// values and password) stay out of errors, however a receiver echoes them:
// in its body, even where the quote is cut, and in its status line.
func TestErrorsHoldNoConfiguredSecret(t *testing.T) {
	const (
		bearer = "htok-456-a-long-bearer-token"
		apiKey = "k-789-api-key"
		qtok   = "qtok-123-query-token"
		qsig   = "a/b+c" // sent escaped: a%2Fb%2Bc
	)
	query := "?token=" + qtok + "&sig=" + url.QueryEscape(qsig) + "&bare"
	leaks := []string{bearer, apiKey, qtok, qsig, url.QueryEscape(qsig), "bare",
		base64.StdEncoding.EncodeToString([]byte("theus:" + password))}
	echo := func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "auth=%s key=%s uri=%s sig=%s ",
			r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), r.URL.RequestURI(), r.URL.Query().Get("sig"))
	}
	cut := func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusInternalServerError)
		// The token straddles the end of the quoted 256 bytes: its first
		// 6 bytes are in the quote.
		io.WriteString(w, strings.Repeat(".", 256-len("Bearer ")-6)+r.Header.Get("Authorization"))
	}
	status := func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 503 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", r.Header.Get("X-Api-Key"))
		buf.Flush()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()
	withHeaders := []webhook.Option{webhook.WithHeader("Authorization", "Bearer "+bearer), webhook.WithHeader("X-Api-Key", apiKey)}

	for _, tc := range []struct {
		name string
		url  string
		opts []webhook.Option
	}{
		{"echo", server(t, echo).URL, withHeaders},
		{"echo basic auth", withPassword(server(t, echo).URL), []webhook.Option{webhook.WithHeader("X-Api-Key", apiKey)}},
		{"quote cut", server(t, cut).URL, withHeaders},
		{"status line", server(t, status).URL, withHeaders},
		{"connection refused", refused, withHeaders},
		{"timeout", hanging(t, nil).URL, withHeaders},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSink(t, tc.url+"/hook"+query, append(tc.opts, webhook.WithTimeout(100*time.Millisecond))...)
			_, err := s.Send(context.Background(), []outbox.Message{msg(0)})
			if err == nil {
				t.Fatal("Send succeeded")
			}
			t.Logf("err: %v", err)
			assertNoSecret(t, err)
			for _, verb := range []string{"%v", "%+v", "%#v", "%q"} {
				text := fmt.Sprintf(verb, err)
				for _, bad := range leaks {
					if strings.Contains(text, bad) {
						t.Errorf("error formatted with %s leaks %q: %s", verb, bad, text)
					}
				}
				if strings.Contains(text, bearer[:6]) {
					t.Errorf("error formatted with %s leaks the start of the bearer token: %s", verb, text)
				}
			}
			if str := s.String(); strings.Contains(str, qtok) {
				t.Errorf("String() = %s leaks the query token", str)
			}
		})
	}
	if _, err := webhook.New("ftp://host/hook"+query, secret); err == nil || strings.Contains(err.Error(), qtok) {
		t.Errorf("New with a bad scheme: %v", err)
	}
}
