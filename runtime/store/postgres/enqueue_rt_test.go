package postgres_test

import (
	"context"
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// countConn counts the writes to a connection: pgx sends each round trip
// to the server in one write.
type countConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// countingPool is a pool of one connection whose writes are counted.
func countingPool(t testing.TB) (*pgxpool.Pool, *atomic.Int64) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testDSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	writes := &atomic.Int64{}
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countConn{c, writes}, nil
	}
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, writes
}

// Enqueue of a message in an open transaction costs one round trip once
// its statement is prepared on the connection, whatever the number of
// messages and keys.
func TestEnqueueOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, freshSchema(t))
	pool, writes := countingPool(t)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := st.Enqueue(ctx, tx, outbox.Message{Topic: "t", Key: "warm-up"}); err != nil {
		t.Fatal(err)
	}
	for _, msgs := range [][]outbox.Message{
		{{Topic: "t", Key: "k", Payload: []byte("one")}},
		{{Topic: "t", Key: "k"}, {Topic: "t", Key: "j", Headers: map[string]string{"h": "v"}}, {Topic: "u", Key: "k"}},
	} {
		before := writes.Load()
		if _, err := st.Enqueue(ctx, tx, msgs...); err != nil {
			t.Fatal(err)
		}
		if n := writes.Load() - before; n != 1 {
			t.Errorf("Enqueue of %d messages: %d round trips, want 1", len(msgs), n)
		}
	}
}

// The log row of an enqueue encodes each key's last KeySeq as a uvarint
// in SQL (sqlUvarint): it must read back as encoding/binary writes it,
// over the whole range.
func TestEnqueueUvarint(t *testing.T) {
	pool := userPool(t)
	freshSchema(t) // skips without PostgreSQL
	for _, x := range []int64{0, 1, 127, 128, 255, 300, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<35 + 5, 1<<56 - 1, 1 << 56, 1<<62 + 12345, 1<<63 - 1} {
		var got []byte
		q := "SELECT " + postgres.SQLUvarint("$1::bigint")
		if err := pool.QueryRow(context.Background(), q, x).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := binary.AppendUvarint(nil, uint64(x)); string(got) != string(want) {
			t.Errorf("uvarint of %d: SQL %x, Go %x", x, got, want)
		}
	}
}

// An engine catches up on an enqueue whose KeySeqs need several bytes
// and numbers its next message of the key after them.
func TestEnqueueLongKeySeqs(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	a, b := openStore(t, schema), openStore(t, schema)
	eng := newBank(t, a, accounts(2, 1000))
	msgs := make([]outbox.Message, 20000)
	for i := range msgs {
		msgs[i] = outbox.Message{Topic: "transfer.completed", Key: "acc-000"}
	}
	var out []outbox.Message
	err := pgx.BeginFunc(ctx, userPool(t), func(tx pgx.Tx) error {
		var err error
		out, err = b.Enqueue(ctx, tx, msgs...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if last := out[len(out)-1]; last.KeySeq != 20000 || last.ID != outbox.MessageID(a.Incarnation(), out[0].Version, len(out)-1) {
		t.Fatalf("last enqueued %s KeySeq %d", last.ID, last.KeySeq)
	}
	r, err := eng.Transfer(ctx, bank.TransferArgs{From: "acc-000", To: "acc-001", Amount: 1})
	if err != nil {
		t.Fatal(err)
	}
	ms, err := a.Messages(ctx, r.MessageIDs)
	if err != nil || len(ms) == 0 {
		t.Fatalf("messages %v, %v", ms, err)
	}
	found := false
	for _, m := range ms {
		if m.Key == "acc-000" && m.Topic == "transfer.completed" {
			found = true
			if m.KeySeq != 20001 {
				t.Fatalf("the engine's next message of acc-000 has KeySeq %d, want 20001", m.KeySeq)
			}
		}
	}
	if !found {
		t.Fatalf("the transfer sent no transfer.completed for acc-000: %+v", ms)
	}
}
