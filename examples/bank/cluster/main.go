// Command cluster runs the bank example as several engine instances,
// separate OS processes, on one PostgreSQL database, and checks the bank's
// invariants over the whole shared history at the end:
//
//	go run ./examples/bank/cluster -store postgres://user:password@host:5432/db -instances 3
//
// The parent starts -instances copies of itself in worker mode; each opens
// its own store and engine on the schema (-schema, default bank_cluster)
// and runs -workers goroutines of -transfers random transfers among
// -accounts accounts. Every worker prints each receipt on stdout as it gets
// it ("R <version> <message id>"); the parent collects them. At the end it
// reads the history (engine History) and checks that
//
//   - versions are dense and every receipt a caller saw is in it, with its
//     message;
//   - at every version, the total is unchanged and no balance is negative;
//   - there is exactly one transfer.completed per committed transfer, with
//     a gap-free KeySeq per debited account;
//   - with -relay, a relay process delivered every message into the table
//     <schema>.bank_deliveries at least once, and deduplicating by (key,
//     KeySeq) leaves one delivery per commit.
//
// The schema must be new (or empty); -reset drops it first. The other
// modes, used by the parent and by the tests: `cluster worker …` (one
// instance; -transfers 0 runs until killed) and `cluster relay …` (one
// relay process delivering into bank_deliveries).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cli(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

// config is every mode's flags.
type config struct {
	store, schema      string
	accounts           int
	balance            int64
	instances, workers int
	transfers          int
	seed               uint64
	relay, reset       bool
}

func cli(ctx context.Context, args []string, out io.Writer) error {
	mode := "run"
	if len(args) > 0 && (args[0] == "worker" || args[0] == "relay") {
		mode, args = args[0], args[1:]
	}
	var cfg config
	fs := flag.NewFlagSet("cluster "+mode, flag.ContinueOnError)
	fs.StringVar(&cfg.store, "store", envOr("THEUS_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"), "PostgreSQL URL (default $THEUS_TEST_POSTGRES or the local server's database test)")
	fs.StringVar(&cfg.schema, "schema", "bank_cluster", "the store's schema, shared by every instance")
	fs.IntVar(&cfg.accounts, "accounts", 100, "accounts, acc-000…")
	fs.Int64Var(&cfg.balance, "balance", 100, "initial balance of every account")
	fs.IntVar(&cfg.instances, "instances", 3, "engine processes (run)")
	fs.IntVar(&cfg.workers, "workers", 8, "goroutines per instance")
	fs.IntVar(&cfg.transfers, "transfers", 5000, "transfers per goroutine (worker: 0 runs until killed)")
	fs.Uint64Var(&cfg.seed, "seed", uint64(time.Now().UnixNano()), "random seed (worker)")
	fs.BoolVar(&cfg.relay, "relay", false, "also run a relay process and check the deliveries (run)")
	fs.BoolVar(&cfg.reset, "reset", false, "drop the schema first (run)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch mode {
	case "worker":
		return worker(ctx, cfg, out)
	case "relay":
		return relay(ctx, cfg, out)
	}
	return runCluster(ctx, cfg, out)
}

func envOr(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

func accountID(i int) string { return fmt.Sprintf("acc-%03d", i) }

// initial is the state every instance starts from: they must all agree.
func initial(cfg config) bank.State {
	s := bank.State{Domain: bank.DomainState{Accounts: map[string]bank.Account{}}}
	for i := range cfg.accounts {
		id := accountID(i)
		s.Domain.Accounts[id] = bank.Account{ID: id, Owner: "owner " + id, Balance: cfg.balance}
	}
	return s
}

// open opens an instance: a store of its own on the shared schema and an
// engine on it.
func open(ctx context.Context, cfg config) (*postgres.Store, *bank.Engine, error) {
	st, err := postgres.Open(ctx, cfg.store, postgres.WithSchema(cfg.schema))
	if err != nil {
		return nil, nil, err
	}
	eng, err := bank.NewEngine(ctx, initial(cfg), bank.Bank{}, engine.WithStore(st))
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, eng, nil
}

// lineWriter writes whole lines, one Write each, from several goroutines:
// a process killed mid-way leaves at most one line without its newline,
// which readers drop.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}

// worker is one instance: "ready" once its engine is open, then a line
// "R <version> <message id>" per committed transfer as its caller gets the
// receipt, and "done <committed> <refused>" at the end.
func worker(ctx context.Context, cfg config, out io.Writer) error {
	st, eng, err := open(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	defer eng.Close()
	w := &lineWriter{w: out}
	w.printf("ready\n")
	var (
		wg                 sync.WaitGroup
		mu                 sync.Mutex
		committed, refused int
		firstErr           error
	)
	for g := range cfg.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(cfg.seed, uint64(g)))
			ok, no := 0, 0
			var err error
			for i := 0; (cfg.transfers == 0 || i < cfg.transfers) && ctx.Err() == nil; i++ {
				from, to := r.IntN(cfg.accounts), r.IntN(cfg.accounts-1)
				if to >= from {
					to++
				}
				rc, terr := eng.Transfer(ctx, bank.TransferArgs{From: accountID(from), To: accountID(to), Amount: int64(1 + r.IntN(60))})
				switch {
				case terr == nil:
					if len(rc.MessageIDs) != 1 {
						err = fmt.Errorf("a transfer's receipt at version %d has %d messages", rc.Version, len(rc.MessageIDs))
					} else {
						w.printf("R %d %s\n", rc.Version, rc.MessageIDs[0])
						ok++
					}
				case errors.Is(terr, engine.ErrRuleViolation):
					no++
				case ctx.Err() != nil:
				default:
					err = terr
				}
				if err != nil {
					break
				}
			}
			mu.Lock()
			defer mu.Unlock()
			committed += ok
			refused += no
			if err != nil && firstErr == nil {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	w.printf("done %d %d\n", committed, refused)
	return nil
}

// deliveries is the relay's sink: it inserts every message it is given
// into <schema>.bank_deliveries, with no key, so redeliveries show.
type deliveries struct {
	pool  *pgxpool.Pool
	table string
}

func deliveriesTable(schema string) string { return schema + ".bank_deliveries" }

func createDeliveries(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	_, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema+`;
		CREATE TABLE IF NOT EXISTS `+deliveriesTable(schema)+` (
			id text NOT NULL, version bigint NOT NULL, topic text NOT NULL, key text NOT NULL, key_seq bigint NOT NULL)`)
	return err
}

func (d *deliveries) Send(ctx context.Context, batch []outbox.Message) (int, error) {
	ids, topics, keys := make([]string, len(batch)), make([]string, len(batch)), make([]string, len(batch))
	versions, seqs := make([]int64, len(batch)), make([]int64, len(batch))
	for i, m := range batch {
		ids[i], topics[i], keys[i], versions[i], seqs[i] = m.ID, m.Topic, m.Key, int64(m.Version), int64(m.KeySeq)
	}
	_, err := d.pool.Exec(ctx, `INSERT INTO `+d.table+` (id, version, topic, key, key_seq)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[])`, ids, versions, topics, keys, seqs)
	if err != nil {
		return 0, outbox.Unavailable(err)
	}
	return len(batch), nil
}

// relay is one relay process: it delivers into bank_deliveries until
// killed or interrupted, and waits its turn while another relay holds the
// schema (a killed relay's claim goes with its connection).
func relay(ctx context.Context, cfg config, out io.Writer) error {
	st, err := postgres.Open(ctx, cfg.store, postgres.WithSchema(cfg.schema))
	if err != nil {
		return err
	}
	defer st.Close()
	pool, err := pgxpool.New(ctx, cfg.store)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := createDeliveries(ctx, pool, cfg.schema); err != nil {
		return err
	}
	r := outbox.NewRelay(st, &deliveries{pool: pool, table: deliveriesTable(cfg.schema)})
	fmt.Fprintf(out, "ready\n")
	for backoff := 10 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		err := r.Run(ctx)
		if !errors.Is(err, outbox.ErrRelayRunning) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// Receipt is what a caller saw: the version and message of its transfer.
type Receipt struct {
	Version uint64
	ID      string
}

// childEnv is set in every child's environment: a test binary that
// re-runs itself as a child (TestMain) sees it and runs cli instead of
// the tests.
const childEnv = "THEUS_BANK_CLUSTER_CHILD"

// Proc is a child process of the cluster: a worker or a relay.
type Proc struct {
	cmd   *exec.Cmd
	ready chan struct{}
	done  chan struct{} // closed once stdout is read to the end
	Err   error         // of the process, once done is closed
}

// Start runs `<exe> <args>` with env added, sends every receipt line it
// prints to receipts (lines cut short by a kill are dropped) and closes
// ready at its "ready" line.
func Start(exe string, env []string, args []string, receipts func(Receipt), stderr io.Writer) (*Proc, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		br := bufio.NewReader(stdout)
		readyOnce := false
		for {
			line, err := br.ReadString('\n')
			if err != nil { // EOF: a last line without its newline was cut by a kill
				break
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "ready" && !readyOnce:
				readyOnce = true
				close(p.ready)
			case strings.HasPrefix(line, "R "):
				f := strings.Fields(line)
				if v, err := strconv.ParseUint(f[1], 10, 64); err == nil && len(f) == 3 {
					receipts(Receipt{v, f[2]})
				}
			}
		}
		p.Err = cmd.Wait()
	}()
	return p, nil
}

// Ready is closed when the process has said it is ready.
func (p *Proc) Ready() <-chan struct{} { return p.ready }

// Done is closed when the process has ended and its output is read.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Kill sends SIGKILL and waits for the process to end.
func (p *Proc) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits for the process to end.
func (p *Proc) Stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
}

// runCluster is the default mode: -instances worker processes (and a
// relay with -relay) on a new schema, then Check.
func runCluster(ctx context.Context, cfg config, out io.Writer) error {
	pool, err := pgxpool.New(ctx, cfg.store)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.reset {
		if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+cfg.schema+` CASCADE`); err != nil {
			return err
		}
	}
	if cfg.relay {
		if err := createDeliveries(ctx, pool, cfg.schema); err != nil {
			return err
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "cluster: %d instances x %d goroutines x %d transfers among %d accounts on %s, schema %s\n",
		cfg.instances, cfg.workers, cfg.transfers, cfg.accounts, postgres.RedactDSN(cfg.store), cfg.schema)
	var (
		mu       sync.Mutex
		receipts []Receipt
	)
	collect := func(r Receipt) {
		mu.Lock()
		receipts = append(receipts, r)
		mu.Unlock()
	}
	common := []string{"-store", cfg.store, "-schema", cfg.schema, "-accounts", strconv.Itoa(cfg.accounts), "-balance", strconv.FormatInt(cfg.balance, 10)}
	var relayProc *Proc
	if cfg.relay {
		if relayProc, err = Start(exe, nil, append([]string{"relay"}, common...), collect, os.Stderr); err != nil {
			return err
		}
		defer relayProc.Stop()
	}
	start := time.Now()
	procs := make([]*Proc, cfg.instances)
	for i := range procs {
		args := append(append([]string{"worker"}, common...), "-workers", strconv.Itoa(cfg.workers),
			"-transfers", strconv.Itoa(cfg.transfers), "-seed", strconv.FormatUint(cfg.seed+uint64(i)*1_000_003, 10))
		if procs[i], err = Start(exe, nil, args, collect, os.Stderr); err != nil {
			return err
		}
	}
	var errs []error
	for i, p := range procs {
		<-p.Done()
		if p.Err != nil {
			errs = append(errs, fmt.Errorf("instance %d: %w", i, p.Err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	elapsed := time.Since(start)
	rep, err := Check(ctx, cfg, pool, receipts, cfg.relay, 2*time.Minute)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%d transfers committed in %v (%.0f/s), %d refused; %s\n",
		len(receipts), elapsed.Round(time.Millisecond), float64(len(receipts))/elapsed.Seconds(),
		cfg.instances*cfg.workers*cfg.transfers-len(receipts), rep)
	return nil
}
