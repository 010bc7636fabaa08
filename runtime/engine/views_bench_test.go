package engine_test

import (
	"fmt"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
)

func benchCollection(n int) (engine.Collection[string, int], []string) {
	m := make(map[string]int, n)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("acct-%07d", i)
		m[keys[i]] = i
	}
	return engine.NewCollection(m, nil), keys
}

// BenchmarkCollectionViewAll100k ranges over a view of a collection of
// 100,000 entries, as a process reading all of it does.
func BenchmarkCollectionViewAll100k(b *testing.B) {
	c, keys := benchCollection(100_000)
	var tx engine.Tx
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		for _, v := range engine.CollectionView(c, &tx, 0, ident).All() {
			n += v
		}
		if n != len(keys)*(len(keys)-1)/2 {
			b.Fatal("entries lost")
		}
	}
}

// BenchmarkCollectionViewGet1k reads entries of a snapshot's view of a
// collection of 1,000 entries.
func BenchmarkCollectionViewGet1k(b *testing.B) {
	c, keys := benchCollection(1_000)
	v := engine.CollectionView(c, nil, 0, ident)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := v.Get(keys[i%len(keys)]); !ok {
			b.Fatal("entry lost")
		}
		i += 7919
	}
}
