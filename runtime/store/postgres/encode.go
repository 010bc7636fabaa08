package postgres

import (
	"github.com/theus-go/theus/runtime/internal/wire"

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

func readWrites(data []byte) ([]engine.Write, error) {
	var ws []engine.Write
	r := wire.NewReader(data, errBadColumn)
	for r.More() {
		w := engine.Write{Path: string(r.Bytes()), Key: string(r.Bytes())}
		w.Deleted = r.Byte() == 1
		ws = append(ws, w)
	}
	return ws, r.Err()
}

func readIDs(data []byte) ([]string, error) {
	var ids []string
	r := wire.NewReader(data, errBadColumn)
	for r.More() {
		ids = append(ids, string(r.Bytes()))
	}
	return ids, r.Err()
}

func readKeySeqs(data []byte) ([]engine.KeySeq, error) {
	var ks []engine.KeySeq
	r := wire.NewReader(data, errBadColumn)
	for r.More() {
		k := engine.KeySeq{TopicKey: outbox.TopicKey{Topic: string(r.Bytes()), Key: string(r.Bytes())}}
		k.Seq = r.Uvarint()
		ks = append(ks, k)
	}
	return ks, r.Err()
}

// value is one value of a vals column.
type value struct {
	kind      byte
	path, key string
	data      []byte // aliases the column
}

func readVals(data []byte, f func(value) error) error {
	r := wire.NewReader(data, errBadColumn)
	for r.More() {
		v := value{kind: r.Byte(), path: string(r.Bytes())}
		switch v.kind {
		case valField:
			v.data = r.Bytes()
		case valEntry:
			v.key, v.data = string(r.Bytes()), r.Bytes()
		case valDeleted:
			v.key = string(r.Bytes())
		default:
			if r.Err() == nil {
				return fmt.Errorf("%w: value kind %d", errBadColumn, v.kind)
			}
		}
		if r.Err() != nil {
			break
		}
		if err := f(v); err != nil {
			return err
		}
	}
	return r.Err()
}
