// Package refused declares types that a contract may not hold in its
// state, for the bad contract imported_refused.yaml.
package refused

import (
	"io"
	"sync"

	"github.com/theus-go/theus/internal/contract/testdata/money"
)

type (
	Events      chan string
	Ref         *money.Amount
	Digest      [32]byte
	List[T any] []T
	Unexported  struct {
		ID   string
		hash string
	}
	Nested struct {
		Meta struct{ Body io.Reader }
	}
	Deep   struct{ Inner []map[string]Unexported }
	Locked struct{ Mu sync.Mutex }
	Hidden struct {
		Cache string `json:"-"`
	}
	Flat struct {
		money.Amount
		Note string
	}
	Twice struct {
		A string `json:"x"`
		B string `json:"x"`
	}
	BadKey  struct{ ByRate map[float64]string }
	Complex struct{ Z complex128 }
)

// Parse is a func, not a type.
func Parse(string) money.Amount { return money.Amount{} }
