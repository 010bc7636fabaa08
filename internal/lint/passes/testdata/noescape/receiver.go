package noescape

import (
	"context"
	"slices"
	"strings"

	"example.com/lintcases/helpers"
	"example.com/lintcases/shop"
)

// keeper keeps what it is given across calls, in every way a field of its
// receiver can: directly, through locals that point into it, and through
// its own methods.
type keeper struct {
	last  shop.UserView
	list  []shop.UserView
	seen  map[string]shop.UserView
	hooks []func() string
	st    *memo
	inner memo
	boxes []*helpers.Box
	count int
}

type memo struct {
	last  shop.UserView
	saved shop.User
	n     int
	byID  map[string]shop.UserView
}

var _ shop.Processes = (*keeper)(nil)

func (k *keeper) Update(_ context.Context, in shop.UpdateIn, out *shop.UpdateOut) error {
	v := in.User()
	k.last = v                                                    // want `\[TP006\] stores a reference to the process's input in k\.last, a field of the receiver`
	k.list = append(k.list, v)                                    // want `\[TP006\] stores a reference to the process's input in k\.list, a field of the receiver`
	k.seen["id"] = v                                              // want `\[TP006\] stores a reference to the process's input in k\.seen\["id"\], a field of the receiver`
	k.hooks = append(k.hooks, func() string { return v.Email() }) // want `\[TP006\] stores a reference to the process's input in k\.hooks, a field of the receiver`

	// Through locals that point into the receiver.
	s := k.st
	s.last = v // want `\[TP006\] stores a reference to the process's input in s\.last, part of the receiver \(s = k\.st\), which lives across calls`
	m := k.seen
	m["other"] = v // want `\[TP006\] stores a reference to the process's input in m\["other"\], part of the receiver \(m = k\.seen\)`
	p := &k.inner
	p.last = v // want `\[TP006\] stores a reference to the process's input in p\.last, part of the receiver \(p = &k\.inner\)`
	r := &k.list
	*r = append(*r, v) // want `\[TP006\] stores a reference to the process's input in \*r, part of the receiver \(r = &k\.list\)`
	for _, b := range k.boxes {
		b.V = v // want `\[TP006\] stores a reference to the process's input in b\.V, part of the receiver \(b in range k\.boxes\)`
	}
	b0 := k.boxes[0]
	b0.Put(v) // want `\[TP006\] passes v, a reference to the process's input, to helpers\.Box\.Put, which stores it into b0, part of the receiver \(b0 = k\.boxes\[0\]\)`

	// Through the receiver's own methods.
	k.remember(v)    // want `\[TP006\] passes v, a reference to the process's input, to keeper\.remember, which stores it into k, the receiver, which lives across calls`
	k.st.remember(v) // want `\[TP006\] passes v, a reference to the process's input, to memo\.remember, which stores it into k\.st, a field of the receiver, which lives across calls`
	k.inner.index(v) // want `\[TP006\] passes v, a reference to the process's input, to memo\.index, which stores it into k\.inner, a field of the receiver`
	k.keepVia(v)     // want `\[TP006\] passes v, a reference to the process's input, to keeper\.keepVia, which stores it into k, the receiver`

	// Handed to a callback of a call on the input, and kept there.
	views := []shop.UserView{v}
	slices.SortFunc(views, func(a, b shop.UserView) int {
		k.last = a // want `\[TP006\] stores a reference to the process's input in k\.last, a field of the receiver`
		return strings.Compare(a.Email(), b.Email())
	})

	// Through a package variable's map, by a helper.
	file(v) // want `\[TP006\] passes v, a reference to the process's input, to file, which keeps it in package variable byID, through m = byID`

	// Copies, values and locals: allowed.
	box := &helpers.Box{}
	alsoBox := box
	alsoBox.V = v
	k.inner.copyInto(v)
	x := k.inner
	x.last = v
	s.saved = v.Clone()
	s.n = len(v.Email())
	k.count++
	slices.SortFunc(views, func(a, b shop.UserView) int { return strings.Compare(a.ID(), b.ID()) })
	k.note(v)
	return nil
}

func (k *keeper) remember(v shop.UserView) { k.last = v }

func (k *keeper) keepVia(v shop.UserView) {
	s := k.st
	s.byID[v.ID()] = v
}

func (m *memo) remember(v shop.UserView) { m.last = v }

// copyInto sets a field of its receiver, a copy that dies with the call.
func (m memo) copyInto(v shop.UserView) {
	m.last = v
	c := m
	c.last = v
	_ = c
}

// index stores into the map its receiver shares with the caller's copy.
func (m memo) index(v shop.UserView) { m.byID[v.ID()] = v }

func file(v shop.UserView) {
	m := byID
	m["filed"] = v
}

// note reads the view and keeps only a value.
func (k *keeper) note(v shop.UserView) { k.count += len(v.Email()) }

func (k *keeper) Lookup(_ context.Context, in shop.LookupIn, out *shop.LookupOut) error {
	out.SetResult(in.User().Email())
	return nil
}
