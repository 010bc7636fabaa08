package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTolerance is the largest distance between a request's timestamp
// and the receiver's clock that Verify accepts when given no tolerance.
const DefaultTolerance = 5 * time.Minute

// Errors of Verify. None of them quotes the expected signature.
var (
	ErrNoSignature       = errors.New("webhook: no " + HeaderSignature + " or " + HeaderTimestamp + " header")
	ErrBadTimestamp      = errors.New("webhook: " + HeaderTimestamp + " is not Unix seconds")
	ErrStaleTimestamp    = errors.New("webhook: " + HeaderTimestamp + " is outside the tolerance")
	ErrSignatureMismatch = errors.New("webhook: signature does not match")
)

// Verify checks a received request, given its headers and raw body, as the
// package doc describes: the timestamp is within tolerance of now
// (DefaultTolerance when tolerance <= 0) and one v1 entry of
// X-Theus-Signature is the HMAC-SHA256 of timestamp + "." + body under
// secret. It returns nil or one of the Err values above.
func Verify(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts, sig := header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	if ts == "" || sig == "" {
		return ErrNoSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrStaleTimestamp
	}
	want := mac(secret, ts, body)
	for entry := range strings.SplitSeq(sig, ",") {
		v, ok := strings.CutPrefix(strings.TrimSpace(entry), "v1=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(v)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrSignatureMismatch
}

// mac is HMAC-SHA256(secret, timestamp + "." + body).
func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}
