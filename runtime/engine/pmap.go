package engine

import (
	"cmp"
	"sync/atomic"
	"unsafe"
)

// ptree is a persistent ordered map: a B+tree whose updates copy the path
// from the root to the changed leaf and share everything else. A snapshot
// holds a root; a commit that writes one entry of a million-entry
// collection copies seven small nodes instead of the map. Nodes are
// immutable once published.
//
// Its items are of any type, each a *pitem[V] seen as an unsafe.Pointer:
// the code of the tree, and of collections (collCodec, collBuilder,
// collSource), is compiled once per key type, not once per type of value
// (a contract may declare many collections, each of its own type). Only
// thin typed wrappers (Collection) convert the items.
type ptree[K cmp.Ordered] struct {
	root *pnode[K]
}

// pitem is one entry: its value and the version that wrote it. ver comes
// first, so the untyped code reads it (itemVersion) without knowing V.
type pitem[V any] struct {
	ver uint64
	val V
}

// itemVersion returns the version of the *pitem[V] it, whatever V.
func itemVersion(it unsafe.Pointer) uint64 { return *(*uint64)(it) }

// pfan is the most entries per leaf and children per inner node. A write
// copies one node per level, so the bytes it allocates grow with
// pfan × levels: 8-way nodes (96 bytes) copy less than 16-way ones for one
// more level, which is what the garbage collector feels on large
// collections.
const pfan = 8

// pkeys is the keys of a node. A node's copy shares them unless its keys
// change: updating an entry, or a child, changes none, so the common write
// copies small nodes of pointers only.
type pkeys[K cmp.Ordered] [pfan]K

// pnode is a node of a ptree: its entries are *pitem[V]
// seen as unsafe.Pointer, so that the compiler makes the tree's code once
// per key type, not once per type of value (a contract may declare many
// collections, each of its own type).
type pnode[K cmp.Ordered] struct {
	size int // entries in the subtree
	// edit is the edit (see newEdit) that created the node: a later set of
	// the same edit may change it in place, as nobody else has seen it.
	edit uint64
	n    int32 // entries (leaf) or children (inner) in use
	leaf bool
	// keys: a leaf's entry keys; an inner node's lower bounds of its
	// children (keys[0] is not used for routing). Shared between
	// versions of the node, so never changed: a change makes new keys.
	keys *pkeys[K]
	// ptrs holds a leaf's *pitem[V] or an inner node's *pnode[K]: one
	// array for both keeps a node, which every commit copies along its
	// path, a third smaller.
	ptrs [pfan]unsafe.Pointer
}

func (n *pnode[K]) val(i int) unsafe.Pointer        { return n.ptrs[i] }
func (n *pnode[K]) kid(i int) *pnode[K]             { return (*pnode[K])(n.ptrs[i]) }
func (n *pnode[K]) setVal(i int, it unsafe.Pointer) { n.ptrs[i] = it }
func (n *pnode[K]) setKid(i int, k *pnode[K])       { n.ptrs[i] = unsafe.Pointer(k) }

// withKey returns a copy of keys[:n] with k inserted at i.
func withKey[K cmp.Ordered](keys *pkeys[K], n, i int, k K) *pkeys[K] {
	nk := new(pkeys[K])
	copy(nk[:i], keys[:i])
	nk[i] = k
	copy(nk[i+1:n+1], keys[i:n])
	return nk
}

// withoutKey returns a copy of keys[:n] without the key at i.
func withoutKey[K cmp.Ordered](keys *pkeys[K], n, i int) *pkeys[K] {
	nk := new(pkeys[K])
	copy(nk[:i], keys[:i])
	copy(nk[i:n-1], keys[i+1:n])
	return nk
}

// buildTree builds a tree from sorted, distinct keys and their items,
// the elements of an array of items of size bytes at items, in linear
// time, bottom-up, with full nodes; nil when there are no keys.
func buildTree[K cmp.Ordered](keys []K, items unsafe.Pointer, size uintptr) *pnode[K] {
	return buildTreeFunc(len(keys), func(j int) K { return keys[j] },
		func(j int) unsafe.Pointer { return unsafe.Add(items, uintptr(j)*size) })
}

// buildTreeFunc is buildTree for the n sorted, distinct keys key(0),
// key(1), ...
func buildTreeFunc[K cmp.Ordered](n int, key func(int) K, item func(int) unsafe.Pointer) *pnode[K] {
	if n == 0 {
		return nil
	}
	level := make([]*pnode[K], 0, (n+pfan-1)/pfan)
	for i := 0; i < n; i += pfan {
		nd := &pnode[K]{leaf: true, keys: new(pkeys[K])}
		for j := i; j < min(i+pfan, n); j++ {
			nd.keys[nd.n] = key(j)
			nd.setVal(int(nd.n), item(j))
			nd.n++
		}
		nd.size = int(nd.n)
		level = append(level, nd)
	}
	for len(level) > 1 {
		var up []*pnode[K]
		for i := 0; i < len(level); i += pfan {
			n := &pnode[K]{keys: new(pkeys[K])}
			for _, kid := range level[i:min(i+pfan, len(level))] {
				n.keys[n.n] = kid.keys[0]
				n.setKid(int(n.n), kid)
				n.size += kid.size
				n.n++
			}
			up = append(up, n)
		}
		level = up
	}
	return level[0]
}

func (t ptree[K]) len() int {
	if t.root == nil {
		return 0
	}
	return t.root.size
}

// get returns the item under k, or nil.
func (t ptree[K]) get(k K) unsafe.Pointer {
	n := t.root
	if n == nil {
		return nil
	}
	for !n.leaf {
		n = n.kid(n.route(k))
	}
	if i, ok := n.find(k); ok {
		return n.val(i)
	}
	return nil
}

// walk yields every entry in ascending key order.
func (t ptree[K]) walk(yield func(K, unsafe.Pointer) bool) {
	var c pcursor[K]
	c.start(t)
	for n := c.nextLeaf(); n != nil; n = c.nextLeaf() {
		for i := range int(n.n) {
			if !yield(n.keys[i], n.val(i)) {
				return
			}
		}
	}
}

// route returns the child of an inner node that holds k.
func (n *pnode[K]) route(k K) int {
	keys := n.keys
	lo, hi := 1, int(n.n) // first i in [1, n) with keys[i] > k, minus one
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if keys[mid] <= k {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

// find returns the index of k in a leaf, or where it would go.
func (n *pnode[K]) find(k K) (int, bool) {
	keys := n.keys
	lo, hi := 0, int(n.n)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if keys[mid] < k {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < int(n.n) && keys[lo] == k
}

// edits numbers the edits of persistent maps; see newEdit.
var edits atomic.Uint64

// newEdit returns a token for a batch of sets that build one new version of
// a map (the writes of one commit to a collection), never returned before.
// The nodes the batch creates carry it, so that its later sets change them
// in place instead of copying them again: a commit writing two entries
// copies the root, and the nodes the two paths share, once. A token must
// not be used again once the version is published.
func newEdit() uint64 { return edits.Add(1) }

// set returns a map with k set to it, changing in place the nodes that
// earlier sets of the same edit created.
func (t ptree[K]) set(k K, it unsafe.Pointer, edit uint64) ptree[K] {
	if t.root == nil {
		leaf := &pnode[K]{leaf: true, n: 1, size: 1, edit: edit, keys: &pkeys[K]{k}}
		leaf.setVal(0, it)
		return ptree[K]{root: leaf}
	}
	left, right := t.root.set(k, it, edit)
	if right == nil {
		return ptree[K]{root: left}
	}
	root := &pnode[K]{n: 2, size: left.size + right.size, edit: edit, keys: &pkeys[K]{left.keys[0], right.keys[0]}}
	root.setKid(0, left)
	root.setKid(1, right)
	return ptree[K]{root: root}
}

// set returns n with k set, split in two when it overflows: n itself if
// edit created it, else a copy (n is then never modified). Keys are never
// changed in place, even in a node of this edit: they may be shared with
// a node that was published.
func (n *pnode[K]) set(k K, it unsafe.Pointer, edit uint64) (left, right *pnode[K]) {
	c := n
	if n.edit != edit {
		c = new(pnode[K])
		*c = *n
		c.edit = edit
	}
	cn := int(c.n)
	if c.leaf {
		i, ok := c.find(k)
		if ok {
			c.setVal(i, it)
			return c, nil
		}
		if cn < pfan {
			c.keys = withKey(c.keys, cn, i, k)
			copy(c.ptrs[i+1:cn+1], c.ptrs[i:cn])
			c.setVal(i, it)
			c.n++
			c.size++
			return c, nil
		}
		return c.splitInsert(i, k, it, nil)
	}
	i := c.route(k)
	kidSize := c.kid(i).size // before set: it may change the kid in place
	l, r := c.kid(i).set(k, it, edit)
	c.size += l.size - kidSize
	c.setKid(i, l)
	if r == nil {
		return c, nil
	}
	c.size += r.size
	if cn < pfan {
		c.keys = withKey(c.keys, cn, i+1, r.keys[0])
		copy(c.ptrs[i+2:cn+1], c.ptrs[i+1:cn])
		c.setKid(i+1, r)
		c.n++
		return c, nil
	}
	return c.splitInsert(i+1, r.keys[0], nil, r)
}

// splitInsert inserts (k, it) in a full leaf, or (k, kid) in a full inner
// node, at position i, and splits the result in two halves.
func (c *pnode[K]) splitInsert(i int, k K, it unsafe.Pointer, kid *pnode[K]) (left, right *pnode[K]) {
	var keys [pfan + 1]K
	var ptrs [pfan + 1]unsafe.Pointer
	cn := int(c.n)
	copy(keys[:i], c.keys[:i])
	copy(keys[i+1:], c.keys[i:cn])
	keys[i] = k
	copy(ptrs[:i], c.ptrs[:i])
	copy(ptrs[i+1:], c.ptrs[i:cn])
	if c.leaf {
		ptrs[i] = it
	} else {
		ptrs[i] = unsafe.Pointer(kid)
	}
	const half = (pfan + 1) / 2
	l := &pnode[K]{leaf: c.leaf, n: half, edit: c.edit, keys: new(pkeys[K])}
	r := &pnode[K]{leaf: c.leaf, n: pfan + 1 - half, edit: c.edit, keys: new(pkeys[K])}
	copy(l.keys[:], keys[:half])
	copy(r.keys[:], keys[half:])
	copy(l.ptrs[:], ptrs[:half])
	copy(r.ptrs[:], ptrs[half:])
	if c.leaf {
		l.size, r.size = int(l.n), int(r.n)
	} else {
		for i := range int(l.n) {
			l.size += l.kid(i).size
		}
		r.size = c.size - l.size // c.size already counts the inserted entry
	}
	return l, r
}

// del returns a map without k (the same map if k is absent).
func (t ptree[K]) del(k K) ptree[K] {
	if t.root == nil {
		return t
	}
	root, changed := t.root.del(k)
	if !changed {
		return t
	}
	for root != nil && !root.leaf && root.n == 1 {
		root = root.kid(0)
	}
	return ptree[K]{root: root}
}

// del returns a copy of n without k, nil when nothing is left. Nodes may
// become less than half full: the tree is not rebalanced on delete, which
// keeps deletes as cheap as sets; its depth never grows from deleting.
func (n *pnode[K]) del(k K) (*pnode[K], bool) {
	if n.leaf {
		i, ok := n.find(k)
		if !ok {
			return n, false
		}
		if n.n == 1 {
			return nil, true
		}
		c := *n
		c.keys = withoutKey(n.keys, int(n.n), i)
		copy(c.ptrs[i:], c.ptrs[i+1:c.n])
		c.n--
		c.size--
		c.ptrs[c.n] = nil
		return &c, true
	}
	i := n.route(k)
	kid, changed := n.kid(i).del(k)
	if !changed {
		return n, false
	}
	c := *n
	c.size--
	if kid != nil {
		c.setKid(i, kid)
		return &c, true
	}
	if c.n == 1 {
		return nil, true
	}
	c.keys = withoutKey(n.keys, int(n.n), i)
	copy(c.ptrs[i:], c.ptrs[i+1:c.n])
	c.n--
	c.ptrs[c.n] = nil
	return &c, true
}

// pcursor walks the leaves of a tree in ascending key order: for walk,
// and for MapView.All, which ranges over a leaf's entries in a loop of
// its own, with no function value per entry (one compiled per type of
// view).
type pcursor[K cmp.Ordered] struct {
	// stack holds the nodes from the root down to the current one, each
	// with the index of its next child. A node has at least pfan/2
	// children unless it is the root or lost some to deletes, which never
	// deepen a tree: 40 levels hold more entries than memory.
	stack [40]struct {
		n *pnode[K]
		i int
	}
	depth int
}

func (c *pcursor[K]) start(t ptree[K]) {
	c.depth = 0
	if t.root != nil {
		c.stack[0].n, c.stack[0].i = t.root, 0
		c.depth = 1
	}
}

// nextLeaf returns the next leaf, nil after the last. A leaf is never
// empty (del removes a leaf's last entry with the leaf).
func (c *pcursor[K]) nextLeaf() *pnode[K] {
	for c.depth > 0 {
		top := &c.stack[c.depth-1]
		if top.n.leaf {
			c.depth--
			return top.n
		}
		if top.i >= int(top.n.n) {
			c.depth--
			continue
		}
		c.stack[c.depth].n, c.stack[c.depth].i = top.n.kid(top.i), 0
		top.i++
		c.depth++
	}
	return nil
}
