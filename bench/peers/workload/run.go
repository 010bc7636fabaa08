package workload

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A System is one implementation of the workload, opened for one run.
type System interface {
	// Commit runs tx: it updates the user and records tx.Event(counter) in
	// one transaction, and returns once that transaction is durable.
	Commit(ctx context.Context, tx *Tx) error
	// StartRelay starts the relay, which delivers committed events to an
	// in-process channel, and the consumer goroutine that reads the
	// channel and hands each payload to recv. Both run until ctx ends; the
	// returned channel then yields the relay's error (nil if ctx ended
	// it) once both have stopped.
	StartRelay(ctx context.Context, recv func(payload []byte)) (<-chan error, error)
	// Close releases what Open took; the relay has stopped.
	Close() error
}

// An Impl is an implementation of the workload.
type Impl struct {
	Name string
	// Server is set for implementations on the PostgreSQL server: the CPU
	// time of its processes is measured with the client's.
	Server bool
	// Open sets up a System for one run from scratch: its tables created
	// anew, with users UserID(0) to UserID(cfg.Users-1), counter 0 and
	// InitialEmail, and its connections open.
	Open func(ctx context.Context, cfg Config) (System, error)
}

// Main is the whole main of an implementation binary: it reads the flags,
// runs the workload once and prints the Result as one JSON line. Exit
// status 2 is a usage error, 1 a failed run.
func Main(impl Impl) {
	os.Exit(main1(impl, os.Args[1:], os.Stdout, os.Stderr))
}

func main1(impl Impl, args []string, stdout, stderr io.Writer) int {
	cfg, err := ParseFlags(impl.Name, args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "%s: %v\n", impl.Name, err)
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if path := os.Getenv("THEUS_PEERS_CPUPROFILE"); path != "" {
		// A profile of the whole run, for finding where a figure goes.
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s: cpu profile: %v\n", impl.Name, err)
			return 1
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	res, err := Run(ctx, impl, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", impl.Name, err)
		return 1
	}
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", impl.Name, err)
		return 1
	}
	return 0
}

// Run opens impl, runs the workload that cfg describes and measures it.
func Run(ctx context.Context, impl Impl, cfg Config) (res Result, err error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	sys, err := impl.Open(ctx, cfg)
	if err != nil {
		return Result{}, fmt.Errorf("open: %w", err)
	}
	defer func() {
		if cerr := sys.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	users := make([]string, cfg.Users)
	for i := range users {
		users[i] = UserID(i)
	}
	// One transaction before anything is measured pays what a first
	// commit pays once (statements prepared, the SQLite store's first
	// snapshot); the consumer ignores its event (ID 0).
	warm := Tx{User: users[0], Email: InitialEmail(users[0]), UpdatedAt: time.Now().UnixNano(), StartNS: Clock()}
	if err := sys.Commit(ctx, &warm); err != nil {
		return Result{}, fmt.Errorf("warm-up commit: %w", err)
	}

	r := run{ctx: ctx, sys: sys, cfg: cfg, impl: impl, cons: newConsumer(), users: users}
	defer r.stopRelay()
	if cfg.Prefill > 0 {
		err = r.drain()
	} else {
		err = r.steady()
	}
	if err != nil {
		return Result{}, err
	}
	if err := r.stopRelay(); err != nil {
		return Result{}, fmt.Errorf("relay: %w", err)
	}
	return r.result(), nil
}

// run is the state of one Run.
type run struct {
	ctx   context.Context
	sys   System
	cfg   Config
	impl  Impl
	users []string
	cons  *consumer

	relayCancel context.CancelFunc
	relayDone   <-chan error
	relayErr    error
	relayOver   bool // relayDone has yielded relayErr

	prod  produced
	start int64 // Clock when the measured window started
	cpu   cpuWindow
	relay bool // the relay ran while producers committed
}

// steady runs producers for the duration (or -n transactions), with or
// without the relay. The window starts with the producers and ends with
// the last delivery (with a relay) or with the last commit (without).
func (r *run) steady() error {
	if r.cfg.Relay {
		if err := r.startRelay(); err != nil {
			return err
		}
		// The warm-up event's delivery proves the relay and the consumer
		// are running before the clock starts.
		if err := r.await(r.cons.warm, "the warm-up event"); err != nil {
			return err
		}
		r.relay = true
	}
	if err := r.cpu.begin(r.impl.Server); err != nil {
		return err
	}
	r.start = Clock()
	var err error
	r.prod, err = produce(r.ctx, r.sys, r.cfg, r.users, r.cfg.N, r.cfg.Duration)
	if err != nil {
		return err
	}
	if r.cfg.Relay {
		if err := r.awaitDelivery(); err != nil {
			return err
		}
	}
	return r.cpu.end()
}

// drain commits the backlog with no relay running, then starts the relay
// and times it until the whole backlog is delivered: the window starts
// with the relay.
func (r *run) drain() error {
	var err error
	r.prod, err = produce(r.ctx, r.sys, r.cfg, r.users, r.cfg.Prefill, 0)
	if err != nil {
		return err
	}
	if err := r.cpu.begin(r.impl.Server); err != nil {
		return err
	}
	r.start = Clock()
	if err := r.startRelay(); err != nil {
		return err
	}
	if err := r.awaitDelivery(); err != nil {
		return err
	}
	return r.cpu.end()
}

func (r *run) startRelay() error {
	ctx, cancel := context.WithCancel(r.ctx)
	done, err := r.sys.StartRelay(ctx, r.cons.Receive)
	if err != nil {
		cancel()
		return fmt.Errorf("start relay: %w", err)
	}
	r.relayCancel, r.relayDone = cancel, done
	return nil
}

// stopRelay stops the relay if it runs, and returns its error.
func (r *run) stopRelay() error {
	if r.relayDone != nil && !r.relayOver {
		r.relayCancel()
		r.relayErr, r.relayOver = <-r.relayDone, true
	}
	return r.relayErr
}

// awaitDelivery waits until the consumer has every committed event, or
// until the relay delivered nothing new for -wait: what is missing then
// counts as lost. A slow relay that still delivers is waited for. The
// window ends here.
func (r *run) awaitDelivery() error {
	if r.prod.commits == 0 {
		return nil
	}
	r.cons.expect(r.prod.commits)
	for {
		before := r.cons.delivered()
		err := r.await(r.cons.done, "every event")
		if !errors.Is(err, errTimeout) {
			return err
		}
		if r.cons.delivered() == before {
			return nil
		}
	}
}

var errTimeout = errors.New("timed out")

// await waits for c to close, for at most -wait; it fails early if the
// relay stops by itself.
func (r *run) await(c <-chan struct{}, what string) error {
	t := time.NewTimer(r.cfg.Wait)
	defer t.Stop()
	select {
	case <-c:
		return nil
	case r.relayErr = <-r.relayDone:
		r.relayOver = true
		return fmt.Errorf("relay stopped before delivering %s: %v", what, r.relayErr)
	case <-t.C:
		return fmt.Errorf("waiting %v for %s: %w", r.cfg.Wait, what, errTimeout)
	case <-r.ctx.Done():
		return r.ctx.Err()
	}
}

func (r *run) result() Result {
	c := r.cons.result()
	res := Result{
		Impl: r.impl.Name, C: r.cfg.C, Relay: r.relay, Prefill: r.cfg.Prefill, Users: r.cfg.Users,
		Commits:   r.prod.commits,
		CommitTPS: round(float64(r.prod.commits)/(float64(r.prod.end-r.prod.start)/1e9), 1),
		AckP50:    round(percentileMS(r.prod.acks, 50), 3),
		AckP99:    round(percentileMS(r.prod.acks, 99), 3),
		Seconds:   round(r.cpu.seconds, 3),
		ClientCPU: round(r.cpu.client, 3),
		ServerCPU: round(r.cpu.server, 3),
		Go:        runtime.Version(),
		Date:      time.Now().UTC().Format(time.RFC3339),
	}
	msgs := r.prod.commits
	if r.relayDone != nil {
		msgs = c.distinct
		res.Delivered = c.distinct
		res.Duplicates = c.dups
		res.Lost = r.prod.commits - c.distinct
		res.E2EP50 = round(percentileMS(c.e2e, 50), 3)
		res.E2EP99 = round(percentileMS(c.e2e, 99), 3)
		if c.distinct > 0 {
			res.EventBytes = round(float64(c.bytes)/float64(c.distinct), 1)
			mps := round(float64(c.distinct)/(float64(c.last-r.start)/1e9), 1)
			if r.cfg.Prefill > 0 {
				res.DrainMPS = mps
			} else {
				res.RelayMPS = mps
			}
		}
	}
	if msgs > 0 {
		res.CPUPerMsg = round((r.cpu.client+r.cpu.server)/float64(msgs)*1e6, 2)
	}
	return res
}

// produced is what the producers did.
type produced struct {
	commits    int64
	start, end int64   // Clock
	acks       []int64 // commit latencies, ns
}

// produce runs cfg.C producers that commit transactions on random users,
// until n transactions are committed (n > 0) or for d.
func produce(ctx context.Context, sys System, cfg Config, users []string, n int, d time.Duration) (produced, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Uint64
		mu       sync.Mutex
		firstErr error
		all      []int64
		end      int64 // the last commit's return, read by its producer: after wg.Wait, this goroutine may wait its turn to run
		wg       sync.WaitGroup
	)
	start := Clock()
	deadline := start + int64(d)
	for p := range cfg.C {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 0x7e0d))
			acks := make([]int64, 0, 4096)
			var (
				buf  []byte
				last int64 // Clock when this producer's last commit returned
			)
			for ctx.Err() == nil && (n > 0 || Clock() < deadline) {
				id := next.Add(1)
				if n > 0 && id > uint64(n) {
					break
				}
				tx := Tx{ID: id, User: users[rng.IntN(len(users))]}
				buf, tx.Email = email(buf, tx.User, id)
				tx.UpdatedAt = time.Now().UnixNano()
				tx.StartNS = Clock()
				if err := sys.Commit(ctx, &tx); err != nil {
					mu.Lock()
					if firstErr == nil { // later errors are this one's cancellation
						firstErr = fmt.Errorf("commit of transaction %d: %w", id, err)
					}
					mu.Unlock()
					cancel()
					break
				}
				now := Clock()
				acks = append(acks, now-tx.StartNS)
				last = max(last, now)
			}
			mu.Lock()
			all = append(all, acks...)
			end = max(end, last)
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return produced{commits: int64(len(all)), start: start, end: max(end, start+1), acks: all}, firstErr
}

// cpuWindow measures the CPU time of this process, and of the PostgreSQL
// server if asked, between begin and end.
type cpuWindow struct {
	t0, client0    float64
	server0        map[int]float64
	seconds        float64
	client, server float64
}

func (w *cpuWindow) begin(server bool) error {
	var err error
	if server {
		if w.server0, err = serverCPU(); err != nil {
			return fmt.Errorf("server CPU: %w", err)
		}
	}
	w.t0 = float64(Clock()) / 1e9
	w.client0, err = clientCPU()
	return err
}

func (w *cpuWindow) end() error {
	c, err := clientCPU()
	if err != nil {
		return err
	}
	w.seconds = float64(Clock())/1e9 - w.t0
	w.client = c - w.client0
	if w.server0 != nil {
		if w.server, err = serverCPUSince(w.server0); err != nil {
			return fmt.Errorf("server CPU: %w", err)
		}
	}
	return nil
}
