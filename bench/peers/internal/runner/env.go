package runner

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// env is what the header of the report says about where it ran.
type env struct {
	command, machine, goVersion, postgres, sqliteDir string
	date                                             time.Time
}

// describe reads the machine, and the PostgreSQL server if an
// implementation uses it.
func describe(ctx context.Context, cfg config) env {
	e := env{machine: machine(), goVersion: runtime.Version(), date: time.Now().UTC()}
	if slices.ContainsFunc(cfg.impls, func(i impl) bool { return i.server }) {
		e.postgres = postgres(ctx, cfg.dsn)
	}
	if slices.ContainsFunc(cfg.impls, func(i impl) bool { return i.name == "theus-sqlite" }) {
		dir := cfg.dir
		if dir == "" {
			dir = os.TempDir()
		}
		e.sqliteDir = dir + " (" + fsType(dir) + ")"
	}
	return e
}

// machine is the CPU model and the number of logical CPUs, from
// /proc/cpuinfo.
func machine() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return fmt.Sprintf("%s/%s, %d CPUs (no /proc/cpuinfo)", runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	}
	defer f.Close()
	model, cpus := "unknown CPU", 0
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		switch k = strings.TrimSpace(k); {
		case !ok:
		case k == "processor":
			cpus++
		case k == "model name" && cpus == 1:
			model = strings.TrimSpace(v)
		}
	}
	return fmt.Sprintf("%s, %d cores", model, cpus)
}

// postgres is the server's version and durability settings, or why they
// could not be read.
func postgres(ctx context.Context, dsn string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "unreachable: " + err.Error()
	}
	defer conn.Close(ctx)
	var version, syncCommit, fsync string
	err = conn.QueryRow(ctx, `SELECT version(), current_setting('synchronous_commit'), current_setting('fsync')`).
		Scan(&version, &syncCommit, &fsync)
	if err != nil {
		return "unknown: " + err.Error()
	}
	return fmt.Sprintf("%s (synchronous_commit=%s, fsync=%s)", version, syncCommit, fsync)
}

// fsType names the file system of dir: on tmpfs an fsync costs nothing,
// and the SQLite figures are not those of a durable store.
func fsType(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "file system unknown: " + err.Error()
	}
	switch uint64(st.Type) {
	case 0xef53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683e:
		return "btrfs"
	case 0x794c7630:
		return "overlayfs"
	case 0x01021994:
		return "tmpfs: fsync is free, NOT a durable figure"
	}
	return fmt.Sprintf("file system 0x%x", st.Type)
}
