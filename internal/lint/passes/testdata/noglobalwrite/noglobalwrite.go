package noglobalwrite

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"example.com/lintcases/helpers"
	"example.com/lintcases/shop"
)

type app struct{}

var _ shop.Processes = app{}

var (
	lastEmail string
	seen      = map[string]bool{}
	stats     struct{ updates int }
	history   []string
	mu        sync.Mutex
	calls     atomic.Int64
	events    = make(chan string, 1)
	emailRE   = regexp.MustCompile(`^[^@]+@[^@]+$`)
	allowed   = []string{"a", "b"}
	defaults  = shop.User{ID: "default"}
)

func (app) Update(_ context.Context, in shop.UpdateIn, out *shop.UpdateOut) error {
	lastEmail = in.Args.Email            // want `\[TP004\] assigns package variable lastEmail: .*declare the data as an output`
	seen[in.Args.Email] = true           // want `\[TP004\] seen\[in\.Args\.Email\] writes an entry of package variable seen`
	stats.updates++                      // want `\[TP004\] stats\.updates writes a field of package variable stats`
	history = append(history, "updated") // want `\[TP004\] assigns package variable history`
	delete(seen, "old")                  // want `\[TP004\] delete removes an entry of package variable seen`
	mu.Lock()                            // want `\[TP004\] mu\.Lock calls pointer method sync\.Mutex\.Lock on package variable mu`
	mu.Unlock()                          // want `\[TP004\] mu\.Unlock calls pointer method`
	calls.Add(1)                         // want `\[TP004\] calls\.Add calls pointer method atomic\.Int64\.Add on package variable calls`
	events <- in.Args.Email              // want `\[TP004\] sends on package-level channel events`
	helpers.Hits = 0                     // want `\[TP004\] assigns package variable helpers\.Hits`
	helpers.Count()                      // want `\[TP004\] call to helpers\.Count: assigns package variable Hits \(example\.com/lintcases/helpers/helpers\.go:\d+:\d+\)`
	record(in.Args.Email)
	u := in.User().Clone()
	u.Email = in.Args.Email
	out.SetUser(u)
	return nil
}

func record(email string) {
	m := seen
	m[email] = true // want `\[TP004\] m\[email\] writes an entry of package variable seen \(in record, reached from app\.Update\)`
	p := &stats     // want `\[TP004\] &stats takes the address of package variable stats`
	p.updates = 0   // want `\[TP004\] p\.updates writes a field of package variable stats`
}

// Lookup reads package variables and writes only locals: allowed.
func (app) Lookup(_ context.Context, in shop.LookupIn, out *shop.LookupOut) error {
	ok := emailRE.MatchString(in.User().Email())
	names := slices.Clone(allowed)
	names = append(names, in.Args.ID)
	slices.Sort(names)
	counts := map[string]int{}
	for _, n := range names {
		counts[n]++
	}
	u := defaults
	u.Email = in.User().Email()
	var b strings.Builder
	b.WriteString(u.ID)
	if ok && seen[in.Args.ID] {
		b.WriteString(strings.Join(names, ","))
	}
	out.SetResult(b.String())
	return nil
}
