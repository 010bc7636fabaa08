package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/console"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// benchStore returns a SQLite bank store with n commits (transfers, one
// message each) of which the last undelivered are not acked, and 1,000
// accounts. It is built once per (n, undelivered) in the temp directory
// and kept there for the next run (THEUS_CONSOLE_BENCH_KEEP=0 rebuilds).
func benchStore(b *testing.B, n, undelivered int) string {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("theus-console-bench-%d-%d.db", n, undelivered))
	if _, err := os.Stat(path + ".done"); err == nil && os.Getenv("THEUS_CONSOLE_BENCH_KEEP") != "0" {
		return path
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + ".done"} {
		os.Remove(p)
	}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	initial := bank.State{Domain: bank.DomainState{Accounts: map[string]bank.Account{}}}
	for i := range 1000 {
		id := fmt.Sprintf("acc-%03d", i)
		initial.Domain.Accounts[id] = bank.Account{ID: id, Owner: "owner " + id, Balance: 1 << 40}
	}
	eng, err := bank.NewEngine(ctx, initial, bank.Bank{}, engine.WithStore(st))
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	const workers = 64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				from, to := i%1000, (i+1)%1000
				if _, err := eng.Transfer(ctx, bank.TransferArgs{From: fmt.Sprintf("acc-%03d", from), To: fmt.Sprintf("acc-%03d", to), Amount: 1}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Deliver all but the last undelivered messages.
	for left := n - undelivered; left > 0; {
		msgs, err := st.Undelivered(ctx, min(left, 10000))
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = m.ID
		}
		if err := st.Ack(ctx, ids); err != nil {
			b.Fatal(err)
		}
		left -= len(msgs)
	}
	msgs, err := st.Undelivered(ctx, 1)
	if err != nil || len(msgs) != 1 {
		b.Fatal(msgs, err)
	}
	if _, err := st.Failed(ctx, msgs[0].ID, "receiver said 400", true, 0); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path+".done", nil, 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkPages renders each page of the console on a store with
// THEUS_CONSOLE_BENCH_COMMITS commits (default 1,000,000) in its history,
// a tenth of them undelivered:
//
//	go test -run '^$' -bench Pages -benchtime 20x ./runtime/console
func BenchmarkPages(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("THEUS_CONSOLE_BENCH_COMMITS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	path := benchStore(b, n, n/10)
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	h, err := console.New(st)
	if err != nil {
		b.Fatal(err)
	}
	mid := strconv.Itoa(n / 2)
	for _, p := range []string{"/", "/parked", "/history", "/history?before=" + mid, "/history?process=transfer&from=" + mid,
		"/history?key=acc-007", "/history?topic=account.opened", "/commits/" + mid, "/tail"} {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s = %d\n%s", p, rec.Code, rec.Body)
				}
			}
		})
	}
}
