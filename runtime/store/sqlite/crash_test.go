package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/engine"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/sink"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// The crash test: a child process (this test binary, re-executed) runs the
// bank on a SQLite store with a relay to a file sink that fsyncs every
// message, and is killed with SIGKILL at random instants, then restarted.
// After the last cycle a final child drains the outbox and exits, and the
// parent checks the store and the sink file.

const (
	envCrashDir   = "THEUS_CRASH_DIR"   // set in a child: the test's directory
	envCrashDrain = "THEUS_CRASH_DRAIN" // set in the last child: deliver everything, then exit
	// envCrashInCheckpoint is set to "STEP N" in a child that kills itself
	// at the Step (as an int) of its Nth checkpoint.
	envCrashInCheckpoint = "THEUS_CRASH_IN_CHECKPOINT"
	crashAccounts        = 50
	crashBalance         = 1000
	// crashCheckpointEvery makes the child checkpoint every few dozen
	// commits, so that kills land in checkpoints too.
	crashCheckpointEvery = 40
)

func crashFiles(dir string) (db, sinkLog, receipts string) {
	return filepath.Join(dir, "bank.db"), filepath.Join(dir, "sink.log"), filepath.Join(dir, "receipts.log")
}

// crashChild runs the crash test's child when the test binary is started
// as one, and reports whether it did. It never returns normally in a
// child: the parent kills it, or it exits.
func crashChild() bool {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		return false
	}
	exitChild(runCrashChild(dir, os.Getenv(envCrashDrain) != "", os.Getenv(envCrashInCheckpoint)))
	return true
}

func runCrashChild(dir string, drain bool, inCheckpoint string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dbPath, sinkPath, receiptsPath := crashFiles(dir)
	opts := []sqlite.Option{sqlite.WithRetention(-1), sqlite.WithCheckpointEvery(crashCheckpointEvery)}
	if inCheckpoint != "" {
		var step sqlite.Step
		var nth int
		if _, err := fmt.Sscan(inCheckpoint, &step, &nth); err != nil {
			return fmt.Errorf("%s=%q: %w", envCrashInCheckpoint, inCheckpoint, err)
		}
		opts = append(opts, sqlite.WithFaultHook(killInCheckpoint(dir, step, nth)))
	}
	eng, st, closeAll, err := childBank(ctx, dbPath, accounts(crashAccounts, crashBalance), opts...)
	if err != nil {
		return err
	}
	defer closeAll()

	out, err := os.OpenFile(sinkPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	// One write and one fsync per delivered message: a line is in the
	// file, durably, before the relay acks the message.
	fileSink := sink.Func(func(_ context.Context, m outbox.Message) error {
		line := fmt.Sprintf("%s %s %d %d %s\n", m.ID, m.Key, m.KeySeq, m.Version, m.Payload)
		if _, err := out.WriteString(line); err != nil {
			return err
		}
		return out.Sync()
	})
	relay := outbox.NewRelay(st, fileSink, outbox.WithPollInterval(10*time.Millisecond),
		outbox.WithRelayBackoff(time.Millisecond, 10*time.Millisecond))
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	defer func() { stopRelay(); <-relayDone }()

	if drain {
		for {
			msgs, err := st.Undelivered(ctx, 1)
			if err != nil {
				return err
			}
			if len(msgs) == 0 {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	}

	// Receipts are written without fsync: a SIGKILL loses nothing the
	// process wrote, and they tell the checker what callers were told.
	rec, err := os.OpenFile(receiptsPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer rec.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				from, to := rand.N(crashAccounts), rand.N(crashAccounts-1)
				if to >= from {
					to++
				}
				r, err := eng.Transfer(ctx, bank.TransferArgs{
					From: fmt.Sprintf("acc-%03d", from), To: fmt.Sprintf("acc-%03d", to), Amount: rand.N[int64](60) + 1,
				})
				switch {
				case errors.Is(err, engine.ErrRuleViolation), ctx.Err() != nil:
					continue
				case err != nil:
					errs <- err
					return
				}
				if _, err := fmt.Fprintf(rec, "%d %s\n", r.Version, r.MessageIDs[0]); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// killInCheckpoint returns a fault hook that kills the process at step of
// its nth checkpoint, after noting it in the file killed in dir.
func killInCheckpoint(dir string, step sqlite.Step, nth int) func(sqlite.Step) error {
	var seen atomic.Int64
	return func(s sqlite.Step) error {
		if s != step || seen.Add(1) != int64(nth) {
			return nil
		}
		f, err := os.OpenFile(filepath.Join(dir, "killed"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s %d\n", step, nth)
			f.Close()
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

// startCrashChild starts a child of the crash test in dir, with the
// environment variables env ("NAME=value").
func startCrashChild(t *testing.T, dir string, env ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envCrashDir+"="+dir), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stderr
}

// killedBySignal tells whether err, from Wait, says the child died of a
// signal.
func killedBySignal(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled()
}

// drainCrashRun runs the last child of a crash test, which delivers
// every message and exits, and checks the run.
func drainCrashRun(t *testing.T, dir string, killed int) {
	t.Helper()
	cmd, stderr := startCrashChild(t, dir, envCrashDrain+"=1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("draining child: %v\n%s", err, stderr)
	}
	checkCrashRun(t, dir, killed)
}

func TestCrashRecovery(t *testing.T) {
	cycles := 50
	if testing.Short() {
		cycles = 5
	}
	dir := t.TempDir()
	killed := 0
	for cycle := range cycles {
		cmd, stderr := startCrashChild(t, dir)
		time.Sleep(time.Duration(20+rand.N(400)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("cycle %d: kill: %v", cycle, err)
		}
		if err := cmd.Wait(); !killedBySignal(err) {
			t.Fatalf("cycle %d: the child ended on its own (%v) before it was killed:\n%s", cycle, err, stderr)
		}
		killed++
	}
	drainCrashRun(t, dir, killed)
}

// The crash test with the child killing itself inside its checkpoints:
// while a checkpoint's snapshot is half written, and once it is written
// but before the transaction that puts it in effect commits.
func TestCrashDuringCheckpoint(t *testing.T) {
	cycles := 16
	if testing.Short() {
		cycles = 4
	}
	dir := t.TempDir()
	for cycle := range cycles {
		step := []sqlite.Step{sqlite.CheckpointBeforeWrite, sqlite.CheckpointBeforeSync}[cycle%2]
		cmd, stderr := startCrashChild(t, dir, fmt.Sprintf("%s=%d %d", envCrashInCheckpoint, step, 1+rand.N(3)))
		if err := cmd.Wait(); !killedBySignal(err) {
			t.Fatalf("cycle %d: the child did not die in a checkpoint (%v):\n%s", cycle, err, stderr)
		}
	}
	var kills int
	readLines(t, filepath.Join(dir, "killed"), func([]string) { kills++ })
	if kills != cycles {
		t.Fatalf("%d kills inside a checkpoint noted for %d cycles", kills, cycles)
	}
	drainCrashRun(t, dir, kills)
}

// storedMessage is a row of theus_messages as the checker reads it.
type storedMessage struct {
	id, key, state string
	version, seq   uint64
	payload        []byte
}

func checkCrashRun(t *testing.T, dir string, killed int) {
	ctx := context.Background()
	dbPath, sinkPath, receiptsPath := crashFiles(dir)

	// The recovered state, through the generated engine, started with the
	// children's initial state: a store no child committed to (each was
	// killed before its first commit, as a loaded machine may make happen)
	// recovers that.
	st := open(t, dbPath)
	eng := newBank(t, st, accounts(crashAccounts, crashBalance))
	version := eng.Snapshot().Version()
	got := balances(eng)
	inc := st.Incarnation()
	eng.Close()
	st.Close()

	// Every message, read from the file directly.
	db, err := sql.Open("sqlite", dbPath+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT id, key, state, version, key_seq, payload FROM theus_messages ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []storedMessage
	for rows.Next() {
		var m storedMessage
		if err := rows.Scan(&m.id, &m.key, &m.state, &m.version, &m.seq, &m.payload); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()

	// One message per commit, and no message without its commit: every
	// version 1..V emitted exactly one transfer.completed, and nothing else
	// exists.
	if uint64(len(msgs)) != version {
		t.Fatalf("%d messages for %d committed versions", len(msgs), version)
	}
	// Replaying the messages from the initial state gives the recovered
	// state: each commit's state change and its message were kept together.
	want := accounts(crashAccounts, crashBalance).Domain.Accounts
	seqs := map[string]uint64{}
	for i, m := range msgs {
		v := uint64(i + 1)
		if m.id != outbox.MessageID(inc, v, 0) || m.version != v {
			t.Fatalf("message %d is %s of version %d, want %s", i, m.id, m.version, outbox.MessageID(inc, v, 0))
		}
		if m.state != "delivered" {
			t.Fatalf("message %s is %s after the draining run", m.id, m.state)
		}
		if m.seq != seqs[m.key]+1 {
			t.Fatalf("message %s: KeySeq %d after %d for key %s", m.id, m.seq, seqs[m.key], m.key)
		}
		seqs[m.key] = m.seq
		var tc bank.TransferCompleted
		if err := json.Unmarshal(m.payload, &tc); err != nil {
			t.Fatal(err)
		}
		from, to := want[tc.From], want[tc.To]
		from.Balance -= tc.Amount
		to.Balance += tc.Amount
		if from.Balance < 0 {
			t.Fatalf("version %d leaves %s at %d", v, tc.From, from.Balance)
		}
		want[tc.From], want[tc.To] = from, to
	}
	var total int64
	for id, a := range got {
		if a != want[id] {
			t.Fatalf("account %s recovered as %+v, replaying the messages gives %+v", id, a, want[id])
		}
		if a.Balance < 0 {
			t.Fatalf("account %s has balance %d", id, a.Balance)
		}
		total += a.Balance
	}
	if len(got) != crashAccounts || total != crashAccounts*crashBalance {
		t.Fatalf("%d accounts holding %d in total, want %d holding %d", len(got), total, crashAccounts, crashAccounts*crashBalance)
	}

	// Durable before visible: every receipt a caller got is in the store.
	receipts := 0
	readLines(t, receiptsPath, func(f []string) {
		v, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || v == 0 || v > version || f[1] != outbox.MessageID(inc, v, 0) {
			t.Fatalf("receipt %q: not in the store (last version %d)", strings.Join(f, " "), version)
		}
		receipts++
	})

	// At least once, and dedup by (key, KeySeq) leaves one per commit.
	delivered := map[string]bool{}
	seen := map[[2]string]bool{} // (key, KeySeq)
	lines, duplicates := 0, 0
	readLines(t, sinkPath, func(f []string) {
		lines++
		id, key := f[0], f[1]
		idInc, v, _, ok := outbox.ParseMessageID(id)
		if !ok || idInc != inc || v == 0 || v > version || msgs[v-1].key != key || strconv.FormatUint(msgs[v-1].seq, 10) != f[2] {
			t.Fatalf("the sink got %q, which is not a committed message", strings.Join(f, " "))
		}
		delivered[id] = true
		tk := [2]string{key, f[2]}
		if seen[tk] {
			duplicates++
		}
		seen[tk] = true
	})
	if len(delivered) != len(msgs) || len(seen) != len(msgs) {
		t.Fatalf("%d of %d committed messages delivered (%d after dedup)", len(delivered), len(msgs), len(seen))
	}
	t.Logf("crash test: %d SIGKILLs, %d commits (%d receipts seen by callers), %d deliveries, %d duplicates dropped by (key, KeySeq) dedup",
		killed, version, receipts, lines, duplicates)
}

// readLines calls f with the space-separated fields of every complete
// line of the file (a missing file has none).
func readLines(t *testing.T, path string, f func([]string)) {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f(strings.Fields(sc.Text()))
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("%s ends with a partial line", path)
	}
}
