package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
)

// cluster is a throwaway PostgreSQL server of a test's own.
type cluster struct {
	t          *testing.T
	bin, dir   string
	port       int
	asPostgres bool // running as root: commands run as the postgres OS user
}

// startCluster runs initdb and pg_ctl start on a new directory and a free
// port. It skips loudly when the PostgreSQL server binaries are missing,
// and fails instead under THEUS_REQUIRE_SERVICES=1.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Strings(bins)
	if len(bins) == 0 {
		if p, err := exec.LookPath("initdb"); err == nil {
			bins = []string{p}
		}
	}
	if len(bins) == 0 {
		if os.Getenv("THEUS_REQUIRE_SERVICES") == "1" {
			t.Fatal("THEUS_REQUIRE_SERVICES=1 but no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH")
		}
		t.Skip("SKIPPING: no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH; set THEUS_REQUIRE_SERVICES=1 to fail instead")
	}
	c := &cluster{t: t, bin: filepath.Dir(bins[len(bins)-1]), asPostgres: os.Geteuid() == 0}
	dir, err := os.MkdirTemp("", "theus-pgfault-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if c.asPostgres { // initdb refuses root: the cluster belongs to postgres
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, and no postgres OS user to run initdb as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	t.Cleanup(func() { c.pgctl("stop", "-m", "immediate") })
	c.pgctl("start")
	return c
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *cluster) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&pool_max_conns=4", c.port)
}

func (c *cluster) run(tool string, args ...string) {
	c.t.Helper()
	name := filepath.Join(c.bin, tool)
	if c.asPostgres {
		args = append([]string{"-u", "postgres", "--", name}, args...)
		name = "runuser"
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		logs, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		c.t.Fatalf("%s %v: %v\n%s\nserver log:\n%s", tool, args, err, out, logs)
	}
}

// pgctl runs pg_ctl action on the cluster, waiting for it to finish.
func (c *cluster) pgctl(action string, extra ...string) {
	c.t.Helper()
	args := append([]string{action, "-D", c.data(), "-w", "-t", "60", "-l", filepath.Join(c.dir, "log"),
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=50", c.port, c.dir)}, extra...)
	c.run("pg_ctl", args...)
}

// The fault test: three engines (in this process, each on a store of its
// own) transfer without pause on a throwaway PostgreSQL server, which is
// restarted twice under that load, once with a fast shutdown and once
// with an immediate one (a crash: no checkpoint, the WAL replayed). Every
// receipt a caller got is in the history afterwards, the history keeps
// the bank's invariants, every commit has its message, and every engine
// commits again after each restart. Callers whose commit did not happen
// get engine.ErrStore and nothing else.
func TestServerRestartsUnderLoad(t *testing.T) {
	c := startCluster(t)
	ctx := context.Background()
	cfg := config{store: c.dsn(), schema: "bank_fault", accounts: 100, balance: 100, workers: 4}
	pool, err := pgxpool.New(ctx, cfg.store)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	const instances = 3
	engines := make([]*bank.Engine, instances)
	for i := range engines {
		st, eng, err := open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		t.Cleanup(func() { eng.Close() })
		engines[i] = eng
	}
	var (
		mu       sync.Mutex
		receipts []Receipt
		failed   atomic.Int64
		okBy     [instances]atomic.Int64
		wg       sync.WaitGroup
	)
	lctx, stop := context.WithCancel(ctx)
	for i, eng := range engines {
		for g := range cfg.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var seq uint64
				for n := 0; lctx.Err() == nil; n++ {
					seq = seq*6364136223846793005 + uint64(i*cfg.workers+g)*2 + 1
					from, to := int(seq>>33)%cfg.accounts, int(seq>>13)%cfg.accounts
					if from == to {
						to = (to + 1) % cfg.accounts
					}
					rc, err := eng.Transfer(lctx, bank.TransferArgs{From: accountID(from), To: accountID(to), Amount: int64(1 + n%60)})
					switch {
					case err == nil:
						mu.Lock()
						receipts = append(receipts, Receipt{rc.Version, rc.MessageIDs[0]})
						mu.Unlock()
						okBy[i].Add(1)
					case errors.Is(err, engine.ErrRuleViolation), lctx.Err() != nil:
					case errors.Is(err, engine.ErrStore):
						failed.Add(1)
						if rc.Version != 0 || len(rc.MessageIDs) != 0 {
							t.Errorf("a failed transfer returned a receipt %+v", rc)
						}
					default:
						t.Errorf("transfer on engine %d: %v (want nil, ErrRuleViolation or ErrStore)", i, err)
						return
					}
				}
			}()
		}
	}
	// progress waits until every engine has committed n more transfers.
	progress := func(what string, n int64) {
		t.Helper()
		var base [instances]int64
		for i := range base {
			base[i] = okBy[i].Load()
		}
		deadline := time.Now().Add(60 * time.Second)
		for i := range base {
			for okBy[i].Load() < base[i]+n {
				if time.Now().After(deadline) {
					stop()
					wg.Wait()
					t.Fatalf("%s: engine %d committed %d transfers in 60s, want %d", what, i, okBy[i].Load()-base[i], n)
				}
				time.Sleep(5 * time.Millisecond) // polling the counters
			}
		}
	}
	progress("before the restarts", 50)
	for _, mode := range []string{"fast", "immediate"} {
		c.pgctl("restart", "-m", mode)
		progress("after a "+mode+" restart", 50)
	}
	stop()
	wg.Wait()
	mu.Lock()
	got := append([]Receipt(nil), receipts...)
	mu.Unlock()
	rep, err := Check(ctx, cfg, pool, got, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2 restarts: %d receipts, %d calls failed with ErrStore; %s", len(got), failed.Load(), rep)
}
