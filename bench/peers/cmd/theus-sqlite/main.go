// Command theus-sqlite runs the peer benchmark's workload on Theus with the
// SQLite store at its defaults (theusbench.SQLite). Flags:
// bench/peers/README.md.
package main

import (
	"github.com/theus-go/theus/bench/peers/theusbench"
	"github.com/theus-go/theus/bench/peers/workload"
)

func main() { workload.Main(theusbench.SQLite) }
