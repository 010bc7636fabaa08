package engine

import (
	"cmp"
	"fmt"
)

// A durable store encodes the state values that a commit wrote inside
// Store.Commit, for the whole group the commit is in: a value it cannot
// encode would fail every commit of the group. Generated code checks the
// values that a call or a Patch sets beforehand, with these functions, so
// that such a value fails that call alone. Only what can fail is looked
// at: with the default JSON encoding, floats (NaN and infinities) and types
// of other packages; with a codec given by WithCodec, every value.

// Codec returns the codec given with WithCodec, nil when payloads and state
// values are encoded as JSON.
func (e *Engine[S]) Codec() Codec { return e.c.opts.codec }

// CheckValue returns an error naming path if v cannot be encoded as a
// durable store will encode it: with codec when it is not nil, else as
// JSON, which valid checks (generated code gives it for the types that
// JSON cannot always encode, and nil for the others). With neither it
// returns nil at once.
//
// The type parameter is the value's pointer type, so that the compiler
// makes one CheckValue for all of them (pointers share their code) rather
// than one per type of value in a contract.
func CheckValue[P any](codec Codec, path string, v P, valid func(P) error) error {
	if err := check(codec, v, valid); err != nil {
		return fmt.Errorf("theus: encode %s: %w", path, err)
	}
	return nil
}

// CheckEntries is CheckValue for every value put in pending, the writes to
// the collection at path; the error names the entry ("domain.accounts[a]").
// Every value put is checked, a value that a later put of the same key
// replaces included.
func CheckEntries[K cmp.Ordered, V any](codec Codec, path string, pending []Pending[K, V], valid func(*V) error) error {
	if codec == nil && valid == nil {
		return nil
	}
	for _, w := range pending {
		if w.Value == nil {
			continue // a delete
		}
		if err := check(codec, w.Value, valid); err != nil {
			return fmt.Errorf("theus: encode %s[%s]: %w", path, keyString(w.Key), err)
		}
	}
	return nil
}

func check[P any](codec Codec, v P, valid func(P) error) error {
	switch {
	case codec != nil:
		_, err := codec.Marshal(v) // as appendValue encodes it
		return err
	case valid != nil:
		return valid(v)
	}
	return nil
}
