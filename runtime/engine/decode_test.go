package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

type decodeValue struct {
	N int    `json:"n"`
	S string `json:"s"`
}

type decodeState struct {
	Names Collection[string, decodeValue]
	Nums  Collection[int64, decodeValue]
}

func decodeCodec() *stateCodec {
	return newStateCodec(stateFields([]StateField[decodeState]{
		CollectionField("domain.names", "collection[string]V", func(s *decodeState) *Collection[string, decodeValue] { return &s.Names }),
		CollectionField("domain.nums", "collection[int64]V", func(s *decodeState) *Collection[int64, decodeValue] { return &s.Nums }),
	}), opsOf[decodeState](nil), nil)
}

// setChunks makes the decoders of the test cut chunks of n entries.
func setChunks(t *testing.T, n int) {
	old := chunkEntries
	chunkEntries = n
	t.Cleanup(func() { chunkEntries = old })
}

// A decoder given entries in any order, with keys given again (the later
// wins) and deleted (data nil), in chunks of any size, builds each
// collection as a map that applies the same entries in the same order:
// the same keys in ascending order, with the same values.
func TestDecoderBuildsCollections(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		old := chunkEntries
		chunkEntries = rapid.IntRange(1, 9).Draw(rt, "chunk")
		defer func() { chunkEntries = old }()
		dec := decodeCodec().Decoder()
		names, nums := map[string]decodeValue{}, map[int64]decodeValue{}
		ops := rapid.IntRange(0, 300).Draw(rt, "ops")
		sortedKeys := rapid.Bool().Draw(rt, "sorted") // a store reading in key order
		for i := range ops {
			field := rapid.IntRange(0, 1).Draw(rt, "field")
			k := rapid.Int64Range(-40, 40).Draw(rt, "key")
			if sortedKeys {
				k = int64(i)
			}
			del := rapid.IntRange(0, 5).Draw(rt, "del") == 0
			v := decodeValue{N: i, S: strings.Repeat("é\"", int(k&3))}
			var data []byte
			if !del {
				data, _ = json.Marshal(v)
			}
			key := strconv.FormatInt(k, 10)
			if field == 0 {
				key = fmt.Sprintf("k%03d", k+40) // ascending with k
				if del {
					delete(names, key)
				} else {
					names[key] = v
				}
			} else if del {
				delete(nums, k)
			} else {
				nums[k] = v
			}
			if err := dec.Entry(field, key, data); err != nil {
				rt.Fatal(err)
			}
		}
		st, err := dec.State()
		if err != nil {
			rt.Fatal(err)
		}
		s := st.(*decodeState)
		checkBuilt(rt, "names", s.Names, names)
		checkBuilt(rt, "nums", s.Nums, nums)
	})
}

func checkBuilt[K int64 | string](t *rapid.T, name string, c Collection[K, decodeValue], want map[K]decodeValue) {
	keys := slices.Sorted(maps.Keys(want))
	var got []K
	for k, v := range CollectionAll(c) {
		got = append(got, k)
		if *v != want[k] {
			t.Fatalf("%s[%v] = %v, want %v", name, k, *v, want[k])
		}
	}
	if !slices.Equal(got, keys) {
		t.Fatalf("%s holds keys %v, want %v", name, got, keys)
	}
	if CollectionLen(c) != len(keys) {
		t.Fatalf("%s.Len() = %d, want %d", name, CollectionLen(c), len(keys))
	}
	for _, k := range keys {
		if v, ok := CollectionGet(c, k); !ok || *v != want[k] {
			t.Fatalf("%s.Get(%v) = %v, %v; want %v", name, k, v, ok, want[k])
		}
	}
}

// An entry that does not decode fails State, whichever chunk holds it,
// naming its collection and key; the decoder's goroutines end.
func TestDecoderReportsBadEntry(t *testing.T) {
	setChunks(t, 16)
	for _, bad := range []int{0, 15, 16, 99} {
		dec := decodeCodec().Decoder()
		for i := range 100 {
			data := []byte(`{"n":1}`)
			if i == bad {
				data = []byte(`{"n":"one"}`)
			}
			if err := dec.Entry(0, fmt.Sprintf("k%03d", i), data); err != nil {
				t.Fatal(err)
			}
		}
		_, err := dec.State()
		if want := fmt.Sprintf("theus: decode domain.names[k%03d]: ", bad); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("State() = %v, want an error starting %q", err, want)
		}
	}
}

// BenchmarkDecodeEntries measures a decoder given a million entries of a
// collection in key order: the engine's share of a cold start.
func BenchmarkDecodeEntries(b *testing.B) {
	const n = 1_000_000
	keys := make([]string, n)
	vals := make([][]byte, n)
	for i := range n {
		keys[i] = fmt.Sprintf("acc-%07d", i)
		vals[i], _ = json.Marshal(decodeValue{N: i, S: "owner " + keys[i]})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		dec := decodeCodec().Decoder()
		for i := range n {
			if err := dec.Entry(0, keys[i], vals[i]); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := dec.State(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/entry")
}
