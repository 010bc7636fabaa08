// Command tags is the quickstart's contract declared in Go instead of
// YAML: the state, the payload and the processes are Go types whose struct
// tags and //theus: directives say what contracts.yaml says (see
// contract.go). theus_gen.go is generated from them by `go generate`, and
// the process code (process.go) is the quickstart's.
//
// It runs each process once and prints what the engine committed.
package main

//go:generate go run github.com/theus-go/theus/cmd/theusgen generate -tags .

import (
	"context"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tags:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	var initial State
	initial.Domain.User = User{ID: "u-1", Email: "old@example.com"}
	initial.Global.MaxEmailLen = 64
	eng, err := NewEngine(ctx, initial, app{})
	if err != nil {
		return err
	}
	defer eng.Close()

	r, err := eng.UpdateUserEmail(ctx, UpdateUserEmailArgs{Email: "new@example.com"})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "update_user_email: version %d, previous email %s, messages %v\n", r.Version, r.Result, r.MessageIDs)
	if _, err := eng.RecordLogin(ctx, RecordLoginArgs{}); err != nil {
		return err
	}
	cur, err := eng.CurrentEmail(ctx, CurrentEmailArgs{})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "current_email: %s (at version %d)\n", cur.Result, cur.Version)
	msgs, err := eng.Store().Undelivered(ctx, 10)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		fmt.Fprintf(w, "outbox: %s key=%s %s\n", m.Topic, m.Key, m.Payload)
	}
	return nil
}
