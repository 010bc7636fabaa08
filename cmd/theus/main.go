// Command theus is the operator's command for a Theus store: it shows the
// outbox and the history of commits, replays and skips parked keys, and
// serves the web console (runtime/console). It reads the store's own
// tables, so it needs no generated code: values show as stored (JSON).
//
//	theus status  [flags] STORE             outbox depth, oldest undelivered age, parked keys, per topic
//	theus parked  [flags] STORE             the parked keys with their error, attempts, first message
//	theus replay  [flags] STORE TOPIC KEY   return a parked key to delivery
//	theus skip    [flags] STORE ID          mark a parked message delivered without sending it
//	theus history [flags] STORE             commits, newest first (-process -topic -key -from -to -limit -values)
//	theus watch   [flags] STORE             print commits as they are made (-from, -limit)
//	theus serve   [flags] STORE             the web console (-addr, default 127.0.0.1:8080)
//
// STORE is sqlite:PATH or a postgres:// (postgresql://) DSN. The
// PostgreSQL password comes from PGPASSWORD, or from the file named by
// -password-file; it is never printed. Every command takes -format text
// (default) or json. Exit status: 0 done, 1 failed, 2 usage.
//
// serve binds 127.0.0.1:8080 by default. Bound to any other address it
// requires an action token (THEUS_CONSOLE_TOKEN, or -token-file) that
// Replay and Skip must carry, unless -read-only.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
