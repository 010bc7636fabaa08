// Package invbench measures what a CEL invariant adds to a commit.
package invbench

import "context"

//go:generate go run github.com/theus-go/theus/cmd/theusgen generate -f contracts.yaml

// Procs sells one seat, and starts again from zero when the event is full,
// so that the invariant always holds.
type Procs struct{}

func sell(e Event) Event {
	e.Sold++
	if e.Sold > e.Capacity {
		e.Sold = 0
	}
	return e
}

func (Procs) SellChecked(_ context.Context, in SellCheckedIn, out *SellCheckedOut) error {
	v, _ := in.Checked().Get(in.Args.Event)
	out.Checked().Put(in.Args.Event, sell(v.Clone()))
	return nil
}

func (Procs) SellPlain(_ context.Context, in SellPlainIn, out *SellPlainOut) error {
	v, _ := in.Plain().Get(in.Args.Event)
	out.Plain().Put(in.Args.Event, sell(v.Clone()))
	return nil
}
