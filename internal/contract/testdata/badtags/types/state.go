package p

import (
	"sync"
	"time"
)

type Status string

type List[T any] struct{ Items []T }

type State struct {
	Domain struct {
		Ptr     *User                 `theus:"ptr"`
		Ch      chan int              `theus:"ch"`
		Arr     [3]int                `theus:"arr"`
		Any     any                   `theus:"any"`
		Err     error                 `theus:"err"`
		Fn      func()                `theus:"fn"`
		Anon    struct{ X int }       `theus:"anon"`
		Status  Status                `theus:"status"`
		Generic List[int]             `theus:"generic"`
		Float   map[float64]int       `theus:"float"`
		Complex complex128            `theus:"complex"`
		Mutex   sync.Mutex            `theus:"mutex"`
		Typo    Usr                   `theus:"typo"`
		Nested  []map[string][]*User  `theus:"nested"`
		Ok      map[int64][]time.Time `theus:"ok"`
		Dur     time.Duration         `theus:"dur"`
	} `theus:"domain"`
}

type User struct{ ID string }
