package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// Child processes of the lock tests (this test binary, re-executed).
const (
	// envLockHolder names a database on which the child starts an engine,
	// prints "ready" and waits for its standard input to close.
	envLockHolder = "THEUS_LOCK_HOLDER"
	// envLockProbe names a database whose SQLite SHARED byte range the
	// child tests for a lock held by another process: it prints "locked"
	// or "free".
	envLockProbe = "THEUS_LOCK_PROBE"
)

// lockChild runs a lock test's child when the test binary is started as
// one, and reports whether it did; it exits the process when it did.
func lockChild() bool {
	switch {
	case os.Getenv(envLockHolder) != "":
		exitChild(holdEngine(os.Getenv(envLockHolder)))
	case os.Getenv(envLockProbe) != "":
		exitChild(probeShared(os.Getenv(envLockProbe)))
	}
	return false
}

func holdEngine(path string) error {
	_, _, closeAll, err := childBank(context.Background(), path, accounts(2, 10))
	if err != nil {
		return err
	}
	defer closeAll()
	fmt.Println("ready")
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

// SQLite's unix VFS takes its SHARED lock on these bytes of the database
// file (PENDING_BYTE + 2, 510 bytes); in WAL mode every open connection
// holds it once it has read.
const (
	sharedFirst = 0x40000000 + 2
	sharedSize  = 510
)

func probeShared(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: sharedFirst, Len: sharedSize}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return err
	}
	if lk.Type == syscall.F_UNLCK {
		fmt.Println("free")
	} else {
		fmt.Println("locked")
	}
	return nil
}

// startChild starts the test binary as a child with env ("NAME=value"),
// its standard input a pipe, and returns it with its standard output.
func startChild(t *testing.T, env string) (*exec.Cmd, io.WriteCloser, *bufio.Reader, *strings.Builder) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), env)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdin, bufio.NewReader(stdout), &stderr
}

// readLine reads the child's next line of output.
func readLine(t *testing.T, out *bufio.Reader, cmd *exec.Cmd, stderr *strings.Builder) string {
	t.Helper()
	line, err := out.ReadString('\n')
	if err != nil {
		cmd.Wait()
		t.Fatalf("child: %v\n%s", err, stderr)
	}
	return strings.TrimSpace(line)
}

// names makes a database with one commit, closed, and returns its path
// and other names of the file: a symbolic link, a hard link, and a
// relative path (the test's working directory becomes the file's
// directory). Closing the database had SQLite copy the commit from the
// write-ahead log into the file, so that the file can be opened through
// the hard link (SQLite names the log after the path, so a hard link does
// not see the log of the other name).
func names(t *testing.T) (path string, others map[string]string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "bank.db")
	st := open(t, path)
	eng := newBank(t, st, accounts(2, 10))
	if _, err := eng.Deposit(context.Background(), bank.DepositArgs{ID: "acc-000", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	eng.Close()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	symlink, hardlink := filepath.Join(dir, "symlink.db"), filepath.Join(dir, "hardlink.db")
	if err := os.Symlink(path, symlink); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(path, hardlink); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	return path, map[string]string{"symlink": symlink, "hard link": hardlink, "relative path": filepath.Base(path)}
}

// inUse checks that an engine on st is refused with ErrInUse.
func inUse(t *testing.T, st *sqlite.Store, what string) {
	t.Helper()
	eng, err := bank.NewEngine(context.Background(), accounts(2, 10), bank.Bank{}, engine.WithStore(st))
	if err == nil {
		eng.Close()
	}
	if !errors.Is(err, sqlite.ErrInUse) {
		t.Fatalf("%s: %v, want ErrInUse", what, err)
	}
}

// A second engine on the database file is refused however the file is
// named, and the first engine's receipts all survive a restart.
func TestOneEngineHoweverNamed(t *testing.T) {
	ctx := context.Background()
	path, others := names(t)
	first := open(t, path)
	eng := newBank(t, first, bank.State{})
	transfer := func() uint64 {
		t.Helper()
		r, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1})
		if err != nil {
			t.Fatal(err)
		}
		return r.Version
	}
	transfer()
	for name, other := range others {
		t.Run(name, func(t *testing.T) {
			second := open(t, other)
			inUse(t, second, "a second engine through the "+name+" "+other)
			if err := second.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
	last := transfer()
	eng.Close()
	first.Close()
	eng3 := newBank(t, open(t, path), bank.State{})
	if v := eng3.Snapshot().Version(); v != last {
		t.Fatalf("recovered version %d, want %d", v, last)
	}
	if a := balances(eng3)["acc-001"]; a.Balance != 10+2 {
		t.Fatalf("acc-001 recovered with %d, want 12 (two transfers of 1)", a.Balance)
	}
}

// The engine is the store's only user: a second engine given the same
// store is refused, and the first keeps committing.
func TestOneEnginePerStoreValue(t *testing.T) {
	ctx := context.Background()
	st := open(t, filepath.Join(t.TempDir(), "bank.db"))
	eng := newBank(t, st, accounts(2, 10))
	inUse(t, st, "a second engine on the same store")
	if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1}); err != nil {
		t.Fatalf("the first engine after the second was refused: %v", err)
	}
}

// An engine in another process holds the file, whatever name this
// process uses; once that process is gone, the file is free.
func TestOneEngineAcrossProcesses(t *testing.T) {
	path, others := names(t)
	holder, stdin, out, stderr := startChild(t, envLockHolder+"="+path)
	if line := readLine(t, out, holder, stderr); line != "ready" {
		t.Fatalf("holder said %q", line)
	}
	for name, other := range others {
		inUse(t, open(t, other), "an engine through the "+name+" "+other+" while another process holds the file")
	}
	stdin.Close()
	if err := holder.Wait(); err != nil {
		t.Fatalf("holder: %v\n%s", err, stderr)
	}
	eng := newBank(t, open(t, others["symlink"]), bank.State{})
	if v := eng.Snapshot().Version(); v != 1 {
		t.Fatalf("version %d, want 1", v)
	}
}

// Closing a store does not touch the SQLite locks of another store of the
// process on the same file: POSIX locks belong to the process, and closing
// any descriptor of the file drops them all, so that another process could
// take the database as unused (checkpoint it and delete its write-ahead
// log under the engine's feet).
func TestClosingAStoreKeepsTheOthersLocks(t *testing.T) {
	ctx := context.Background()
	path, others := names(t)
	st := open(t, path)
	eng := newBank(t, st, bank.State{})
	if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1}); err != nil {
		t.Fatal(err)
	}
	probe := func(when string) {
		t.Helper()
		cmd, _, out, stderr := startChild(t, envLockProbe+"="+path)
		line := readLine(t, out, cmd, stderr)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("probe: %v\n%s", err, stderr)
		}
		if line != "locked" {
			t.Fatalf("%s: SQLite's SHARED lock of the engine's store is %s", when, line)
		}
	}
	probe("with the engine's store alone")
	for name, other := range others {
		// A relay's store: no engine; and a refused engine on it.
		relay := open(t, other)
		inUse(t, relay, "a second engine through the "+name)
		if err := relay.Close(); err != nil {
			t.Fatal(err)
		}
		probe("after closing a store opened through the " + name)
	}
}
