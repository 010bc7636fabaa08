package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// The disk-full test runs in a child process (this test binary, started
// again) in a mount namespace of its own, where it mounts a small tmpfs:
// the file system fills up for real, and the mount goes with the child.
const (
	envFullDir = "THEUS_FULL_DIR" // set in the child: where it mounts the tmpfs
	// fullCannotMount is the child's exit status when it may not mount.
	fullCannotMount = 4
)

// fullChild runs the disk-full test's child when the test binary is
// started as one, and reports whether it did; it exits the process when
// it did.
func fullChild() bool {
	dir := os.Getenv(envFullDir)
	if dir == "" {
		return false
	}
	// Mounts made here must not reach the parent's namespace.
	err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, "")
	if err == nil {
		err = syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot mount a tmpfs:", err)
		os.Exit(fullCannotMount)
	}
	exitChild(runFullChild(dir))
	return true
}

// runFullChild fills the file system under the store's commits, frees it,
// and checks that commits resumed and that a restart finds every receipt
// and nothing of the groups that failed.
func runFullChild(dir string) error {
	ctx := context.Background()
	path := filepath.Join(dir, "bank.db")
	// Whether a failed commit got as far as COMMIT.
	var committing atomic.Int64
	eng, _, closeAll, err := childBank(ctx, path, accounts(2, 1000), sqlite.WithCheckpointEvery(0),
		sqlite.WithFaultHook(func(s sqlite.Step) error {
			if s == sqlite.BeforeSync {
				committing.Add(1)
			}
			return nil
		}))
	if err != nil {
		return err
	}
	defer closeAll()
	// Receipted transfers move 1 from acc-000 to acc-001; the transfers
	// that fail would move 100.
	receipts := 0
	transfer := func(amount int64) error {
		r, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: amount})
		if err == nil {
			receipts++
			if r.Version != uint64(receipts) {
				return fmt.Errorf("receipt for version %d, want %d", r.Version, receipts)
			}
		}
		return err
	}
	for range 5 {
		if err := transfer(1); err != nil {
			return err
		}
	}

	filler, err := fill(filepath.Join(dir, "filler"))
	if err != nil {
		return err
	}
	// Small commits fail at COMMIT, when SQLite writes the log; a commit
	// too large for SQLite's page cache fails earlier, when a statement
	// spills pages to the log.
	for i, tc := range []struct {
		call     func() error
		atCommit bool
	}{
		{func() error { return transfer(100) }, true},
		{func() error { return transfer(100) }, true},
		{func() error {
			_, err := eng.OpenAccount(ctx, bank.OpenAccountArgs{ID: "big", Owner: strings.Repeat("x", 4<<20)})
			return err
		}, false},
	} {
		before := committing.Load()
		err := tc.call()
		var code interface{ Code() int }
		if !errors.Is(err, engine.ErrStore) || !errors.As(err, &code) || code.Code()&0xff != 13 {
			return fmt.Errorf("commit %d on a full file system: %v, want engine.ErrStore with SQLITE_FULL (13)", i, err)
		}
		if !strings.Contains(err.Error(), "free space") || !strings.Contains(err.Error(), "without a restart") {
			return fmt.Errorf("commit %d on a full file system: %q does not tell the operator to free space", i, err)
		}
		if atCommit := committing.Load() > before; atCommit != tc.atCommit {
			return fmt.Errorf("commit %d on a full file system failed at COMMIT: %v, want %v", i, atCommit, tc.atCommit)
		}
	}
	if err := os.Remove(filler); err != nil {
		return err
	}
	for range 3 {
		if err := transfer(1); err != nil {
			return fmt.Errorf("commit once space is free again: %w", err)
		}
	}

	// Restart: every receipt, nothing of the failed commits.
	if err := closeAll(); err != nil {
		return err
	}
	eng2, st2, closeAll2, err := childBank(ctx, path, bank.State{})
	if err != nil {
		return err
	}
	defer closeAll2()
	if v := eng2.Snapshot().Version(); v != uint64(receipts) {
		return fmt.Errorf("recovered version %d, want %d (the receipts)", v, receipts)
	}
	got := balances(eng2)
	if a, b := got["acc-000"].Balance, got["acc-001"].Balance; a != 1000-int64(receipts) || b != 1000+int64(receipts) {
		return fmt.Errorf("recovered balances %d and %d after %d receipted transfers of 1", a, b, receipts)
	}
	msgs, err := st2.Undelivered(ctx, 100)
	if err != nil {
		return err
	}
	if len(msgs) != receipts {
		return fmt.Errorf("%d messages after the restart, want %d", len(msgs), receipts)
	}
	for _, m := range msgs {
		if !strings.Contains(string(m.Payload), `"amount":1}`) {
			return fmt.Errorf("message %s of a failed commit: %s", m.ID, m.Payload)
		}
	}
	return nil
}

// fill writes a file at path until the file system is full, and returns
// its path.
func fill(path string) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path, nil
			}
			return "", err
		}
	}
}

// A store whose file system fills up fails the commits that do not fit
// with an error that tells the operator to free space, and commits again,
// without a restart, once there is room.
func TestDiskFull(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envFullDir+"="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	if os.Geteuid() != 0 {
		// A user namespace lets an unprivileged user mount, where the
		// system allows it.
		cmd.SysProcAttr.Cloneflags |= syscall.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && (!errors.As(err, &ee) || ee.ExitCode() == fullCannotMount) {
		cannot(t, "mount a tmpfs in a mount namespace (run as root, or allow user namespaces)", fmt.Errorf("%v: %s", err, out))
	}
	if err != nil {
		t.Fatalf("disk-full child: %v\n%s", err, out)
	}
}
