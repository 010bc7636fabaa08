// Command theus-postgres runs the peer benchmark's workload on Theus with
// the PostgreSQL store at its defaults, in schema peers_theus
// (theusbench.Postgres). Flags: bench/peers/README.md.
package main

import (
	"github.com/theus-go/theus/bench/peers/theusbench"
	"github.com/theus-go/theus/bench/peers/workload"
)

func main() { workload.Main(theusbench.Postgres) }
