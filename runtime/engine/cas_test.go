package engine_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/theus-go/theus/runtime/engine"
)

// Processes whose commit the CompareAndSwap tests hold with the store.
var (
	// pToC3 reads domain.p and writes domain.c3.
	pToC3 = &proc{name: "p_to_c3", inputs: []int{pathP}, outputs: []int{pathC3},
		fn: func(in []int, _ int) ([]int, []string, error) { return []int{in[0] + 1}, nil, nil }}
	// c1ToPX reads domain.c1 and writes domain.p.x.
	c1ToPX = &proc{name: "c1_to_px", inputs: []int{pathC1}, outputs: []int{pathPX},
		fn: func(in []int, _ int) ([]int, []string, error) { return []int{in[0] + 1}, nil, nil }}
)

// mismatch fails unless err is ErrVersionMismatch naming the versions.
func mismatch(t *testing.T, err error, expected, current uint64) {
	t.Helper()
	want := fmt.Sprintf("theus: version mismatch: expected %d, current %d", expected, current)
	if !errors.Is(err, engine.ErrVersionMismatch) || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
}

// A caller reads version 0 while version 1 is with the store, and
// compares-and-swaps on 0. The commit of version 1 is not durable: the
// caller could not have read it. If it neither wrote nor read what the
// patch writes, the CompareAndSwap commits at once, sequenced after it;
// otherwise it waits until version 1 has settled, and fails once version
// 1 is durable (it succeeds if version 1 fails: see
// TestCompareAndSwapAfterCommitInFlightFailed).
func TestCompareAndSwapBesideCommitInFlight(t *testing.T) {
	cases := []struct {
		name  string
		held  *proc // the process of version 1
		patch patch
		waits bool
		opts  []engine.Option
	}{
		{"other path", incC0, patch{pathC1: 5}, false, nil},
		{"path it wrote", incC0, patch{pathC0: 5}, true, nil},
		{"one of the paths it wrote", incC0, patch{pathC1: 5, pathC0: 5}, true, nil},
		{"path it read", c1ToPX, patch{pathC1: 5}, true, nil},
		{"descendant of a path it read", pToC3, patch{pathPX: 5}, true, nil},
		{"ancestor of a path it wrote", c1ToPX, patch{pathP: 5}, true, nil},
		{"sibling of a path it wrote", c1ToPX, patch{pathPY: 5}, false, nil},
		{"path neither read nor written", pToC3, patch{pathC2: 5}, false, nil},
		{"other path under strict CAS", incC0, patch{pathC1: 5}, true, []engine.Option{engine.WithStrictCAS()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, g := newGateEngine(t, []*proc{tc.held}, tc.opts...)
			waiting, wait := signal()
			engine.OnWait(e, wait)
			first := holdFirstCommit(t, e, g, 0, &call{p: tc.held, arg: 10})
			v, _ := e.Snapshot()
			if v != 0 {
				t.Fatalf("Snapshot is version %d while version 1 is with the store", v)
			}
			cas := goCAS(e, v, tc.patch)
			if tc.waits {
				within(t, waiting, "the CompareAndSwap to wait for version 1")
				select {
				case res := <-cas:
					t.Fatalf("CompareAndSwap returned %+v while version 1 is with the store", res)
				default:
				}
			} else {
				sequenced(t, e, 2) // while version 1 is with the store
			}
			g.release <- nil
			if res := within(t, first, "version 1"); res.err != nil || res.r.Version != 1 {
				t.Fatalf("first call: %+v, want version 1", res)
			}
			if tc.waits {
				mismatch(t, within(t, cas, "the CompareAndSwap").err, 0, 1)
				if v, s := e.Snapshot(); v != 1 || tc.patch.applied(s) {
					t.Fatalf("version %d, state %+v: the refused patch was applied", v, *s)
				}
				return
			}
			if vs := within(t, g.entered, "the CompareAndSwap's group"); len(vs) != 1 || vs[0] != 2 {
				t.Fatalf("group %v, want [2]", vs)
			}
			g.release <- nil
			if res := within(t, cas, "the CompareAndSwap"); res.err != nil || res.r != 2 {
				t.Fatalf("CompareAndSwap: %+v, want version 2", res)
			}
			if v, s := e.Snapshot(); v != 2 || !tc.patch.applied(s) || s == nil {
				t.Fatalf("version %d, state %+v: want the patch at version 2", v, *s)
			}
		})
	}
}

// applied reports whether every path p writes holds p's value in s.
func (p patch) applied(s *tstate) bool {
	for path, v := range p {
		if get(s, path) != v {
			return false
		}
	}
	return true
}

// A CompareAndSwap that waited for a commit it conflicts with commits
// once that commit failed: the engine is back at the version it expected.
func TestCompareAndSwapAfterCommitInFlightFailed(t *testing.T) {
	e, g := newGateEngine(t, []*proc{incC0})
	waiting, wait := signal()
	engine.OnWait(e, wait)
	first := holdFirstCommit(t, e, g, 0, &call{p: incC0, arg: 10})
	cas := goCAS(e, 0, patch{pathC0: 7})
	within(t, waiting, "the CompareAndSwap to wait for version 1")
	g.release <- errInjected
	if res := within(t, first, "version 1"); !errors.Is(res.err, engine.ErrStore) {
		t.Fatalf("first call: %+v, want ErrStore", res)
	}
	if vs := within(t, g.entered, "the CompareAndSwap's group"); len(vs) != 1 || vs[0] != 1 {
		t.Fatalf("group %v, want [1]", vs)
	}
	g.release <- nil
	if res := within(t, cas, "the CompareAndSwap"); res.err != nil || res.r != 1 {
		t.Fatalf("CompareAndSwap: %+v, want version 1", res)
	}
	if v, s := e.Snapshot(); v != 1 || s.C[0] != 7 {
		t.Fatalf("version %d, c0 %d; want 1 and 7", v, s.C[0])
	}
}

// A CompareAndSwap in flight counts as having read the whole state: its
// caller computed the patch from whatever it saw. Another one on the same
// version waits for it, whatever paths the two write (else two patches,
// each computed from what the other changes, could both commit).
func TestCompareAndSwapWaitsForCompareAndSwapInFlight(t *testing.T) {
	e, g := newGateEngine(t, nil)
	waiting, wait := signal()
	engine.OnWait(e, wait)
	first := goCAS(e, 0, patch{pathC0: 1})
	within(t, g.entered, "the first CompareAndSwap's group")
	second := goCAS(e, 0, patch{pathC1: 1})
	within(t, waiting, "the second CompareAndSwap to wait for the first")
	g.release <- nil
	if res := within(t, first, "the first CompareAndSwap"); res.err != nil || res.r != 1 {
		t.Fatalf("first CompareAndSwap: %+v, want version 1", res)
	}
	mismatch(t, within(t, second, "the second CompareAndSwap").err, 0, 1)
}

// An empty patch checks what a caller can see: the durable version.
func TestEmptyPatchChecksTheDurableVersion(t *testing.T) {
	e, g, first := heldFirstCommit(t, []*proc{incC0})
	if v, err := e.CompareAndSwap(context.Background(), 0, patch{}); err != nil || v != 0 {
		t.Fatalf("empty patch on 0 while version 1 is with the store: (%d, %v), want (0, nil)", v, err)
	}
	_, err := e.CompareAndSwap(context.Background(), 1, patch{})
	mismatch(t, err, 1, 0)
	g.release <- nil
	within(t, first, "version 1")
	_, err = e.CompareAndSwap(context.Background(), 0, patch{})
	mismatch(t, err, 0, 1)
	if v, err := e.CompareAndSwap(context.Background(), 1, patch{}); err != nil || v != 1 {
		t.Fatalf("empty patch on 1: (%d, %v), want (1, nil)", v, err)
	}
}

// A version ahead of every sequenced one is a mismatch too, named by the
// durable version.
func TestCompareAndSwapOnAFutureVersion(t *testing.T) {
	e, g, first := heldFirstCommit(t, []*proc{incC0})
	_, err := e.CompareAndSwap(context.Background(), 2, patch{pathC1: 1})
	mismatch(t, err, 2, 0)
	g.release <- nil
	within(t, first, "version 1")
}

// The same for collection entries: a patch conflicts with a commit in
// flight that wrote or deleted one of its entries, or that read the
// collection (any entry of it: the check is coarse there).
func TestCompareAndSwapBesideEntryWriteInFlight(t *testing.T) {
	cases := []struct {
		name  string
		held  ccall
		patch lpatch
		waits bool
	}{
		{"other entry", ccall{proc: procBlindPut, to: "a", amount: 1}, lpatch{put("b", 2)}, false},
		{"entry it wrote", ccall{proc: procBlindPut, to: "a", amount: 1}, lpatch{put("b", 2), put("a", 2)}, true},
		{"entry it created", ccall{proc: procBlindPut, to: "z", amount: 1}, lpatch{del("z")}, true},
		{"entry it deleted", ccall{proc: procBlindPut, to: "a", amount: -1}, lpatch{put("a", 2)}, true},
		{"other entry than it deleted", ccall{proc: procBlindPut, to: "a", amount: -1}, lpatch{put("b", 2)}, false},
		{"collection it read", ccall{proc: procDeposit, to: "a", amount: 1}, lpatch{put("b", 2)}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate()
			e := newBank(t, g, map[string]int{"a": 10, "b": 10})
			g.open(t)
			waiting, wait := signal()
			engine.OnWait(e, wait)
			first := holdFirstCommit(t, e, g, tc.held.proc, &tc.held)
			cas := goCAS(e, 0, engine.Change[cstate](tc.patch))
			if tc.waits {
				within(t, waiting, "the CompareAndSwap to wait for version 1")
			} else {
				sequenced(t, e, 2)
			}
			g.release <- nil
			if res := within(t, first, "version 1"); res.err != nil {
				t.Fatal(res.err)
			}
			if tc.waits {
				mismatch(t, within(t, cas, "the CompareAndSwap").err, 0, 1)
				return
			}
			within(t, g.entered, "the CompareAndSwap's group")
			g.release <- nil
			if res := within(t, cas, "the CompareAndSwap"); res.err != nil || res.r != 2 {
				t.Fatalf("CompareAndSwap: %+v, want version 2", res)
			}
			if _, s := e.Snapshot(); !tc.patch.applied(s) {
				t.Fatalf("entries %v: want the patch's", engine.CollectionMap(s.Acc, nil))
			}
		})
	}
}

// applied reports whether s holds the entries as p leaves them.
func (p lpatch) applied(s *cstate) bool {
	for w := range engine.FinalWrites(p) {
		v, ok := engine.CollectionGet(s.Acc, w.Key)
		if ok != (w.Value != nil) || ok && *v != *w.Value {
			return false
		}
	}
	return true
}
