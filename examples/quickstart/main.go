// Command quickstart is the seed's scenario run for real: update_user_email
// reads domain.user, writes it and emits user.updated, from many goroutines
// at once, while a relay delivers every committed message to a consumer
// that drops duplicates. It prints what was committed and what arrived;
// "lost" and "duplicates" must both be 0.
//
// Everything lives in a data directory (-data, default ./.data/quickstart):
// the SQLite store and the consumer's log, which is both its effect and
// its dedup record (see consumer.go). Running it again recovers the state
// and delivers what a killed run left undelivered; the summary counts this
// run's commits, and "duplicates" counts messages the consumer applied
// twice over all runs, so it stays 0 however often the demo is killed.
// Delete the directory to start over (needed after changing the state's
// types in contracts.yaml: the store refuses a contract that drifted).
//
// With -store postgres://user:password@host:5432/db the state and the
// outbox live in PostgreSQL instead (schema -schema, default quickstart,
// created if needed); the consumer's log stays in -data. Drop the schema
// and delete the directory together to start over.
//
// The process code is in process.go; theus_gen.go is generated from the
// repository's contracts.yaml by `go generate`.
package main

//go:generate go run github.com/theus-go/theus/cmd/theusgen generate -f ../../contracts.yaml

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"
)

func main() {
	cfg := config{}
	flag.IntVar(&cfg.workers, "workers", 8, "concurrent goroutines calling the engine")
	flag.IntVar(&cfg.updates, "updates", 2000, "update_user_email calls per goroutine")
	flag.IntVar(&cfg.logins, "logins", 1000, "record_login calls per goroutine (they never conflict with updates)")
	flag.DurationVar(&cfg.timeout, "timeout", time.Minute, "give up if delivery takes longer than this")
	flag.StringVar(&cfg.data, "data", filepath.Join(".data", "quickstart"), "directory of the SQLite store and the consumer's log (kept across runs); empty: everything in memory")
	flag.StringVar(&cfg.store, "store", "", "the store: empty for the SQLite file in -data (the default), or a PostgreSQL URL (postgres://user:password@host:5432/db); the consumer's log stays in -data")
	flag.StringVar(&cfg.schema, "schema", "quickstart", "the PostgreSQL schema of the store (with -store postgres://…); created if needed, kept across runs")
	flag.StringVar(&cfg.nats, "nats", "", "URL of a NATS server with JetStream to relay through (e.g. nats://127.0.0.1:4222); empty: start an embedded nats-server with JetStream in a temp dir")
	flag.StringVar(&cfg.console, "console", "", "serve the operator's console at this address (e.g. :8080, or 127.0.0.1:8080) during the run and after it, until interrupted; read-only off the loopback unless THEUS_CONSOLE_TOKEN is set")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sum, err := run(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
	if sum.Lost != 0 || sum.Duplicates != 0 || sum.Gaps != 0 {
		os.Exit(1)
	}
}

type config struct {
	workers, updates, logins int
	timeout                  time.Duration
	data                     string
	store                    string // "": SQLite in data; postgres://… or postgresql://…: PostgreSQL
	schema                   string // PostgreSQL schema
	nats                     string // "": embedded nats-server
	direct                   bool   // tests: relay straight to the consumer, no NATS
	console                  string // address of the console; "": none
}

func printSummary(w io.Writer, s summary) {
	fmt.Fprintf(w, "commits:            %d (%d update_user_email, %d record_login)\n", s.Commits, s.Updates, s.Logins)
	fmt.Fprintf(w, "conflicts retried:  %d\n", s.Conflicts)
	fmt.Fprintf(w, "final version:      %d\n", s.Version)
	fmt.Fprintf(w, "messages committed: %d\n", s.Committed)
	fmt.Fprintf(w, "messages delivered: %d (unique %d, redeliveries dropped %d)\n", s.Delivered, s.Unique, s.Dropped)
	fmt.Fprintf(w, "duplicates:         %d\n", s.Duplicates)
	fmt.Fprintf(w, "gaps:               %d\n", s.Gaps)
	fmt.Fprintf(w, "lost:               %d\n", s.Lost)
}
