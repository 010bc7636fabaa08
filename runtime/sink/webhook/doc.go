// Package webhook is an outbox.Sink that delivers each message as an HTTP
// POST of a JSON envelope, signed so the receiver can tell it came from
// the holder of a shared secret.
//
//	s, err := webhook.New("https://example.com/hooks/theus", secret,
//		webhook.WithTimeout(5*time.Second))
//	if err != nil { ... }
//	defer s.Close()
//	relay := outbox.NewRelay(st, s)
//
// # The request
//
// One request per message, in batch order; a batch stops at the first
// message that is not delivered. Headers:
//
//	Content-Type:      application/json
//	Idempotency-Key:   the message ID, the body's "id" (stable across re-deliveries)
//	X-Theus-Timestamp: the send time in Unix seconds, e.g. 1767225600
//	X-Theus-Signature: v1=<hex of HMAC-SHA256(secret, timestamp + "." + body)>
//
// Headers given with WithHeader are sent too, but cannot replace these four.
// The body is the envelope:
//
//	{
//	  "id": "0000019ae1c3f2a0-000000000000002a-0000",
//	  "topic": "user.updated",
//	  "key": "u-42",
//	  "key_seq": 3,
//	  "version": 42,
//	  "created_at": "2026-01-01T00:00:00.123456789Z",
//	  "headers": {"traceparent": "00-..."},
//	  "payload_encoding": "json",
//	  "payload": {"id": "u-42", "email": "a@example.com"}
//	}
//
// created_at is RFC 3339 in UTC; headers is {} when the message has none.
// payload is the message's payload verbatim (whitespace aside) when it is
// valid JSON, and payload_encoding is then "json". Otherwise (an engine
// codec that is not JSON, an empty payload) payload is a JSON string
// holding the standard base64 encoding (RFC 4648, with padding) of the
// bytes, and payload_encoding is "base64". Read payload_encoding before
// payload: a JSON payload may itself be a string.
//
// # Verifying a request (receivers)
//
// With Go, call Verify on the request's headers and raw body before
// decoding it. In any language:
//
//  1. Read the raw body bytes; do not re-encode the JSON.
//  2. Take X-Theus-Timestamp (decimal Unix seconds) and reject the request
//     if it is further than your tolerance (e.g. 5 minutes) from now: this
//     limits replays of a captured request.
//  3. Compute hex(HMAC-SHA256(secret, timestamp + "." + body)), lower-case.
//  4. X-Theus-Signature is a comma-separated list of "v1=<hex>" entries
//     (one today; more during a secret rotation on the sender's side).
//     Accept when one v1 entry equals your value, compared in constant
//     time (hmac.Equal, crypto.timingSafeEqual, hmac.compare_digest).
//  5. Deduplicate on the verified body's "id", or better on its (topic,
//     key, key_seq): delivery is at least once.
//
// The signed string is timestamp + "." + body, and the body holds the
// message ID, so the signature covers the ID: this is Stripe's scheme (the
// event's id inside the signed payload). Idempotency-Key repeats the ID
// for HTTP middleware that deduplicates on that header; the header itself
// is not signed, so an attacker replaying a captured request within the
// tolerance could change it. Verify therefore also requires it to equal
// the body's "id" (ErrIdempotencyKeyMismatch); a receiver that checks the
// signature by hand should take the ID from the body, not the header.
// (Standard Webhooks, Svix's scheme, signs its webhook-id header because
// its body need not carry one; here the body always does.)
//
// # Responses and the relay
//
//   - 2xx: delivered.
//   - 4xx except 408 and 429: the receiver refuses the message;
//     outbox.Permanent, so the relay parks it at once.
//   - 408, 429, 5xx, any other status, and a response not complete
//     within the timeout: a plain (transient) error, retried with
//     backoff and counted towards the relay's WithMaxAttempts. The
//     receiver was reached, so the message may be the cause.
//   - The connection cannot be made (refused, DNS failure, no route,
//     dial timeout): outbox.Unavailable, retried and never counted.
//
// Redirects are not followed by the default client (a 3xx is a transient
// error), so a signed request never reaches a host it was not meant for.
//
// A response's Retry-After (seconds or an HTTP date) is kept in the error;
// RetryAfter(err) returns it, and the relay honours it: it waits at least
// that long before its next round (outbox.RetryAfter).
//
// # Secrets
//
// No credential the sink is given appears in an error or in the Sink's
// String form. Errors name the URL with its password and the value of
// every query parameter replaced by xxxxx (the path is shown as written:
// keep tokens out of it). An error that quotes the receiver (its status
// line, the first 256 bytes of its body) has [redacted] in place of the
// signing secret (raw or hex), the URL's password and the Basic
// credentials made of it, every query value (as sent or decoded), and
// every value given with WithHeader, and its last word alone (the token of
// "Bearer <token>"), so a receiver that echoes its request leaks nothing
// into the relay's logs or a parked message's error.
//
// New and Verify refuse an empty secret (ErrEmptySecret).
package webhook
