// Command theus-sqlite runs the peer benchmark's workload on Theus with the
// SQLite store (runtime/store/sqlite) at its defaults: WAL,
// synchronous=FULL. The file lives in a new directory under -dir, removed
// after the run. Flags: bench/peers/README.md.
package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/theus-go/theus/bench/peers/theusbench"
	"github.com/theus-go/theus/bench/peers/workload"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

func main() {
	workload.Main(workload.Impl{Name: "theus-sqlite", Open: open})
}

func open(ctx context.Context, cfg workload.Config) (workload.System, error) {
	dir, err := os.MkdirTemp(cfg.Dir, "theus-sqlite-")
	if err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "theus.db"))
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	closeStore := func() error { return errors.Join(st.Close(), os.RemoveAll(dir)) }
	sys, err := theusbench.Open(ctx, cfg, st, closeStore)
	if err != nil {
		return nil, errors.Join(err, closeStore())
	}
	return sys, nil
}
