package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"unsafe"
)

// Patch holds the writes of a generated Patch, whose setters call Set, Put
// and Delete: the engine checks and applies it through Schema.State, so
// that generated code needs no field, check or assignment per state path.
// Its zero value is an empty patch.
type Patch struct {
	vals    []patchWrite // values set whole, in the order first set, one per path
	entries []patchWrite // collection entries put and deleted, in order
}

type patchWrite struct {
	path int // in Schema.Paths
	key  any // a collection entry's key
	// v points to the value (a *T, or a *V for an entry), which the patch
	// owns; nil deletes an entry.
	v any
}

// Set sets the state field at path (an index in Schema.Paths) to *v, of
// the field's type, which the patch keeps: the caller gives a deep copy. A
// later Set of the same path replaces it.
//
// Set, Put and Delete are not inlined: a generated setter is a call of
// one of them, and CompareAndSwap is not hot.
//
//go:noinline
func (p *Patch) Set(path int, v any) {
	for i := range p.vals {
		if p.vals[i].path == path {
			p.vals[i].v = v
			return
		}
	}
	p.vals = append(p.vals, patchWrite{path: path, v: v})
}

// Put sets the entry under k of the collection at path to *v, which the
// patch keeps, as Set does.
//
//go:noinline
func (p *Patch) Put(path int, k, v any) {
	p.entries = append(p.entries, patchWrite{path: path, key: k, v: v})
}

// Delete deletes the entry under k of the collection at path.
//
//go:noinline
func (p *Patch) Delete(path int, k any) {
	p.entries = append(p.entries, patchWrite{path: path, key: k})
}

// CompareAndSwapPatch is CompareAndSwap of the writes of p, a generated
// Patch's: a value of p that cannot be encoded (with the engine's codec,
// else as JSON) is refused first, with an error naming its path, and
// nothing is committed.
func (e *Engine[S]) CompareAndSwapPatch(ctx context.Context, expected uint64, p *Patch) (uint64, error) {
	return e.c.casPatch(ctx, expected, p)
}

func (e *core) casPatch(ctx context.Context, expected uint64, p *Patch) (uint64, error) {
	ch, err := e.patchChange(p)
	if err != nil {
		return 0, err
	}
	return e.cas(ctx, expected, ch)
}

// patchChange checks the values of p and returns it as a Change: its
// writes with the state fields they write, the entries grouped by
// collection in the order of Schema.State.
func (e *core) patchChange(p *Patch) (*patchChange, error) {
	ch := &patchChange{sc: e.sc, vals: make([]fieldWrite, len(p.vals)), entries: make([]fieldWrite, len(p.entries))}
	for i, w := range p.vals {
		ch.vals[i] = fieldWrite{patchWrite: w, field: e.sc.Field(e.paths[w.path])}
	}
	for i, w := range p.entries {
		ch.entries[i] = fieldWrite{patchWrite: w, field: e.sc.Field(e.paths[w.path])}
	}
	slices.SortStableFunc(ch.entries, func(a, b fieldWrite) int { return cmp.Compare(a.field, b.field) })
	codec := e.opts.codec
	for _, w := range ch.vals {
		if err := e.sc.fields[w.field].codec.check(codec, w.v); err != nil {
			return ch, fmt.Errorf("theus: encode %s: %w", e.paths[w.path], err)
		}
	}
	for _, w := range ch.entries {
		if w.v == nil {
			continue // a delete
		}
		if err := e.sc.fields[w.field].codec.check(codec, w.v); err != nil {
			return ch, fmt.Errorf("theus: encode %s[%s]: %w", e.paths[w.path], keyString(w.key), err)
		}
	}
	return ch, nil
}

type fieldWrite struct {
	patchWrite
	field int // in Schema.State
}

// patchChange is the Change of a Patch.
type patchChange struct {
	sc            *stateCodec
	vals, entries []fieldWrite
}

func (c *patchChange) Record(tx *Tx) {
	for _, w := range c.vals {
		tx.Write(w.path)
	}
	for _, w := range c.entries {
		tx.WriteKey(w.path, w.key, w.v == nil)
	}
}

func (c *patchChange) applyTo(s unsafe.Pointer, v uint64) {
	for _, w := range c.vals {
		c.sc.fields[w.field].codec.set(s, w.v)
	}
	var edit uint64
	for i, w := range c.entries {
		if i == 0 || c.entries[i-1].field != w.field {
			edit = newEdit()
		}
		c.sc.fields[w.field].codec.put(s, w.key, w.v, v, edit)
	}
}

// checkJSON returns the error encoding/json gives for *p, using appendJSON
// when there is one.
func checkJSON(p any, appendJSON func([]byte, any) ([]byte, error)) error {
	if appendJSON != nil {
		_, err := appendJSON(nil, p)
		return err
	}
	_, err := json.Marshal(p)
	return err
}

func (f *valueCodec) check(c Codec, p any) error {
	if c != nil {
		_, err := c.Marshal(p)
		return err
	}
	return checkJSON(p, f.appendJSON)
}

// set sets the field in s to *p, the value of a Patch.
func (f *valueCodec) set(s unsafe.Pointer, p any) {
	reflect.ValueOf(f.get(s)).Elem().Set(reflect.ValueOf(p).Elem())
}

func (*valueCodec) put(unsafe.Pointer, any, any, uint64, uint64) { panic("unreachable") }

func (f *collCodec[K]) check(c Codec, p any) error {
	if c != nil {
		_, err := c.Marshal(p)
		return err
	}
	if f.elem.appendJSON == nil {
		return checkJSON(p, nil)
	}
	_, err := f.elem.appendJSON(nil, reflect.ValueOf(p).UnsafePointer())
	return err
}

func (*collCodec[K]) set(unsafe.Pointer, any) { panic("unreachable") }

// put sets the entry under k (a K) in s to *p (a *V, nil to delete it) at
// version v.
func (f *collCodec[K]) put(s unsafe.Pointer, k, p any, v, edit uint64) {
	t := f.get(s)
	if p == nil {
		*t = t.del(k.(K))
		return
	}
	it, _ := f.elem.newItems(1)
	reflect.NewAt(f.elem.typ, itemValue(it)).Elem().Set(reflect.ValueOf(p).Elem())
	*(*uint64)(it) = v
	*t = t.set(k.(K), it, edit)
}
