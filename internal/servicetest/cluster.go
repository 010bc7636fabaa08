package servicetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
)

// Cluster is a throwaway PostgreSQL server of a test's own: initdb and
// pg_ctl on a temporary directory and a free port, stopped (immediately)
// and removed when the test ends. Tests restart it to see what a server
// restart does to their clients.
type Cluster struct {
	t          testing.TB
	bin, dir   string
	port       int
	asPostgres bool // running as root: commands run as the postgres OS user
}

// StartCluster runs initdb and pg_ctl start on a new directory and a free
// port. It skips loudly when the PostgreSQL server binaries (under
// /usr/lib/postgresql/*/bin or on PATH) are missing, and fails instead
// under THEUS_REQUIRE_SERVICES=1. As root, it runs them as the postgres
// OS user, since initdb refuses root.
func StartCluster(t testing.TB) *Cluster {
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
	c := &Cluster{t: t, bin: filepath.Dir(bins[len(bins)-1]), asPostgres: os.Geteuid() == 0}
	dir, err := os.MkdirTemp("", "theus-pgcluster-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	if c.asPostgres {
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
	t.Cleanup(func() { c.PgCtl("stop", "-m", "immediate") })
	c.PgCtl("start")
	return c
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// DSN is the URL of the server's database postgres, user postgres (trust
// authentication), with the query options opts appended, for example
// "pool_max_conns=4".
func (c *Cluster) DSN(opts ...string) string {
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	for _, o := range opts {
		dsn += "&" + o
	}
	return dsn
}

// Restart restarts the server with pg_ctl restart -m mode ("smart",
// "fast", or "immediate": a crash, no checkpoint, the WAL replayed at
// start), waiting until it takes connections again.
func (c *Cluster) Restart(mode string) {
	c.t.Helper()
	c.PgCtl("restart", "-m", mode)
}

// PgCtl runs pg_ctl action on the server, with the extra arguments,
// waiting for it to finish; a failure fails the test with the server's
// log.
func (c *Cluster) PgCtl(action string, extra ...string) {
	c.t.Helper()
	args := append([]string{action, "-D", c.data(), "-w", "-t", "60", "-l", filepath.Join(c.dir, "log"),
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=50", c.port, c.dir)}, extra...)
	c.run("pg_ctl", args...)
}

func (c *Cluster) run(tool string, args ...string) {
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
