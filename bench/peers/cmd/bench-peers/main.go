// Command bench-peers runs the peer benchmark: every implementation binary
// of bench/peers/cmd on every scenario, several times, interleaved, and
// prints a Markdown table per scenario with the ratios Theus/peer. Run it
// from bench/peers (`make bench-peers` does); see bench/peers/README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/theus-go/theus/bench/peers/internal/runner"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runner.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
