package sqlite

import (
	"github.com/theus-go/theus/runtime/internal/wire"

	"encoding/binary"
	"errors"
	"fmt"
)

// A row of theus_log holds what one commit group changed in the state, as
// the values are after the group's last commit: its data column is a
// change set in this layout (uvarints as in encoding/binary):
//
//	format   byte: changeFormat
//	npaths   uvarint, then npaths × (len uvarint, path bytes): the
//	         top-level state paths the group wrote, e.g. "domain.accounts"
//	changes  until the end, each:
//	           head   uvarint: index into the paths << 2 | kind
//	           key    len uvarint, bytes (entry changes only)
//	           value  len uvarint, bytes (setField and putEntry only),
//	                  as the engine's StateCodec encodes it
//
// Paths are stored by name, not by their index in the contract, so that a
// contract that adds a field before another still reads the log.

// changeFormat is the first byte of a change set.
const changeFormat = 1

// changeKind is what a change does.
type changeKind byte

const (
	setField    changeKind = iota // a plain field's new value
	putEntry                      // a collection entry's new value
	deleteEntry                   // a collection entry was removed
)

// changeSet builds the data of a log row: reset, addPath for every path,
// then add the changes.
type changeSet struct{ b []byte }

// reset starts a change set of npaths paths, reusing the buffer of the
// previous one.
func (c *changeSet) reset(npaths int) {
	c.b = append(c.b[:0], changeFormat)
	c.b = binary.AppendUvarint(c.b, uint64(npaths))
}

func (c *changeSet) addPath(path string) {
	c.b = binary.AppendUvarint(c.b, uint64(len(path)))
	c.b = append(c.b, path...)
}

// add appends a change of the path at index p (in the order of addPath).
func (c *changeSet) add(p int, kind changeKind, key string, value []byte) {
	c.b = binary.AppendUvarint(c.b, uint64(p)<<2|uint64(kind))
	if kind != setField {
		c.b = binary.AppendUvarint(c.b, uint64(len(key)))
		c.b = append(c.b, key...)
	}
	if kind != deleteEntry {
		c.b = binary.AppendUvarint(c.b, uint64(len(value)))
		c.b = append(c.b, value...)
	}
}

// change is one decoded change. key and value alias the change set.
type change struct {
	path  string
	kind  changeKind
	key   string
	value []byte
}

var errBadChangeSet = errors.New("malformed change set")

// readChanges calls f with every change of data, in order.
func readChanges(data []byte, f func(change) error) error {
	if len(data) == 0 || data[0] != changeFormat {
		return fmt.Errorf("%w: unknown format", errBadChangeSet)
	}
	r := wire.NewReader(data[1:], errBadChangeSet)
	n := r.Uvarint()
	if n > uint64(r.Len()) {
		return errBadChangeSet
	}
	paths := make([]string, n)
	for i := range paths {
		paths[i] = string(r.Bytes())
	}
	for r.More() {
		head := r.Uvarint()
		c := change{kind: changeKind(head & 3)}
		if p := head >> 2; p < uint64(len(paths)) {
			c.path = paths[p]
		} else {
			return fmt.Errorf("%w: path %d of %d", errBadChangeSet, p, len(paths))
		}
		switch c.kind {
		case setField:
			c.value = r.Bytes()
		case putEntry:
			c.key = string(r.Bytes())
			c.value = r.Bytes()
		case deleteEntry:
			c.key = string(r.Bytes())
		default:
			return fmt.Errorf("%w: change kind %d", errBadChangeSet, c.kind)
		}
		if r.Err() != nil {
			break
		}
		if err := f(c); err != nil {
			return err
		}
	}
	return r.Err()
}
