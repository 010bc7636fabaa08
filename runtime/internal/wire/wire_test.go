package wire

import (
	"encoding/binary"
	"errors"
	"testing"
)

var errBad = errors.New("bad column")

func TestReadsWhatWasWritten(t *testing.T) {
	b := binary.AppendUvarint(nil, 300)
	b = append(b, 7)
	b = binary.AppendUvarint(b, 3)
	b = append(b, "abc"...)
	r := NewReader(b, errBad)
	if v := r.Uvarint(); v != 300 {
		t.Fatalf("Uvarint = %d, want 300", v)
	}
	if c := r.Byte(); c != 7 {
		t.Fatalf("Byte = %d, want 7", c)
	}
	if s := string(r.Bytes()); s != "abc" {
		t.Fatalf("Bytes = %q, want abc", s)
	}
	if r.More() || r.Err() != nil {
		t.Fatalf("More = %v, Err = %v after the last read", r.More(), r.Err())
	}
}

func TestMalformedColumnsFailAndStayFailed(t *testing.T) {
	for name, b := range map[string][]byte{
		"length past the end":  append(binary.AppendUvarint(nil, 5), "abc"...),
		"truncated uvarint":    {0x80},
		"byte after the end":   {},
		"overlong uvarint run": {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		r := NewReader(b, errBad)
		switch name {
		case "byte after the end":
			r.Byte()
		case "length past the end":
			r.Bytes()
		default:
			r.Uvarint()
		}
		if !errors.Is(r.Err(), errBad) {
			t.Errorf("%s: Err = %v, want %v", name, r.Err(), errBad)
		}
		if r.More() || r.Uvarint() != 0 || r.Bytes() != nil || r.Byte() != 0 {
			t.Errorf("%s: reads after the failure return values", name)
		}
	}
}
