package engine_test

import (
	"strings"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
)

func TestCompareTypes(t *testing.T) {
	for _, c := range []struct {
		name, old, new string
		want           []string // Change.String()s
		breaking       bool
	}{
		{"same", "User{id string, tags []string}", "User{id string, tags []string}", nil, false},
		{"renamed struct", "User{id string}", "Customer{id string}", nil, false},
		{"field added", "Order{id string}", "Order{id string, note string}",
			[]string{"domain.x.note: field added (stored values read its zero value)"}, false},
		{"field removed", "Order{id string, note string}", "Order{id string}",
			[]string{"domain.x.note: field removed (stored values of it are ignored)"}, false},
		{"widened", "int32", "int64", []string{"domain.x: widened (int32 -> int64)"}, false},
		{"unsigned to wider signed", "uint32", "int64", []string{"domain.x: widened (uint32 -> int64)"}, false},
		{"narrowed", "int64", "int16", []string{"domain.x: narrowed (int64 -> int16)"}, true},
		{"signed to unsigned", "int32", "uint64", []string{"domain.x: narrowed (int32 -> uint64)"}, true},
		{"retyped", "A{n string}", "A{n int64}", []string{"domain.x.n: type changed (string -> int64)"}, true},
		{"bytes", "[]uint8", "[]uint16", []string{"domain.x: type changed ([]uint8 -> []uint16)"}, true},
		{"map key", "map[string]int64", "map[int64]int64", []string{"domain.x: key type changed (map[string]int64 -> map[int64]int64)"}, true},
		{"collection key", "collection[string]A{n int}", "collection[int64]A{n int}",
			[]string{"domain.x: key type changed (collection[string]A -> collection[int64]A)"}, true},
		{"collection to value", "collection[string]int", "map[string]int",
			[]string{"domain.x: collection <-> value (collection[string]int -> map[string]int)"}, true},
		{"struct to slice", "A{n int}", "[]A{n int}", []string{"domain.x: type changed (A -> []A)"}, true},
		{"nested in collection", "collection[string]A{b B{n int32}}", "collection[string]A{b B{n int64, m bool}}",
			[]string{"domain.x[*].b.m: field added (stored values read its zero value)", "domain.x[*].b.n: widened (int32 -> int64)"}, false},
		{"recursive", "Node{kids []Node, v int32}", "Node{kids []Node, v int64}", []string{"domain.x.v: widened (int32 -> int64)"}, false},
		{"recursive retyped below", "Node{kids []Node, v int32}", "Node{kids []Node, v string}", []string{"domain.x.v: type changed (int32 -> string)"}, true},
		{"compact form", "A{b B{n int}, c B}", "A{b B{n int}, c B{n int}}", nil, false},
		{"imported under", "example.com/m.Cents(int32)", "example.com/m.Cents(int64)", []string{"domain.x: widened (int32 -> int64)"}, false},
		{"imported struct", "example.com/m.Amount{units int64}", "example.com/m.Amount{units int64, code example.com/m.Code(string)}",
			[]string{"domain.x.code: field added (stored values read its zero value)"}, false},
		{"time", "time.Time", "time.Duration", []string{"domain.x: type changed (time.Time -> time.Duration)"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			changes, err := engine.CompareTypes("domain.x", c.old, c.new)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			breaking := false
			for _, ch := range changes {
				got = append(got, ch.String())
				breaking = breaking || ch.Kind.Breaking()
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") || breaking != c.breaking {
				t.Fatalf("changes:\n%s\nbreaking %v, want\n%s\nbreaking %v", strings.Join(got, "\n"), breaking, strings.Join(c.want, "\n"), c.breaking)
			}
		})
	}
	for _, bad := range []string{"", "A{n}", "map[string", "A{n int", "X(int"} {
		if _, err := engine.CompareTypes("domain.x", bad, "int"); err == nil {
			t.Errorf("CompareTypes(%q) parsed", bad)
		}
	}
}
