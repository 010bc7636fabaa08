package norand

import (
	"context"
	crand "crypto/rand"
	"math/rand"
	randv2 "math/rand/v2"
	"strconv"

	"example.com/lintcases/shop"
)

type app struct{}

var _ shop.Processes = app{}

func (app) Update(_ context.Context, in shop.UpdateIn, out *shop.UpdateOut) error {
	id := rand.Intn(1000)  // want `\[TP003\] rand\.Intn draws from the shared random source: .*pass random values`
	n := randv2.IntN(1000) // want `\[TP003\] rand\.IntN draws from the shared random source`
	token := make([]byte, 16)
	if _, err := crand.Read(token); err != nil { // want `\[TP003\] rand\.Read reads the system's randomness`
		return err
	}
	_ = crand.Reader // want `\[TP003\] rand\.Reader reads the system's randomness`
	out.SetResult(strconv.Itoa(id + n))
	return nil
}

// Lookup draws from a generator seeded by its argument: the same numbers
// on every run, allowed.
func (app) Lookup(_ context.Context, in shop.LookupIn, out *shop.LookupOut) error {
	r := rand.New(rand.NewSource(int64(len(in.Args.ID))))
	r2 := randv2.New(randv2.NewPCG(1, 2))
	out.SetResult(strconv.Itoa(r.Intn(10) + r2.IntN(10)))
	return nil
}
