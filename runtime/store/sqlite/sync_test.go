package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// The connection that commits runs with synchronous=FULL unless told
// otherwise: a commit returns only once the write-ahead log is synced.
func TestSynchronousIsFullOnTheWriteConnection(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		opts []sqlite.Option
		want int
	}{
		{nil, 2},
		{[]sqlite.Option{sqlite.WithSynchronous("NORMAL")}, 1},
		{[]sqlite.Option{sqlite.WithSynchronous("EXTRA")}, 3},
	} {
		st := open(t, filepath.Join(t.TempDir(), "bank.db"), tc.opts...)
		eng := newBank(t, st, accounts(2, 10))
		if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1}); err != nil {
			t.Fatal(err)
		}
		got, err := st.WriteSynchronous(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Fatalf("synchronous = %d on the write connection (options %d), want %d (0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA)", got, len(tc.opts), tc.want)
		}
	}
}

// The sync test's child runs commits between two syncs of marker files,
// under strace, which records every sync with the path of its file.
const (
	envSyncDir    = "THEUS_SYNC_DIR" // set in the child: where its files go
	syncCommits   = 12
	syncMarkBegin = "mark-begin"
	syncMarkEnd   = "mark-end"
)

// syncChild runs the sync test's child when the test binary is started
// as one, and reports whether it did; it exits the process when it did.
func syncChild() bool {
	dir := os.Getenv(envSyncDir)
	if dir == "" {
		return false
	}
	exitChild(runSyncChild(dir))
	return true
}

func runSyncChild(dir string) error {
	ctx := context.Background()
	eng, _, closeAll, err := childBank(ctx, filepath.Join(dir, "bank.db"), accounts(2, 1000), sqlite.WithCheckpointEvery(0))
	if err != nil {
		return err
	}
	defer closeAll()
	transfer := func() error {
		_, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1})
		return err
	}
	// The first commits write the first snapshot and start the log.
	for range 2 {
		if err := transfer(); err != nil {
			return err
		}
	}
	if err := syncMarker(dir, syncMarkBegin); err != nil {
		return err
	}
	// One caller, one commit at a time: each commit is a group.
	for range syncCommits {
		if err := transfer(); err != nil {
			return err
		}
	}
	return syncMarker(dir, syncMarkEnd)
}

// syncMarker creates the file name in dir and syncs it.
func syncMarker(dir, name string) error {
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Each commit group costs one sync of the write-ahead log, which is what
// synchronous=FULL adds to NORMAL (a SIGKILL keeps what NORMAL leaves in
// the page cache, so the crash test cannot tell them apart; a power cut
// could). The syncs are counted by running a child under strace.
func TestOneSyncPerCommitGroup(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		cannot(t, "count syncs: strace is not installed (apt-get install strace)", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace")
	cmd := exec.Command(strace, "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync", "-e", "signal=none", "-o", trace,
		exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envSyncDir+"="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && strings.Contains(string(out), "ptrace") {
			cannot(t, "trace a child process with strace", fmt.Errorf("%v: %s", err, out))
		}
		t.Fatalf("sync child under strace: %v\n%s", err, out)
	}

	// The syncs between the markers, per file.
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syncs := map[string]int{}
	inside, sawEnd := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "resumed>") {
			continue // the end of a call whose start is counted
		}
		file, ok := syncedFile(line)
		if !ok {
			t.Fatalf("trace line %q: not a sync", line)
		}
		switch name := filepath.Base(file); {
		case name == syncMarkBegin:
			inside = true
		case name == syncMarkEnd:
			inside, sawEnd = false, true
		case inside:
			syncs[name]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !sawEnd {
		t.Fatalf("the trace has no sync of %s", syncMarkEnd)
	}
	t.Logf("%d commit groups: syncs per file %v", syncCommits, syncs)
	if len(syncs) != 1 || syncs["bank.db-wal"] != syncCommits {
		t.Fatalf("%d commit groups synced %v, want %d syncs of bank.db-wal, one per group", syncCommits, syncs, syncCommits)
	}
}

// syncedFile returns the file of a sync in a line of strace -y: "123
// fdatasync(5</dir/bank.db-wal>) = 0".
func syncedFile(line string) (string, bool) {
	_, rest, ok := strings.Cut(line, "sync(")
	if !ok {
		return "", false
	}
	_, rest, ok = strings.Cut(rest, "<")
	if !ok {
		return "", false
	}
	file, _, ok := strings.Cut(rest, ">")
	return file, ok
}
