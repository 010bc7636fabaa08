// Package wire reads the stores' compact binary columns: uvarints, single
// bytes and uvarint-length-prefixed byte strings, one after another.
package wire

import "encoding/binary"

// Reader reads a column from its start. The first malformed read sets
// Err to the error the Reader was made with; every read after it returns
// zero values.
type Reader struct {
	b   []byte
	bad error
	err error
}

// NewReader returns a Reader of b that reports bad when b is malformed.
func NewReader(b []byte, bad error) Reader { return Reader{b: b, bad: bad} }

// More reports whether bytes are left to read and no read has failed.
func (r *Reader) More() bool { return r.err == nil && len(r.b) > 0 }

// Len is the number of bytes left.
func (r *Reader) Len() int { return len(r.b) }

// Err is the error of the first malformed read, or nil.
func (r *Reader) Err() error { return r.err }

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = r.bad
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Bytes reads a length-prefixed byte string, aliasing the column.
func (r *Reader) Bytes() []byte {
	n := r.Uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = r.bad
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = r.bad
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}
