package postgres

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
)

// The columns of theus_log that describe a commit are binary, built from
// uvarints and length-prefixed strings (len uvarint, then the bytes):
//
//	writes    each write: path, key, deleted (byte 0 or 1)
//	vals      each value the commit left: kind (byte: valField,
//	          valEntry, valDeleted), path, then key for an entry, then
//	          data (len, bytes) unless deleted
//	key_seqs  each (topic, key) of its messages: topic, key, last KeySeq
//	          (uvarint)
//	ids       each message ID, in emit order
//
// Values are encoded by the engine's StateCodec (JSON by default): a
// plain field whole, a collection entry by entry (see engine.Remote).

const (
	valField   = 0
	valEntry   = 1
	valDeleted = 2
)

var errBadColumn = errors.New("malformed log column")

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendWrites appends the writes column of r to b.
func appendWrites(b []byte, ws []engine.Write) []byte {
	for _, w := range ws {
		b = appendStr(b, w.Path)
		b = appendStr(b, w.Key)
		if w.Deleted {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	return b
}

// appendIDs appends the ids column of msgs to b.
func appendIDs(b []byte, msgs []outbox.Message) []byte {
	for i := range msgs {
		b = appendStr(b, msgs[i].ID)
	}
	return b
}

// reader reads a column; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errBadColumn
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns the next length-prefixed bytes, aliasing the column.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if uint64(len(r.b)) < n {
		r.err = errBadColumn
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errBadColumn
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func readWrites(data []byte) ([]engine.Write, error) {
	var ws []engine.Write
	r := reader{b: data}
	for len(r.b) > 0 && r.err == nil {
		w := engine.Write{Path: string(r.bytes()), Key: string(r.bytes())}
		w.Deleted = r.byte() == 1
		ws = append(ws, w)
	}
	return ws, r.err
}

func readIDs(data []byte) ([]string, error) {
	var ids []string
	r := reader{b: data}
	for len(r.b) > 0 && r.err == nil {
		ids = append(ids, string(r.bytes()))
	}
	return ids, r.err
}

func readKeySeqs(data []byte) ([]engine.KeySeq, error) {
	var ks []engine.KeySeq
	r := reader{b: data}
	for len(r.b) > 0 && r.err == nil {
		k := engine.KeySeq{TopicKey: outbox.TopicKey{Topic: string(r.bytes()), Key: string(r.bytes())}}
		k.Seq = r.uvarint()
		ks = append(ks, k)
	}
	return ks, r.err
}

// value is one value of a vals column.
type value struct {
	kind      byte
	path, key string
	data      []byte // aliases the column
}

func readVals(data []byte, f func(value) error) error {
	r := reader{b: data}
	for len(r.b) > 0 && r.err == nil {
		v := value{kind: r.byte(), path: string(r.bytes())}
		switch v.kind {
		case valField:
			v.data = r.bytes()
		case valEntry:
			v.key, v.data = string(r.bytes()), r.bytes()
		case valDeleted:
			v.key = string(r.bytes())
		default:
			if r.err == nil {
				return fmt.Errorf("%w: value kind %d", errBadColumn, v.kind)
			}
		}
		if r.err != nil {
			break
		}
		if err := f(v); err != nil {
			return err
		}
	}
	return r.err
}
