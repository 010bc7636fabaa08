package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// StatusError is a response other than 2xx. The sink returns it plain for
// 408, 429, 5xx and other statuses (transient, counted) and wrapped with
// outbox.Permanent for the other 4xx.
type StatusError struct {
	URL        string // password and query values redacted
	StatusCode int
	Status     string // e.g. "503 Service Unavailable"; secrets redacted
	// Body is the start of the response body, at most 256 bytes of it,
	// with the sink's secrets redacted (see the package doc).
	Body string
	// RetryAfter is the wait the response's Retry-After asked for; see
	// the RetryAfter func.
	RetryAfter    time.Duration
	hasRetryAfter bool
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "webhook: POST %s: %s", e.URL, e.Status)
	if e.hasRetryAfter {
		fmt.Fprintf(&b, " (retry after %v)", e.RetryAfter)
	}
	if body := strings.TrimSpace(e.Body); body != "" {
		fmt.Fprintf(&b, ": %q", body)
	}
	return b.String()
}

// RetryDelay reports the wait the response's Retry-After asked for; the
// relay honours it (outbox.RetryAfter).
func (e *StatusError) RetryDelay() (time.Duration, bool) { return e.RetryAfter, e.hasRetryAfter }

// RetryAfter returns the wait that the receiver asked for with a
// Retry-After header (seconds or an HTTP date; a date in the past is 0),
// if err, or an error it wraps, is a *StatusError of a response that had
// one. A relay or a wrapping sink can wait that long before sending the
// message again.
func RetryAfter(err error) (time.Duration, bool) {
	var se *StatusError
	if !errors.As(err, &se) || !se.hasRetryAfter {
		return 0, false
	}
	return se.RetryAfter, true
}

// parseRetryAfter reads a Retry-After value (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}
