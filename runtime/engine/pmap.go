package engine

import (
	"cmp"
	"iter"
)

// pmap is a persistent ordered map: a B+tree whose updates copy the path
// from the root to the changed leaf and share everything else. A snapshot
// holds a root; a commit that writes one entry of a million-entry
// collection copies four nodes instead of the map. Nodes are immutable once
// published.
type pmap[K cmp.Ordered, V any] struct {
	root *pnode[K, V]
}

// pitem is one entry: its value and the version that wrote it.
type pitem[V any] struct {
	ver uint64
	val V
}

const pfan = 16 // entries per leaf and children per inner node, at most

type pnode[K cmp.Ordered, V any] struct {
	n    int // entries (leaf) or children (inner) in use
	size int // entries in the subtree
	leaf bool
	// keys: a leaf's entry keys; an inner node's lower bounds of its
	// children (keys[0] is not used for routing).
	keys [pfan]K
	vals [pfan]*pitem[V]    // leaf
	kids [pfan]*pnode[K, V] // inner
}

func (m pmap[K, V]) len() int {
	if m.root == nil {
		return 0
	}
	return m.root.size
}

// get returns the item under k, or nil.
func (m pmap[K, V]) get(k K) *pitem[V] {
	n := m.root
	if n == nil {
		return nil
	}
	for !n.leaf {
		n = n.kids[n.route(k)]
	}
	if i, ok := n.find(k); ok {
		return n.vals[i]
	}
	return nil
}

// route returns the child of an inner node that holds k.
func (n *pnode[K, V]) route(k K) int {
	lo, hi := 1, n.n // first i in [1, n) with keys[i] > k, minus one
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if n.keys[mid] <= k {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

// find returns the index of k in a leaf, or where it would go.
func (n *pnode[K, V]) find(k K) (int, bool) {
	lo, hi := 0, n.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if n.keys[mid] < k {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < n.n && n.keys[lo] == k
}

// set returns a map with k set to it.
func (m pmap[K, V]) set(k K, it *pitem[V]) pmap[K, V] {
	if m.root == nil {
		leaf := &pnode[K, V]{leaf: true, n: 1, size: 1}
		leaf.keys[0], leaf.vals[0] = k, it
		return pmap[K, V]{root: leaf}
	}
	left, right := m.root.set(k, it)
	if right == nil {
		return pmap[K, V]{root: left}
	}
	root := &pnode[K, V]{n: 2, size: left.size + right.size}
	root.keys[0], root.keys[1] = left.keys[0], right.keys[0]
	root.kids[0], root.kids[1] = left, right
	return pmap[K, V]{root: root}
}

// set returns a copy of n with k set, split in two when it overflows.
func (n *pnode[K, V]) set(k K, it *pitem[V]) (left, right *pnode[K, V]) {
	c := *n // the copy; n itself is never modified
	if c.leaf {
		i, ok := c.find(k)
		if ok {
			c.vals[i] = it
			return &c, nil
		}
		if c.n < pfan {
			copy(c.keys[i+1:c.n+1], c.keys[i:c.n])
			copy(c.vals[i+1:c.n+1], c.vals[i:c.n])
			c.keys[i], c.vals[i] = k, it
			c.n++
			c.size++
			return &c, nil
		}
		return c.splitInsert(i, k, it, nil)
	}
	i := c.route(k)
	l, r := c.kids[i].set(k, it)
	c.size += l.size - c.kids[i].size
	c.kids[i] = l
	if r == nil {
		return &c, nil
	}
	c.size += r.size
	if c.n < pfan {
		copy(c.keys[i+2:c.n+1], c.keys[i+1:c.n])
		copy(c.kids[i+2:c.n+1], c.kids[i+1:c.n])
		c.keys[i+1], c.kids[i+1] = r.keys[0], r
		c.n++
		return &c, nil
	}
	return c.splitInsert(i+1, r.keys[0], nil, r)
}

// splitInsert inserts (k, it) in a full leaf, or (k, kid) in a full inner
// node, at position i, and splits the result in two halves.
func (c *pnode[K, V]) splitInsert(i int, k K, it *pitem[V], kid *pnode[K, V]) (left, right *pnode[K, V]) {
	var keys [pfan + 1]K
	var vals [pfan + 1]*pitem[V]
	var kids [pfan + 1]*pnode[K, V]
	copy(keys[:i], c.keys[:i])
	copy(keys[i+1:], c.keys[i:c.n])
	keys[i] = k
	if c.leaf {
		copy(vals[:i], c.vals[:i])
		copy(vals[i+1:], c.vals[i:c.n])
		vals[i] = it
	} else {
		copy(kids[:i], c.kids[:i])
		copy(kids[i+1:], c.kids[i:c.n])
		kids[i] = kid
	}
	half := (pfan + 1) / 2
	l := &pnode[K, V]{leaf: c.leaf, n: half}
	r := &pnode[K, V]{leaf: c.leaf, n: pfan + 1 - half}
	copy(l.keys[:], keys[:half])
	copy(r.keys[:], keys[half:])
	if c.leaf {
		copy(l.vals[:], vals[:half])
		copy(r.vals[:], vals[half:])
		l.size, r.size = l.n, r.n
	} else {
		copy(l.kids[:], kids[:half])
		copy(r.kids[:], kids[half:])
		for _, x := range l.kids[:l.n] {
			l.size += x.size
		}
		r.size = c.size - l.size // c.size already counts the inserted entry
	}
	return l, r
}

// del returns a map without k (the same map if k is absent).
func (m pmap[K, V]) del(k K) pmap[K, V] {
	if m.root == nil {
		return m
	}
	root, changed := m.root.del(k)
	if !changed {
		return m
	}
	for root != nil && !root.leaf && root.n == 1 {
		root = root.kids[0]
	}
	return pmap[K, V]{root: root}
}

// del returns a copy of n without k, nil when nothing is left. Nodes may
// become less than half full: the tree is not rebalanced on delete, which
// keeps deletes as cheap as sets; its depth never grows from deleting.
func (n *pnode[K, V]) del(k K) (*pnode[K, V], bool) {
	if n.leaf {
		i, ok := n.find(k)
		if !ok {
			return n, false
		}
		if n.n == 1 {
			return nil, true
		}
		c := *n
		copy(c.keys[i:], c.keys[i+1:c.n])
		copy(c.vals[i:], c.vals[i+1:c.n])
		c.n--
		c.size--
		var zk K
		c.keys[c.n], c.vals[c.n] = zk, nil
		return &c, true
	}
	i := n.route(k)
	kid, changed := n.kids[i].del(k)
	if !changed {
		return n, false
	}
	c := *n
	c.size--
	if kid != nil {
		c.kids[i] = kid
		return &c, true
	}
	if c.n == 1 {
		return nil, true
	}
	copy(c.keys[i:], c.keys[i+1:c.n])
	copy(c.kids[i:], c.kids[i+1:c.n])
	c.n--
	var zk K
	c.keys[c.n], c.kids[c.n] = zk, nil
	return &c, true
}

// all yields every entry in ascending key order.
func (m pmap[K, V]) all() iter.Seq2[K, *pitem[V]] {
	return func(yield func(K, *pitem[V]) bool) {
		if m.root != nil {
			m.root.walk(yield)
		}
	}
}

func (n *pnode[K, V]) walk(yield func(K, *pitem[V]) bool) bool {
	if n.leaf {
		for i := range n.n {
			if !yield(n.keys[i], n.vals[i]) {
				return false
			}
		}
		return true
	}
	for _, kid := range n.kids[:n.n] {
		if !kid.walk(yield) {
			return false
		}
	}
	return true
}
