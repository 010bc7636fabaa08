package sqlite_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/sqlite"
)

// envLostAck names the database on which the lost-ack child commits, then
// delivers (see lostAckChild).
const envLostAck = "THEUS_LOST_ACK"

const lostAckCommits = 20

// lostAckChild, in the child: commit lostAckCommits transfers (each synced
// before its receipt), print the size of the write-ahead log ("synced N"),
// deliver every message to a sink that writes its ID to the file
// <database>.sink, and print "acked" once the relay acked them all; then
// wait to be killed.
func lostAckChild() bool {
	path := os.Getenv(envLostAck)
	if path == "" {
		return false
	}
	exitChild(func() error {
		ctx := context.Background()
		// Every ack written at once, in a transaction of its own that is
		// not synced: what the power cut below takes.
		eng, st, closeAll, err := childBank(ctx, path, accounts(2, 1000), sqlite.WithAckInterval(0))
		if err != nil {
			return err
		}
		defer closeAll()
		for range lostAckCommits {
			if _, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1}); err != nil {
				return err
			}
		}
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			return err
		}
		fmt.Println("synced", fi.Size())
		out, err := os.Create(path + ".sink")
		if err != nil {
			return err
		}
		acked := make(chan struct{})
		counted := ackCounter{Store: st, want: lostAckCommits, done: acked}
		relay := outbox.NewRelay(&counted, sinkFunc(func(_ context.Context, batch []outbox.Message) (int, error) {
			for _, m := range batch {
				if _, err := fmt.Fprintln(out, m.ID); err != nil {
					return 0, err
				}
			}
			return len(batch), out.Sync()
		}), outbox.WithPruneInterval(0))
		go relay.Run(ctx)
		<-acked
		fmt.Println("acked")
		_, err = io.Copy(io.Discard, os.Stdin) // until killed
		return err
	}())
	return true
}

// ackCounter closes done once want messages are acked.
type ackCounter struct {
	*sqlite.Store
	want int
	done chan struct{}
}

func (a *ackCounter) Ack(ctx context.Context, ids []string) error {
	err := a.Store.Ack(ctx, ids)
	if a.want -= len(ids); err == nil && a.want <= 0 && a.done != nil {
		close(a.done)
		a.done = nil
	}
	return err
}

// An ack is not synced (the next commit's sync takes it along), so a power
// cut may lose it: that must make the messages be delivered again, never
// lose one. The child commits (synced) and the relay delivers and acks
// everything; the child is killed and the write-ahead log cut back to its
// size after the last synced commit, which is what a power cut may leave
// of it (its -shm index goes too: it lives in memory). The store then
// holds every commit and every message, and delivers them all again.
func TestLostAckIsRedelivered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bank.db")
	cmd, stdin, out, stderr := startChild(t, envLostAck+"="+path)
	defer stdin.Close()
	var synced int64
	if _, err := fmt.Sscanf(readLine(t, out, cmd, stderr), "synced %d", &synced); err != nil {
		t.Fatal(err)
	}
	if line := readLine(t, out, cmd, stderr); line != "acked" {
		t.Fatalf("child said %q, want acked", line)
	}
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() <= synced {
		t.Fatalf("the log did not grow with the ack (%d bytes, %d before)", fi.Size(), synced)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	sent, err := os.ReadFile(path + ".sink")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(string(sent))); n != lostAckCommits {
		t.Fatalf("the sink got %d messages, want %d", n, lostAckCommits)
	}
	// The power cut.
	if err := os.Truncate(path+"-wal", synced); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path + "-shm"); err != nil {
		t.Fatal(err)
	}

	st := open(t, path)
	eng := newBank(t, st, bank.State{})
	if v := eng.Snapshot().Version(); v != lostAckCommits {
		t.Fatalf("recovered version %d, want %d", v, lostAckCommits)
	}
	if got := balances(eng)["acc-001"].Balance; got != 1000+lostAckCommits {
		t.Fatalf("acc-001 holds %d, want %d", got, 1000+lostAckCommits)
	}
	msgs := undelivered(t, st)
	if len(msgs) != lostAckCommits {
		t.Fatalf("%d messages undelivered after the lost ack, want all %d again", len(msgs), lostAckCommits)
	}
	for i, m := range msgs {
		if want := strings.Fields(string(sent))[i]; m.ID != want || m.KeySeq != uint64(i+1) {
			t.Fatalf("message %d is %s (KeySeq %d), want %s (KeySeq %d)", i, m.ID, m.KeySeq, want, i+1)
		}
	}
}
