package sqlite

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestChangeSetRoundTrip(t *testing.T) {
	want := []change{
		{path: "domain.user", kind: setField, value: []byte(`{"id":"u"}`)},
		{path: "domain.accounts", kind: putEntry, key: "a", value: []byte(`{"balance":1}`)},
		{path: "domain.accounts", kind: deleteEntry, key: "b"},
		{path: "domain.accounts", kind: putEntry, key: "", value: []byte{}},
	}
	var cs changeSet
	for range 2 { // the second time in the first's buffer
		cs.reset(2)
		cs.addPath("domain.user")
		cs.addPath("domain.accounts")
		for _, c := range want {
			p := 1
			if c.path == "domain.user" {
				p = 0
			}
			cs.add(p, c.kind, c.key, c.value)
		}
		var got []change
		if err := readChanges(cs.b, func(c change) error { got = append(got, c); return nil }); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read %+v, want %+v", got, want)
		}
	}
	// A cut inside a change is refused; a cut between two changes reads
	// the changes before it.
	for n := range len(cs.b) {
		count := 0
		err := readChanges(cs.b[:n], func(change) error { count++; return nil })
		if err != nil && !errors.Is(err, errBadChangeSet) || err == nil && count == len(want) {
			t.Fatalf("cut at %d of %d bytes: %d changes, %v", n, len(cs.b), count, err)
		}
	}
}

func FuzzReadChanges(f *testing.F) {
	var cs changeSet
	cs.reset(1)
	cs.addPath("domain.accounts")
	cs.add(0, putEntry, "k", []byte("v"))
	cs.add(0, deleteEntry, "k", nil)
	f.Add(bytes.Clone(cs.b))
	f.Add([]byte{changeFormat, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = readChanges(data, func(c change) error {
			if c.kind > deleteEntry {
				t.Fatalf("kind %d", c.kind)
			}
			return nil
		})
	})
}
