// Command theus-memory runs the peer benchmark's workload on Theus with the
// memory store (runtime/store/memory): the engine and the relay without
// any I/O. Flags: bench/peers/README.md.
package main

import (
	"context"

	"github.com/theus-go/theus/bench/peers/theusbench"
	"github.com/theus-go/theus/bench/peers/workload"
	"github.com/theus-go/theus/runtime/store/memory"
)

func main() {
	workload.Main(workload.Impl{Name: "theus-memory", Open: open})
}

func open(ctx context.Context, cfg workload.Config) (workload.System, error) {
	return theusbench.Open(ctx, cfg, memory.New(), nil)
}
