package noescape

import (
	"context"
	"slices"
	"strings"

	"example.com/lintcases/helpers"
	"example.com/lintcases/shop"
)

type app struct {
	last  shop.UserView
	cache map[string][]string
	boxes []*helpers.Box
}

var _ shop.Processes = (*app)(nil)

var (
	lastUser shop.UserView
	byID     = map[string]shop.UserView{}
	lastTags []string
	hooks    []func() string
	updates  = make(chan shop.UserView, 1)
	lastIn   shop.UpdateIn
	lastOut  *shop.UpdateOut
	copies   []shop.User
)

func (a *app) Update(_ context.Context, in shop.UpdateIn, out *shop.UpdateOut) error {
	v := in.User()
	lastUser = v                                              // want `\[TP006\] stores a reference to the process's input in lastUser \(package variable lastUser\): it would outlive the call; keep a copy instead`
	byID[v.ID()] = v                                          // want `\[TP006\] stores a reference to the process's input in byID\[v\.ID\(\)\] \(package variable byID\)`
	lastTags = in.Args.Tags                                   // want `\[TP006\] stores a reference to the process's input in lastTags`
	a.last = v                                                // want `\[TP006\] stores a reference to the process's input in a\.last, a field of the receiver`
	hooks = append(hooks, func() string { return v.Email() }) // want `\[TP006\] stores a reference to the process's input in hooks`
	updates <- v                                              // want `\[TP006\] sends v, a reference to the process's input, on a channel`
	lastIn, lastOut = in, out                                 // want `\[TP006\] .* in lastIn` `\[TP006\] .* in lastOut`
	helpers.Remember(v)                                       // want `\[TP006\] passes v, a reference to the process's input, to helpers\.Remember, which keeps it in package variable last`
	keep(in.Args.Tags)                                        // want `\[TP006\] passes in\.Args\.Tags, a reference to the process's input, to keep, which keeps it in package variable kept`
	box := &helpers.Box{}
	box.Put(v)
	a.stash(box)
	a.boxes = append(a.boxes, box) // want `\[TP006\] stores a reference to the process's input in a\.boxes, a field of the receiver`
	u := v.Clone()
	copies = append(copies, u)
	u.Email = in.Args.Email
	out.SetUser(u)
	return nil
}

var kept [][]string

func keep(tags []string) { kept = append(kept, tags) }

func (a *app) stash(b *helpers.Box) { a.cache = map[string][]string{"x": nil}; _ = b }

// Lookup copies what it keeps, and keeps views only in locals: allowed.
func (a *app) Lookup(_ context.Context, in shop.LookupIn, out *shop.LookupOut) error {
	v := in.User()
	local := map[string]shop.UserView{in.Args.ID: v}
	tags := v.Tags().Clone()
	slices.Sort(tags)
	a.cache = map[string][]string{in.Args.ID: tags}
	lastTags = slices.Clone(tags)
	copies = append(copies, v.Clone())
	var parts []string
	for _, t := range v.Tags().All() {
		parts = append(parts, strings.ToUpper(t))
	}
	box := helpers.Box{V: local[in.Args.ID]}
	out.SetResult(box.V.Email() + strings.Join(parts, ","))
	return nil
}
