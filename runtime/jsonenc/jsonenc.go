// Package jsonenc holds the append-style JSON primitives that generated
// payload encoders are built from. Their output is byte-for-byte what
// encoding/json.Marshal produces for the same values (HTML-safe escaping,
// the same float format), so a consumer cannot tell the two apart, but they
// cost no reflection and no allocation beyond the output buffer.
package jsonenc

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// safe[c] is true for the ASCII bytes encoding/json writes as they are
// (with its default HTML escaping).
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// plain[c] is true for the bytes written as they are: safe ASCII.
var plain = func() (t [256]bool) {
	copy(t[:], safe[:])
	return t
}()

// AppendString appends s as a JSON string.
func AppendString(b []byte, s string) []byte {
	// Most strings need no escaping: find the first byte that might, and
	// copy everything before it at once.
	i := 0
	for i < len(s) && plain[s[i]] {
		i++
	}
	b = append(b, '"')
	b = append(b, s[:i]...)
	if i == len(s) {
		return append(b, '"')
	}
	return appendEscaped(b, s, i)
}

// appendEscaped appends s[i:], which starts with a byte that is not plain,
// and the closing quote.
func appendEscaped(b []byte, s string, i int) []byte {
	start := i
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// AppendBool appends true or false.
func AppendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

// AppendInt appends a signed integer.
func AppendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

// AppendUint appends an unsigned integer.
func AppendUint(b []byte, v uint64) []byte { return strconv.AppendUint(b, v, 10) }

// AppendFloat appends a float of the given bit size (32 or 64) the way
// encoding/json does; NaN and infinities are an error, as there (see
// CheckFloat).
func AppendFloat(b []byte, f float64, bits int) ([]byte, error) {
	if err := CheckFloat(f, bits); err != nil {
		return b, err
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// CheckFloat returns the error encoding/json gives for a float it cannot
// encode, NaN or an infinity (a *json.UnsupportedValueError), and nil for
// any other.
func CheckFloat(f float64, bits int) error {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return &json.UnsupportedValueError{Value: reflect.ValueOf(f), Str: strconv.FormatFloat(f, 'g', -1, bits)}
	}
	return nil
}

// CheckSlice returns the first error of elem on the elements of s: with
// CheckMap and CheckFloat, what generated code checks values that
// encoding/json might refuse with, without encoding them.
func CheckSlice[T any](s []T, elem func(*T) error) error {
	for i := range s {
		if err := elem(&s[i]); err != nil {
			return err
		}
	}
	return nil
}

// CheckMap returns the first error of elem on the values of m.
func CheckMap[K comparable, V any](m map[K]V, elem func(*V) error) error {
	if len(m) == 0 {
		return nil
	}
	v := new(V) // one for all the values: elem may keep the pointer it is given
	for _, *v = range m {
		if err := elem(v); err != nil {
			return err
		}
	}
	return nil
}

// AppendBytes appends a []byte as a base64 string; nil is null.
func AppendBytes(b []byte, v []byte) []byte {
	if v == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, '"')
}

// CheckValue returns the error of encoding v with encoding/json, the
// check of the values that AppendValue appends.
func CheckValue(v any) error {
	_, err := json.Marshal(v)
	return err
}

// AppendValue appends v encoded by encoding/json: the fallback for types
// whose shape the contract does not know (imported types).
func AppendValue(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}

// AppendSlice appends s as a JSON array, each element with elem; a nil
// slice is null, as encoding/json writes it.
//
// It is not inlined, nor is AppendMap: generated encoders call them for
// every slice and map field, and a copy of the loop in each would cost
// more to compile than the call costs to run.
//
//go:noinline
func AppendSlice[T any](b []byte, s []T, elem func([]byte, *T) ([]byte, error)) ([]byte, error) {
	if s == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '[')
	for i := range s {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = elem(b, &s[i]); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

// AppendMap appends m as a JSON object, each value with elem; a nil map
// is null. Keys are written, and sorted, as their text (key), as
// encoding/json does.
//
//go:noinline
func AppendMap[K comparable, V any](b []byte, m map[K]V, key func(K) string, elem func([]byte, *V) ([]byte, error)) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	type entry struct {
		k string
		v V
	}
	es := make([]entry, 0, len(m))
	for k, v := range m {
		es = append(es, entry{k: key(k), v: v})
	}
	slices.SortFunc(es, func(x, y entry) int { return strings.Compare(x.k, y.k) })
	b = append(b, '{')
	for i := range es {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, es[i].k)
		b = append(b, ':')
		var err error
		if b, err = elem(b, &es[i].v); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}
