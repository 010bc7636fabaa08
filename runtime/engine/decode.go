package engine

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"unsafe"
)

// Recovering a large collection (Store.Recover hands a StateDecoder every
// entry) is decoding bound: a store reads rows faster than one goroutine
// decodes their values. collBuilder copies the entries it is given into
// chunks and decodes each full chunk on a goroutine of its own, at most
// cap(workers) at a time, so that decoding runs beside the store's
// reading; each chunk ends sorted by key. finish merges the chunks (a
// store that reads in key order hands them over already in order) and
// builds the collection's tree bottom-up, in linear time.

// Chunks hold at most chunkEntries entries and about chunkBytes bytes of
// encoded values: large enough that a goroutine per chunk costs nothing,
// small enough that the decoding keeps pace with the reading.
var (
	chunkEntries = 4096
	chunkBytes   = 1 << 20
)

type collBuilder[K cmp.Ordered] struct {
	codec   Codec
	elem    *elemType
	path    string
	get     func(unsafe.Pointer) *ptree[K]
	workers chan struct{}
	cur     *entryChunk[K] // being filled
	rawCap  int            // the bytes of values the last chunk held
	chunks  []*entryChunk[K]
	wg      sync.WaitGroup
}

// entryChunk is a run of entries in the order they were given: their keys
// and encoded values (raw[ends[j-1]:ends[j]]), then, once decoded, ents.
type entryChunk[K cmp.Ordered] struct {
	keys []K
	ends []int
	dels []bool // deleted: no value
	raw  []byte
	// ents are the entries decoded, sorted by key; of equal keys the last
	// given comes last. item nil: deleted.
	ents []keyedItem[K]
	err  error
}

type keyedItem[K cmp.Ordered] struct {
	key  K
	item unsafe.Pointer // a *pitem[V]
}

func (b *collBuilder[K]) entry(key string, data []byte) error {
	k, err := parseKey[K](key)
	if err != nil {
		return err
	}
	c := b.cur
	if c == nil {
		c = &entryChunk[K]{keys: make([]K, 0, chunkEntries), ends: make([]int, 0, chunkEntries),
			dels: make([]bool, 0, chunkEntries), raw: make([]byte, 0, b.rawCap)}
		b.cur = c
	}
	c.keys = append(c.keys, k)
	c.raw = append(c.raw, data...)
	c.ends = append(c.ends, len(c.raw))
	c.dels = append(c.dels, data == nil)
	if len(c.keys) == chunkEntries || len(c.raw) >= chunkBytes {
		b.decode(c)
	}
	return nil
}

// decode hands c to a goroutine that decodes it, once one of workers is
// free.
func (b *collBuilder[K]) decode(c *entryChunk[K]) {
	b.cur, b.rawCap = nil, min(len(c.raw)+len(c.raw)/8, 2*chunkBytes)
	b.chunks = append(b.chunks, c)
	b.workers <- struct{}{}
	b.wg.Add(1)
	go func() {
		defer func() {
			<-b.workers
			b.wg.Done()
		}()
		c.decode(b.codec, b.elem, b.path)
	}()
}

func (c *entryChunk[K]) decode(codec Codec, elem *elemType, path string) {
	// One allocation for the chunk's items: decoded values are fresh,
	// nothing needs cloning. (An item kept by a later version keeps its
	// chunk's array alive; the state held as much when it was loaded.)
	items, size := elem.newItems(len(c.keys))
	c.ents = make([]keyedItem[K], len(c.keys))
	lo := 0
	for j, k := range c.keys {
		c.ents[j].key = k
		hi := c.ends[j]
		if !c.dels[j] {
			it := unsafe.Add(items, uintptr(j)*size)
			if err := elem.unmarshal(codec, c.raw[lo:hi], itemValue(it)); err != nil {
				c.err = fmt.Errorf("theus: decode %s[%s]: %w", path, keyString(k), err)
				return
			}
			c.ents[j].item = it
		}
		lo = hi
	}
	c.keys, c.ends, c.dels, c.raw = nil, nil, nil, nil
	byKey := func(a, b keyedItem[K]) int { return cmp.Compare(a.key, b.key) }
	if !slices.IsSortedFunc(c.ents, byKey) {
		slices.SortStableFunc(c.ents, byKey)
	}
}

func (b *collBuilder[K]) finish(s unsafe.Pointer) error {
	if b.cur != nil {
		b.decode(b.cur)
	}
	b.wg.Wait()
	runs := make([][]keyedItem[K], 0, len(b.chunks))
	for _, c := range b.chunks {
		if c.err != nil {
			return c.err
		}
		runs = append(runs, c.ents)
	}
	b.chunks = nil
	ents := mergeRuns(runs, b.workers)
	// Of equal keys the last given wins; deleted entries go.
	out := ents[:0]
	for i, e := range ents {
		if i+1 < len(ents) && ents[i+1].key == e.key {
			continue
		}
		if e.item != nil {
			out = append(out, e)
		}
	}
	*b.get(s) = ptree[K]{root: buildTreeFunc(len(out),
		func(j int) K { return out[j].key },
		func(j int) unsafe.Pointer { return out[j].item })}
	return nil
}

// mergeRuns merges runs, each sorted by key, into one sorted slice in
// which entries of equal keys keep the order of their runs. Runs that
// follow one another in key order (a store reading in key order) are
// concatenated; otherwise pairs of runs are merged, level by level, on up
// to cap(workers) goroutines.
func mergeRuns[K cmp.Ordered](runs [][]keyedItem[K], workers chan struct{}) []keyedItem[K] {
	runs = slices.DeleteFunc(runs, func(r []keyedItem[K]) bool { return len(r) == 0 })
	switch len(runs) {
	case 0:
		return nil
	case 1:
		return runs[0]
	}
	ordered := true
	n := 0
	for i, r := range runs {
		n += len(r)
		if i > 0 && runs[i-1][len(runs[i-1])-1].key >= r[0].key {
			ordered = false
		}
	}
	if ordered {
		out := make([]keyedItem[K], 0, n)
		for _, r := range runs {
			out = append(out, r...)
		}
		return out
	}
	for len(runs) > 1 {
		next := make([][]keyedItem[K], (len(runs)+1)/2)
		var wg sync.WaitGroup
		for i := 0; i+1 < len(runs); i += 2 {
			workers <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() {
					<-workers
					wg.Done()
				}()
				next[i/2] = mergeTwo(runs[i], runs[i+1])
			}()
		}
		if len(runs)%2 == 1 {
			next[len(next)-1] = runs[len(runs)-1]
		}
		wg.Wait()
		runs = next
	}
	return runs[0]
}

// mergeTwo merges a and b, each sorted by key; of equal keys, a's come
// first.
func mergeTwo[K cmp.Ordered](a, b []keyedItem[K]) []keyedItem[K] {
	out := make([]keyedItem[K], 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0].key < a[0].key {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	out = append(out, a...)
	return append(out, b...)
}
