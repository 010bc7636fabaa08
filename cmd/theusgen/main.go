// Command theusgen turns a contracts.yaml into typed Go code for the Theus
// engine, and checks that generated code is current. See internal/cli for
// the commands and docs/contracts.md for the contract language.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/theus-go/theus/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
