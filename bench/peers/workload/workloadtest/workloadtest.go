// Package workloadtest checks an implementation of the peer benchmark's
// workload end to end: a few hundred transactions with the relay running,
// then a drain, each event delivered exactly once.
package workloadtest

import (
	"context"
	"testing"
	"time"

	"github.com/theus-go/theus/bench/peers/workload"
)

// Exercise runs impl (against dsn, for a server-based one) and fails t
// unless every committed event arrives once.
func Exercise(t *testing.T, impl workload.Impl, dsn string) {
	t.Helper()
	base := workload.Config{C: 4, Users: 100, DSN: dsn, Dir: t.TempDir(), Poll: time.Millisecond, Wait: time.Minute}
	steady, drain := base, base
	steady.N, steady.Relay = 300, true
	drain.Prefill = 300
	for _, cfg := range []workload.Config{steady, drain} {
		res, err := workload.Run(context.Background(), impl, cfg)
		if err != nil {
			t.Fatalf("%s: %v", impl.Name, err)
		}
		if res.Commits != 300 || res.Delivered != 300 || res.Lost != 0 || res.Duplicates != 0 {
			t.Errorf("%s (prefill %d): commits %d, delivered %d, lost %d, duplicates %d; want 300, 300, 0, 0",
				impl.Name, cfg.Prefill, res.Commits, res.Delivered, res.Lost, res.Duplicates)
		}
		if res.EventBytes < 180 || res.EventBytes > 220 {
			t.Errorf("%s: events of %v bytes, want about 200", impl.Name, res.EventBytes)
		}
	}
}
