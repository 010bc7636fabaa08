package postgres_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// The child processes of the fleet's process tests: TestFleetChild runs
// only in a child (THEUS_FC_ROLE set), as a relay or as an engine.
//
// A relay's sink records each send in the table fleet_sent of the schema
// (one statement, with the relay's name and the send's number), and its
// Store records the outcome of the ack that follows in fleet_acks: the
// parent reads the trail from there (checkTrail).
//
// The engine transfers between THEUS_FC_ACCOUNTS accounts of the bank
// (a message per transfer, keyed by the account it is from) at about
// THEUS_FC_RATE transfers a second, and enqueues messages on the same
// topic and keys from transactions of its own (postgres.Enqueue); it
// writes "ready", then "R <id>" per transfer committed and "E <id>" per
// message enqueued, "X <error>" per failure, and "done" once its stdin is
// closed and its workers stopped.

// fleetEnv is the configuration of a child.
type fleetEnv struct {
	schema string
	parts  int
	lease  time.Duration
}

func (e fleetEnv) vars() []string {
	return []string{"THEUS_FC_SCHEMA=" + e.schema, "THEUS_FC_PARTS=" + strconv.Itoa(e.parts), "THEUS_FC_LEASE=" + e.lease.String()}
}

func (e fleetEnv) opts() []postgres.Option {
	return []postgres.Option{postgres.WithSchema(e.schema), postgres.WithPartitions(e.parts), postgres.WithRelayLease(e.lease)}
}

func envInt(name string) int {
	n, _ := strconv.Atoi(os.Getenv(name))
	return n
}

func TestFleetChild(t *testing.T) {
	role := os.Getenv("THEUS_FC_ROLE")
	if role == "" {
		return // the parent's run: this is the child of the tests below
	}
	lease, _ := time.ParseDuration(os.Getenv("THEUS_FC_LEASE"))
	env := fleetEnv{schema: os.Getenv("THEUS_FC_SCHEMA"), parts: envInt("THEUS_FC_PARTS"), lease: lease}
	switch role {
	case "relay":
		fleetRelayChild(t, env, os.Getenv("THEUS_FC_NAME"))
	case "engine":
		fleetEngineChild(t, env)
	default:
		t.Fatalf("THEUS_FC_ROLE=%s", role)
	}
}

// createTrailTables creates the tables a relay child records its trail
// in.
func createTrailTables(t *testing.T, pool *pgxpool.Pool, schema string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		CREATE TABLE `+schema+`.fleet_sent (n bigserial PRIMARY KEY, relay text NOT NULL, send bigint NOT NULL,
			id text NOT NULL, topic text NOT NULL, key text NOT NULL, seq bigint NOT NULL);
		CREATE INDEX ON `+schema+`.fleet_sent (id);
		CREATE TABLE `+schema+`.fleet_acks (relay text, send bigint, outcome text NOT NULL, fenced bigint NOT NULL,
			PRIMARY KEY (relay, send))`)
	if err != nil {
		t.Fatal(err)
	}
}

// fleetRelayChild is a relay process, until it is killed. With
// THEUS_FC_STOPKEY set, it stops itself (SIGSTOP) inside the first send
// that holds a key with that prefix, once the send is recorded: stopped
// in the middle of its work, with a send not acked.
func fleetRelayChild(t *testing.T, env fleetEnv, name string) {
	ctx := context.Background()
	st, err := postgres.Open(ctx, testDSN(), append(env.opts(), postgres.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))...)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, testDSN())
	if err != nil {
		t.Fatal(err)
	}
	ts := &trackedStore{Store: st}
	ts.record = func(ctx context.Context, send int64, outcome string, fenced uint64) {
		if _, err := pool.Exec(ctx, `INSERT INTO `+env.schema+`.fleet_acks (relay, send, outcome, fenced) VALUES ($1, $2, $3, $4)`,
			name, send, outcome, int64(fenced)); err != nil {
			fmt.Fprintf(os.Stderr, "record the ack of send %d: %v\n", send, err)
		}
	}
	stopKey := os.Getenv("THEUS_FC_STOPKEY")
	stopped := false
	sink := sinkFunc(func(ctx context.Context, batch []outbox.Message) (int, error) {
		n := ts.send.Add(1)
		ids, topics, keys, seqs := make([]string, len(batch)), make([]string, len(batch)), make([]string, len(batch)), make([]int64, len(batch))
		stop := false
		for i, m := range batch {
			ids[i], topics[i], keys[i], seqs[i] = m.ID, m.Topic, m.Key, int64(m.KeySeq)
			stop = stop || (stopKey != "" && strings.HasPrefix(m.Key, stopKey))
		}
		// pg_sleep: a sink that takes a while, so that kills land in the
		// middle of sends.
		_, err := pool.Exec(ctx, `WITH w AS (SELECT pg_sleep(0.002)) INSERT INTO `+env.schema+`.fleet_sent (relay, send, id, topic, key, seq)
			SELECT $1, $2, id, topic, key, seq FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[]) WITH ORDINALITY AS u(id, topic, key, seq, o), w ORDER BY o`,
			name, n, ids, topics, keys, seqs)
		if err != nil {
			return 0, err
		}
		if stop && !stopped {
			stopped = true
			// kill(2) of the process only queues SIGSTOP: another thread
			// takes it, and until then this one goes on — far enough to
			// send the ack. So the send returns only once continued.
			cont := make(chan os.Signal, 1)
			signal.Notify(cont, syscall.SIGCONT)
			syscall.Kill(os.Getpid(), syscall.SIGSTOP)
			<-cont
			signal.Stop(cont)
		}
		return len(batch), nil
	})
	batch, _ := strconv.Atoi(os.Getenv("THEUS_FC_BATCH"))
	err = outbox.NewRelay(ts, sink, outbox.WithBatchSize(batch),
		outbox.WithRelayLogger(slog.New(slog.NewTextHandler(os.Stderr, nil)))).Run(ctx)
	t.Fatalf("the relay returned %v", err)
}

// fleetEngineChild is the engine process.
func fleetEngineChild(t *testing.T, env fleetEnv) {
	ctx := context.Background()
	st, err := postgres.Open(ctx, testDSN(), env.opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	naccounts, hot, rate := envInt("THEUS_FC_ACCOUNTS"), envInt("THEUS_FC_HOT"), envInt("THEUS_FC_RATE")
	eng, err := bank.NewEngine(ctx, accounts(naccounts, 1<<40), bank.Bank{}, engine.WithStore(st))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	pool, err := pgxpool.New(ctx, testDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	printf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format, args...)
	}
	printf("ready\n")
	out.Flush()
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	// Half the messages are on a few hot keys, so that keys have long
	// sequences across hand-overs; the rest spread over every account.
	pick := func(r *rand.Rand) int {
		if r.IntN(2) == 0 {
			return r.IntN(hot)
		}
		return r.IntN(naccounts)
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	seed := uint64(time.Now().UnixNano())
	for w := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				from := pick(r)
				if w == 4 { // a transaction of the application's own
					var msgs []outbox.Message
					for range 1 + r.IntN(3) {
						msgs = append(msgs, outbox.Message{Topic: "transfer.completed", Key: accountID(pick(r)), Payload: []byte("enqueued")})
					}
					var got []outbox.Message
					err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
						var err error
						got, err = st.Enqueue(ctx, tx, msgs...)
						return err
					})
					if err != nil {
						printf("X enqueue: %v\n", err)
						continue
					}
					for _, m := range got {
						printf("E %s\n", m.ID)
					}
					continue
				}
				to := (from + 1 + r.IntN(naccounts-1)) % naccounts
				rc, err := eng.Transfer(ctx, bank.TransferArgs{From: accountID(from), To: accountID(to), Amount: 1})
				if err != nil {
					printf("X transfer: %v\n", err)
					continue
				}
				for _, id := range rc.MessageIDs {
					printf("R %s\n", id)
				}
			}
		}()
	}
	wg.Wait()
	printf("done\n")
	mu.Lock()
	out.Flush()
	mu.Unlock()
}

// fleetProc is a child process of the fleet tests.
type fleetProc struct {
	name   string
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{} // closed once the process ended and was waited for
}

// startFleetProc starts a child in role (relay or engine) with the extra
// environment variables; stdout, if not nil, gets its output. It is
// killed when the test ends.
func startFleetProc(t *testing.T, role, name string, stdout io.Writer, stdin io.Reader, env ...string) *fleetProc {
	t.Helper()
	p := &fleetProc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestFleetChild$", "-test.count=1")
	p.cmd.Env = append(append(os.Environ(), "THEUS_FC_ROLE="+role, "THEUS_FC_NAME="+name), env...)
	p.cmd.Stdout, p.cmd.Stderr, p.cmd.Stdin = stdout, &p.stderr, stdin
	if stdout == nil {
		p.cmd.Stdout = &p.stderr
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s process %s (pid %d):\n%s", role, name, p.cmd.Process.Pid, tail(p.stderr.String(), 4000))
		}
	})
	return p
}

// kill kills the process (SIGKILL) and waits for its end.
func (p *fleetProc) kill() {
	p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once continued
	p.cmd.Process.Kill()
	<-p.done
}

// stopped reports whether the process is stopped (SIGSTOP), by its state
// in /proc.
func (p *fleetProc) stopped() bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'T'
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// holderOf is the LIKE pattern of the lease holder names of process pid.
func holderOf(pid int) string { return "%/" + strconv.Itoa(pid) + "/%" }

// readTrail reads the trail the relay children recorded in schema: the
// sends in the order the sink recorded them, and the ack outcomes.
func readTrail(t *testing.T, pool *pgxpool.Pool, schema string) ([]sent, map[sendRef]string, map[sendRef]int64) {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT relay, send, id, topic, key, seq FROM `+schema+`.fleet_sent ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	trail, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sent, error) {
		var s sent
		err := r.Scan(&s.relay, &s.send, &s.id, &s.topic, &s.key, &s.seq)
		return s, err
	})
	if err != nil {
		t.Fatal(err)
	}
	outcome, fenced := map[sendRef]string{}, map[sendRef]int64{}
	rows, err = pool.Query(ctx, `SELECT relay, send, outcome, fenced FROM `+schema+`.fleet_acks`)
	if err != nil {
		t.Fatal(err)
	}
	var ref sendRef
	var o string
	var f int64
	if _, err := pgx.ForEachRow(rows, []any{&ref.relay, &ref.send, &o, &f}, func() error {
		outcome[ref], fenced[ref] = o, f
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return trail, outcome, fenced
}

// allDelivered reports whether every message of the outbox of schema is
// delivered (acked: st, a store of schema, counts none pending or parked)
// and recorded by a relay's sink.
func allDelivered(t *testing.T, pool *pgxpool.Pool, st *postgres.Store, schema string) bool {
	t.Helper()
	if openMessages(t, st) > 0 {
		return false
	}
	var unsent int
	err := pool.QueryRow(context.Background(), `SELECT count(*) FROM `+schema+`.theus_outbox o
		WHERE NOT EXISTS (SELECT 1 FROM `+schema+`.fleet_sent s WHERE s.id = o.id)`).Scan(&unsent)
	if err != nil {
		t.Fatal(err)
	}
	return unsent == 0
}

// openMessages counts the messages of st's outbox that are not delivered
// (pending or parked), as the store's Inspector says: a message acked
// through its partition's cursor keeps its row's state.
func openMessages(t testing.TB, st *postgres.Store) int {
	t.Helper()
	stats, err := st.TopicStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range stats {
		n += s.Pending + s.Parked
	}
	return n
}

// The kill test of the relay fleet (issue 18): four relay processes
// deliver what an engine process commits to 10,000 keys (transfers of the
// bank, and messages it enqueues from transactions of its own, on the
// same topic and keys); every 0.5 to 2 seconds (at random) one relay,
// picked at random, is killed with SIGKILL and started again, 30 times.
// Then the engine stops, the surviving relays drain the outbox, and the
// trail of sends their sinks recorded shows: every committed message sent
// at least once (every transfer the engine got a receipt for and every
// message it enqueued, and nothing else, is in the outbox), per key the
// first sends in KeySeq order with no gap, and every message sent more
// than once sent before only in a send that its relay did not ack: the
// one it was in when it was killed, or one whose ack the fencing token
// refused (checkTrail).
func TestFleetKillRelays(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 5 processes and kills relays 30 times")
	}
	const (
		nrelays   = 4
		kills     = 30
		naccounts = 10000
	)
	ctx := context.Background()
	env := fleetEnv{schema: freshSchema(t), parts: 16, lease: time.Second}
	st := openStore(t, env.schema, env.opts()[1:]...) // creates the store with its partitions
	pool := userPool(t)
	createTrailTables(t, pool, env.schema)
	began := time.Now()

	// The engine.
	var (
		emu   sync.Mutex
		lines []string
	)
	ready, ended := make(chan struct{}), make(chan struct{})
	engOut, engOutW := io.Pipe()
	engIn, engInW := io.Pipe()
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(engOut)
		first := true
		for sc.Scan() {
			if first && sc.Text() == "ready" {
				close(ready)
				first = false
				continue
			}
			emu.Lock()
			lines = append(lines, sc.Text())
			emu.Unlock()
		}
	}()
	eng := startFleetProc(t, "engine", "engine", engOutW, engIn, append(env.vars(),
		"THEUS_FC_ACCOUNTS="+strconv.Itoa(naccounts), "THEUS_FC_HOT=64", "THEUS_FC_RATE=400")...)
	go func() { <-eng.done; engOutW.Close() }()
	select {
	case <-ready:
	case <-eng.done:
		t.Fatalf("the engine process ended before it was ready")
	case <-time.After(60 * time.Second):
		t.Fatalf("the engine process not ready after 60s")
	}

	// The relays: slot i runs incarnation r<i>.<n>.
	relays := make([]*fleetProc, nrelays)
	gens := make([]int, nrelays)
	start := func(i int) {
		gens[i]++
		relays[i] = startFleetProc(t, "relay", fmt.Sprintf("r%d.%d", i, gens[i]), nil, nil,
			append(env.vars(), "THEUS_FC_BATCH=50")...)
	}
	for i := range relays {
		start(i)
	}
	var lastSent int64
	sentSoFar := func() int64 {
		var n *int64
		if err := pool.QueryRow(ctx, `SELECT max(n) FROM `+env.schema+`.fleet_sent`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == nil {
			return 0
		}
		return *n
	}
	holds := func(p *fleetProc) int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+env.schema+`.theus_leases WHERE holder LIKE $1 AND expires > clock_timestamp()`,
			holderOf(p.cmd.Process.Pid)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	seed := uint64(time.Now().UnixNano())
	rnd := rand.New(rand.NewPCG(seed, 18))
	killedMidRun := map[string]bool{}
	hit := 0 // kills of a relay that held leases
	for k := range kills {
		// The schedule of the chaos, not a synchronisation: a random
		// interval between kills.
		time.Sleep(500*time.Millisecond + time.Duration(rnd.Int64N(int64(1500*time.Millisecond))))
		// The fleet delivers between kills.
		waitUntil(t, 60*time.Second, fmt.Sprintf("kill %d: the relays deliver", k), func() bool {
			for _, r := range relays {
				select {
				case <-r.done:
					t.Fatalf("relay process %s ended on its own:\n%s", r.name, tail(r.stderr.String(), 4000))
				default:
				}
			}
			return sentSoFar() > lastSent
		})
		lastSent = sentSoFar()
		i := rnd.IntN(nrelays)
		victim := relays[i]
		if holds(victim) > 0 {
			hit++
		}
		victim.kill()
		killedMidRun[victim.name] = true
		start(i)
	}
	killsDone := time.Since(began)

	// Stop the engine, let the relays drain.
	engInW.Close()
	select {
	case <-eng.done:
	case <-time.After(60 * time.Second):
		t.Fatal("the engine process did not stop within 60s of its stdin closing")
	}
	<-ended
	if ps := eng.cmd.ProcessState; !ps.Success() {
		t.Errorf("the engine process ended with %v:\n%s", ps, tail(eng.stderr.String(), 4000))
	}
	if !pollFor(120*time.Second, func() bool { return allDelivered(t, pool, st, env.schema) }) {
		// Go on: the trail says which messages were lost.
		t.Errorf("after 120s: not every message delivered and recorded")
	}
	drained := time.Since(began)
	for _, r := range relays {
		r.kill()
	}

	// What the engine committed is what the outbox holds.
	all := committedMessages(t, pool, env.schema)
	var transfers, enqueued int
	emu.Lock()
	done := false
	var failures []string
	for _, l := range lines {
		if done {
			break // what follows is the test framework's
		}
		kind, id, _ := strings.Cut(l, " ")
		switch kind {
		case "R", "E":
			if _, ok := all[id]; !ok {
				t.Errorf("message %s (%s) committed by the engine process is not in the outbox", id, kind)
			}
			if kind == "R" {
				transfers++
			} else {
				enqueued++
			}
		case "done":
			done = true
		default:
			failures = append(failures, l)
		}
	}
	emu.Unlock()
	if len(failures) > 0 {
		t.Errorf("the engine process failed %d times, first: %v", len(failures), failures[:min(len(failures), 5)])
	}
	if !done {
		t.Errorf("the engine process did not finish its work")
	}
	if len(all) != transfers+enqueued {
		t.Errorf("the outbox holds %d messages; the engine committed %d transfers and enqueued %d", len(all), transfers, enqueued)
	}
	if hit < kills/3 {
		t.Errorf("only %d of %d kills hit a relay holding leases: the test did not exercise hand-overs", hit, kills)
	}

	trail, outcome, fenced := readTrail(t, pool, env.schema)
	lastSend := map[string]int64{}
	for _, s := range trail {
		lastSend[s.relay] = max(lastSend[s.relay], s.send)
	}
	v := checkTrail(all, trail, outcome, func(r sendRef) bool { return killedMidRun[r.relay] && r.send == lastSend[r.relay] }, false, nil)
	v.report(t, "kill test")
	var nfenced, nfencedMsgs int64
	for r, o := range outcome {
		if o == ackFenced {
			nfenced++
			nfencedMsgs += fenced[r]
		}
	}
	keys := map[string]bool{}
	for _, c := range all {
		keys[c.key] = true
	}
	t.Logf("seed %d: %d kills (%d of a relay holding leases) in %v; %d transfers and %d enqueued messages on %d keys; drained at %v; %d sends, %d acks refused by the fencing token (%d messages)",
		seed, kills, hit, killsDone.Round(time.Millisecond), transfers, enqueued, len(keys), drained.Round(time.Millisecond), len(outcome), nfenced, nfencedMsgs)
}

// The pause test of the relay fleet (issue 18): of three relay processes,
// one (p) stops itself (SIGSTOP) in the middle of a send, after its sink
// recorded it and before its ack. Past its lease, the other two take its
// partitions over and deliver the messages of that send again, and what
// is enqueued meanwhile. Then p is continued (SIGCONT): its ack is
// refused by the fencing token — every message of the send counted as
// refused — and nothing in the outbox changes, while p takes partitions
// again and delivers. In the trail, the messages of p's stopped send are
// the only ones sent twice, and per-key order holds.
func TestFleetPauseRelayProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts relay processes")
	}
	ctx := context.Background()
	env := fleetEnv{schema: freshSchema(t), parts: 8, lease: time.Second}
	st := openStore(t, env.schema, env.opts()[1:]...)
	pool := userPool(t)
	createTrailTables(t, pool, env.schema)
	relay := func(name string, extra ...string) *fleetProc {
		return startFleetProc(t, "relay", name, nil, nil, append(append(env.vars(), "THEUS_FC_BATCH=20"), extra...)...)
	}
	a, b := relay("a"), relay("b")
	p := relay("p", "THEUS_FC_STOPKEY=pause-")
	live := func(pattern string, not bool) int {
		var n int
		q := `SELECT count(*) FROM ` + env.schema + `.theus_leases WHERE expires > clock_timestamp() AND holder LIKE $1`
		if not {
			q = `SELECT count(*) FROM ` + env.schema + `.theus_leases WHERE expires > clock_timestamp() AND holder NOT LIKE $1`
		}
		if err := pool.QueryRow(ctx, q, pattern).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitUntil(t, 30*time.Second, "each of the three relays holds leases", func() bool {
		return live(holderOf(a.cmd.Process.Pid), false) > 0 && live(holderOf(b.cmd.Process.Pid), false) > 0 && live(holderOf(p.cmd.Process.Pid), false) > 0
	})
	// keysIn returns n keys with the prefix of the partition part.
	keysIn := func(part, n int, prefix string) []string {
		rows, err := pool.Query(ctx, `SELECT k FROM (SELECT $3::text || g AS k FROM generate_series(1, 100000) g) x
			WHERE abs(hashtextextended('t' || chr(31) || k, 0) % $2) = $1 LIMIT $4`, part, env.parts, prefix, n)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(keys) != n {
			t.Fatalf("keys of partition %d: %v %v", part, keys, err)
		}
		return keys
	}
	background := func(rounds int) {
		for i := range rounds {
			keys := make([]string, 8)
			for j := range keys {
				keys[j] = "k" + strconv.Itoa((i*5+j*3)%40)
			}
			enqueueKeys(t, st, pool, keys...)
		}
	}
	background(10)

	// A send of p with the key that stops it: a key of a partition p
	// holds, with others of that partition in the same transaction.
	for attempt := 0; !p.stopped(); attempt++ {
		if attempt == 5 {
			t.Fatal("relay p did not get the stopping key in 5 attempts")
		}
		var part int
		if err := pool.QueryRow(ctx, `SELECT part FROM `+env.schema+`.theus_leases WHERE holder LIKE $1 AND expires > clock_timestamp() LIMIT 1`,
			holderOf(p.cmd.Process.Pid)).Scan(&part); err != nil {
			t.Fatalf("the partitions of p: %v", err)
		}
		marker := keysIn(part, 1, fmt.Sprintf("pause-%d-", attempt))
		enqueueKeys(t, st, pool, append(keysIn(part, 5, "s-"), marker...)...)
		waitUntil(t, 30*time.Second, "p stops, or another relay sends the stopping key", func() bool {
			if p.stopped() {
				return true
			}
			var n int
			pool.QueryRow(ctx, `SELECT count(*) FROM `+env.schema+`.fleet_sent WHERE key = $1 AND relay <> 'p'`, marker[0]).Scan(&n)
			return n > 0
		})
	}
	var stoppedSend int64
	if err := pool.QueryRow(ctx, `SELECT max(send) FROM `+env.schema+`.fleet_sent WHERE relay = 'p'`).Scan(&stoppedSend); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT id FROM `+env.schema+`.fleet_sent WHERE relay = 'p' AND send = $1`, stoppedSend)
	if err != nil {
		t.Fatal(err)
	}
	inFlight, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}

	// Past p's lease, the other two hold every partition and deliver
	// everything, p's stopped send included, and what comes meanwhile.
	background(20)
	waitUntil(t, 30*time.Second, "the two other relays hold every partition", func() bool {
		return live(holderOf(p.cmd.Process.Pid), true) == env.parts
	})
	pollUntil(t, 30*time.Second, "every message delivered while p is stopped", func() bool { return allDelivered(t, pool, st, env.schema) })
	if !p.stopped() {
		t.Fatal("p is no longer stopped")
	}
	outboxState := func() string {
		var s string
		if err := pool.QueryRow(ctx, `SELECT string_agg(concat_ws(' ', id, state, delivered_at, attempts, last_error, part), E'\n' ORDER BY id)
			FROM `+env.schema+`.theus_outbox`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := outboxState()

	// p goes on: its ack is refused, it changes nothing, and it takes
	// part again.
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	var outcome string
	var fenced int64
	waitUntil(t, 30*time.Second, "p's ack of its stopped send", func() bool {
		err := pool.QueryRow(ctx, `SELECT outcome, fenced FROM `+env.schema+`.fleet_acks WHERE relay = 'p' AND send = $1`, stoppedSend).Scan(&outcome, &fenced)
		return err == nil
	})
	if outcome != ackFenced || fenced != int64(len(inFlight)) {
		t.Errorf("p's ack of its stopped send of %d messages: %s, %d messages refused by the fencing token; want all %d refused",
			len(inFlight), outcome, fenced, len(inFlight))
	}
	waitUntil(t, 30*time.Second, "p holds leases again", func() bool { return live(holderOf(p.cmd.Process.Pid), false) > 0 })
	if after := outboxState(); after != before {
		t.Errorf("the outbox changed after p was continued, with nothing enqueued:\nbefore:\n%s\nafter:\n%s", tail(before, 2000), tail(after, 2000))
	}
	background(10)
	pollUntil(t, 30*time.Second, "every message delivered", func() bool { return allDelivered(t, pool, st, env.schema) })
	for _, r := range []*fleetProc{a, b, p} {
		r.kill()
	}

	trail, outcomes, _ := readTrail(t, pool, env.schema)
	v := checkTrail(committedMessages(t, pool, env.schema), trail, outcomes, nil, false, nil)
	v.report(t, "pause test")
	times := map[string]int{}
	for _, s := range trail {
		times[s.id]++
	}
	for _, id := range inFlight {
		if times[id] != 2 {
			t.Errorf("message %s of p's stopped send sent %d times, want twice", id, times[id])
		}
	}
	if repeated := v.deliveries - v.distinct; repeated != len(inFlight) {
		t.Errorf("%d messages sent again, want only the %d of p's stopped send", repeated, len(inFlight))
	}
	if v.redelivered[ackFenced] != len(inFlight) {
		t.Errorf("repeats %v, want %d after a send whose ack was refused", v.redelivered, len(inFlight))
	}
}
