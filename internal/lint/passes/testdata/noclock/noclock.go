package noclock

import (
	"context"
	"fmt"
	"time"

	"example.com/lintcases/helpers"
	"example.com/lintcases/shop"
)

type app struct{}

var _ shop.Processes = app{}

func (app) Update(_ context.Context, in shop.UpdateIn, out *shop.UpdateOut) error {
	start := time.Now()                 // want `\[TP002\] time\.Now reads the clock: .*pass the time in as an argument`
	defer fmt.Sprint(time.Since(start)) // want `\[TP002\] time\.Since reads the clock`
	if time.Until(in.Args.Now) > 0 {    // want `\[TP002\] time\.Until reads the clock`
		return fmt.Errorf("in the future")
	}
	out.SetResult(helpers.Stamp()) // want `\[TP002\] call to helpers\.Stamp: time\.Now reads the clock \(example\.com/lintcases/helpers/helpers\.go:\d+:\d+\)`
	wait()
	return nil
}

func wait() {
	time.Sleep(time.Millisecond) // want `\[TP002\] time\.Sleep waits on the clock \(in wait, reached from app\.Update\)`
	now := time.Now              // want `\[TP002\] time\.Now reads the clock`
	_ = now
}

// Lookup does time arithmetic on a time it is given: allowed.
func (app) Lookup(_ context.Context, in shop.LookupIn, out *shop.LookupOut) error {
	deadline := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).Add(48 * time.Hour)
	d, err := time.ParseDuration("1h30m")
	if err != nil {
		return err
	}
	out.SetResult(deadline.Truncate(d).Format(time.RFC3339) + in.Args.ID)
	return nil
}
