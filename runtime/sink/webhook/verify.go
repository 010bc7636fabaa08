package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
	// ErrEmptySecret is returned by Verify, and New, for an empty secret:
	// anybody can compute an HMAC under an empty key.
	ErrEmptySecret       = errors.New("webhook: empty secret")
	ErrNoSignature       = errors.New("webhook: no " + HeaderSignature + " or " + HeaderTimestamp + " header")
	ErrBadTimestamp      = errors.New("webhook: " + HeaderTimestamp + " is not Unix seconds")
	ErrStaleTimestamp    = errors.New("webhook: " + HeaderTimestamp + " is outside the tolerance")
	ErrSignatureMismatch = errors.New("webhook: signature does not match")
	// ErrIdempotencyKeyMismatch is returned by Verify for a request whose
	// Idempotency-Key is missing or is not the "id" of its signed body.
	ErrIdempotencyKeyMismatch = errors.New("webhook: " + HeaderIdempotencyKey + " is not the signed body's id")
)

// Verify checks a received request, given its headers and raw body, as the
// package doc describes: the timestamp is within tolerance of now
// (DefaultTolerance when tolerance <= 0), one v1 entry of
// X-Theus-Signature is the HMAC-SHA256 of timestamp + "." + body under
// secret, and Idempotency-Key is the body's "id", which the signature
// covers. It returns nil or one of the Err values above.
func Verify(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return ErrEmptySecret
	}
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
			return checkIdempotencyKey(header, body)
		}
	}
	return ErrSignatureMismatch
}

// checkIdempotencyKey checks that the unsigned Idempotency-Key header is
// the signed body's id, so that a receiver deduplicating on the header
// cannot be passed a replayed request under another key.
func checkIdempotencyKey(header http.Header, body []byte) error {
	var e struct {
		ID string `json:"id"`
	}
	key := header.Get(HeaderIdempotencyKey)
	if key == "" || json.Unmarshal(body, &e) != nil || e.ID != key {
		return ErrIdempotencyKeyMismatch
	}
	return nil
}

// mac is HMAC-SHA256(secret, timestamp + "." + body).
func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}
