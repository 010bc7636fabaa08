package postgres_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// TestFleetRelayProcess is the relay process of TestFleetKillRelayProcess:
// it runs only in a child (THEUS_FLEET_SCHEMA set), a relay whose sink
// records each batch in the table received of the schema, in one
// statement, until the process is killed.
func TestFleetRelayProcess(t *testing.T) {
	schema, name := os.Getenv("THEUS_FLEET_SCHEMA"), os.Getenv("THEUS_FLEET_NAME")
	if schema == "" {
		return // the parent's run: the test is TestFleetKillRelayProcess
	}
	ctx := context.Background()
	st, err := postgres.Open(ctx, testDSN(), append(fleetOpts(time.Second), postgres.WithSchema(schema))...)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, testDSN())
	if err != nil {
		t.Fatal(err)
	}
	s := sinkFunc(func(ctx context.Context, batch []outbox.Message) (int, error) {
		ids, keys, seqs := make([]string, len(batch)), make([]string, len(batch)), make([]int64, len(batch))
		for i, m := range batch {
			ids[i], keys[i], seqs[i] = m.ID, m.Key, int64(m.KeySeq)
		}
		// pg_sleep: a sink that takes a while, so that kills land in the
		// middle of batches.
		_, err := pool.Exec(ctx, `WITH w AS (SELECT pg_sleep(0.002)) INSERT INTO `+schema+`.received (relay, id, key, seq)
			SELECT $1, id, key, seq FROM unnest($2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS u(id, key, seq, o), w ORDER BY o`,
			name, ids, keys, seqs)
		if err != nil {
			return 0, err
		}
		return len(batch), nil
	})
	err = outbox.NewRelay(st, s, outbox.WithBatchSize(25), outbox.WithPollInterval(time.Hour),
		outbox.WithRelayLogger(slog.New(slog.NewTextHandler(os.Stderr, nil)))).Run(ctx)
	t.Fatalf("the relay returned %v", err)
}

// child is a relay process.
type child struct {
	name string
	cmd  *exec.Cmd
	out  bytes.Buffer
}

func startRelayProcess(t *testing.T, schema, name string) *child {
	t.Helper()
	c := &child{name: name}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestFleetRelayProcess$", "-test.count=1")
	c.cmd.Env = append(os.Environ(), "THEUS_FLEET_SCHEMA="+schema, "THEUS_FLEET_NAME="+name)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		c.cmd.Wait()
		if t.Failed() {
			t.Logf("relay process %s:\n%s", name, c.out.String())
		}
	})
	return c
}

// Three relay processes deliver to one recording table while
// transactions enqueue; three times, one is killed (SIGKILL) in the
// middle of its work, and a new one starts; then one is stopped
// (SIGSTOP) past its lease and continued. The others take their
// partitions over: every message arrives, the first deliveries of each
// key come in KeySeq order without gaps, and every message delivered
// twice was sent once by a killed or stopped relay (sent, not acked: a
// stopped relay finishes the send it was in when it is continued).
func TestFleetKillRelayProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts relay processes")
	}
	ctx := context.Background()
	schema := freshSchema(t)
	st := openStore(t, schema, fleetOpts(time.Second)...)
	pool := userPool(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE `+schema+`.received (n bigserial PRIMARY KEY, relay text, id text, key text, seq bigint)`); err != nil {
		t.Fatal(err)
	}
	relays := []*child{startRelayProcess(t, schema, "0"), startRelayProcess(t, schema, "1"), startRelayProcess(t, schema, "2")}
	liveHolders := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(DISTINCT holder) FROM `+schema+`.theus_leases WHERE expires > clock_timestamp()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitUntil(t, 30*time.Second, "three relay processes hold leases", func() bool { return liveHolders() == 3 })

	var ids []string
	var mu sync.Mutex
	enqueue := func(rounds int) {
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range rounds {
					keys := make([]string, 10)
					for j := range keys {
						keys[j] = "k" + strconv.Itoa((w*11+i*7+j)%50)
					}
					out := enqueueKeys(t, st, pool, keys...)
					mu.Lock()
					for _, m := range out {
						ids = append(ids, m.ID)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	done := make(chan struct{})
	go func() { enqueue(100); close(done) }()
	// Kill a relay as soon as it has delivered something, three times,
	// while transactions enqueue; start a new one each time.
	killed := map[string]bool{}
	for k := range 3 {
		victim := relays[k]
		waitUntil(t, 30*time.Second, "relay "+victim.name+" delivers", func() bool {
			var n int
			pool.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.received WHERE relay = $1`, victim.name).Scan(&n)
			return n > 0
		})
		if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		victim.cmd.Wait()
		killed[victim.name] = true
		relays = append(relays, startRelayProcess(t, schema, strconv.Itoa(3+k)))
	}
	<-done

	// Stop a live relay (SIGSTOP) past its lease while transactions
	// enqueue; the others take its partitions over; then let it go on
	// (SIGCONT): it can change nothing it lost.
	paused := relays[3]
	holds := func() (mine, live int) {
		pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE holder LIKE '%/' || $1 || '/%'), count(*) FROM `+schema+`.theus_leases
			WHERE expires > clock_timestamp()`, strconv.Itoa(paused.cmd.Process.Pid)).Scan(&mine, &live)
		return mine, live
	}
	waitUntil(t, 30*time.Second, "relay 3 holds a lease", func() bool { mine, _ := holds(); return mine > 0 })
	if err := paused.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	killed[paused.name] = true // it may have sent a batch it will not ack
	done = make(chan struct{})
	go func() { enqueue(30); close(done) }()
	waitUntil(t, 30*time.Second, "the others hold every partition", func() bool { mine, live := holds(); return mine == 0 && live == 8 })
	<-done
	if err := paused.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	enqueue(10)

	waitUntil(t, 60*time.Second, "every message delivered", func() bool {
		var n int
		pool.QueryRow(ctx, `SELECT count(DISTINCT id) FROM `+schema+`.received`).Scan(&n)
		return n == len(ids)
	})
	rows, err := pool.Query(ctx, `SELECT relay, id, key, seq FROM `+schema+`.received ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	last := map[string]int64{}
	first := map[string]string{} // id -> relay of its first delivery
	dups := 0
	for rows.Next() {
		var relay, id, key string
		var seq int64
		if err := rows.Scan(&relay, &id, &key, &seq); err != nil {
			t.Fatal(err)
		}
		if by, ok := first[id]; ok {
			dups++
			// Sent twice: one of the two sends is by the relay that
			// lost the partition (before it died or stopped, or, for
			// the stopped one, after it was continued: the batch it
			// was sending), never two sends by live holders.
			if !killed[by] && !killed[relay] {
				t.Errorf("%s delivered by relay %s and again by relay %s, neither killed nor stopped", id, by, relay)
			}
			continue
		}
		first[id] = relay
		if seq != last[key]+1 {
			t.Errorf("key %s: KeySeq %d first delivered after %d (relay %s)", key, seq, last[key], relay)
		}
		last[key] = seq
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages, %d delivered twice (each sent once by a killed or stopped relay)", len(ids), dups)
}
