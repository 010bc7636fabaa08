package nogo

import (
	"context"
	"strings"
	"sync"

	"example.com/lintcases/helpers"
	"example.com/lintcases/shop"
)

type app struct{}

var _ shop.Processes = app{}

func (app) Update(_ context.Context, in shop.UpdateIn, out *shop.UpdateOut) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // want `\[TP005\] go statement starts a goroutine: .*do the work inline`
		defer wg.Done()
	}()
	wg.Wait()
	fanOut(in.Args.Tags)
	helpers.Background(func() {}) // want `\[TP005\] call to helpers\.Background: go statement starts a goroutine`
	return nil
}

func fanOut(tags []string) {
	for _, t := range tags {
		go strings.ToUpper(t) // want `\[TP005\] go statement starts a goroutine \(in fanOut, reached from app\.Update\)`
	}
}

// Lookup calls a function value inline, and defines (but does not start)
// a goroutine's body in a function nothing reaches: allowed.
func (app) Lookup(_ context.Context, in shop.LookupIn, out *shop.LookupOut) error {
	upper := func(s string) string { return strings.ToUpper(s) }
	out.SetResult(upper(in.Args.ID))
	return nil
}

func unreached() { go func() {}() }
