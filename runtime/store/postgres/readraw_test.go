package postgres_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// The relay's reads decode their rows from the wire form; what they
// decode is what Scan makes of the same rows, for payloads empty, binary
// and long, with and without headers, and a parked partition.
func TestReadRowsDecodeAsScanned(t *testing.T) {
	ctx := context.Background()
	schema := freshSchema(t)
	st := openStore(t, schema)
	pool := userPool(t)
	long := make([]byte, 70_000)
	for i := range long {
		long[i] = byte(i * 7)
	}
	msgs := []outbox.Message{
		{Topic: "t", Key: "a", Payload: []byte{}},
		{Topic: "t", Key: "b", Payload: []byte{0, 1, 2, 255, '\\', 'x'}, Headers: map[string]string{"traceparent": "00-abc-def-01", "é": "\"quoted\""}},
		{Topic: "topic ünïcode", Key: "", Payload: long},
		{Topic: "t", Key: "a", Payload: []byte(`{"json":true}`), Headers: map[string]string{"traceparent": "00-123-456-01"}},
	}
	// Enough rows for the connection to read them in several chunks into
	// a buffer it reuses: what a row's decoding keeps must be copied.
	for i := range 3000 {
		msgs = append(msgs, outbox.Message{Topic: "t", Key: fmt.Sprint("k", i%50), Payload: fmt.Appendf(nil, "payload %d", i)})
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := st.Enqueue(ctx, tx, msgs...)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// A key of b's partition, whose message reads with its partition
	// flagged parked once b's message is parked.
	var near string
	var bPart int32
	if err := pool.QueryRow(ctx, `SELECT part FROM `+schema+`.theus_outbox WHERE key = 'b'`).Scan(&bPart); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT k FROM (SELECT 'n' || i AS k FROM generate_series(1, 10000) i) x
		WHERE `+postgres.PartExpr("'t'", "k", "32")+` = $1 LIMIT 1`, bPart).Scan(&near); err != nil {
		t.Fatal(err)
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := st.Enqueue(ctx, tx, outbox.Message{Topic: "t", Key: near, Payload: []byte("near")})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE `+schema+`.theus_leases SET holder = 'me', token = 1, expires = now() + interval '1 hour'`); err != nil {
		t.Fatal(err)
	}
	// A parked message of another key: its partition reads as parked.
	if _, err := pool.Exec(ctx, `UPDATE `+schema+`.theus_outbox SET state = 'parked' WHERE key = 'b'`); err != nil {
		t.Fatal(err)
	}
	for _, relay := range []bool{false, true} {
		raw, decoded, scanned, err := st.ReadBothWays(ctx, relay, 10_000)
		if err != nil {
			t.Fatalf("relay %v: %v", relay, err)
		}
		if !raw {
			t.Errorf("relay %v: the rows are not in the form decodeRead reads", relay)
		}
		if want := len(msgs); len(decoded) != want {
			t.Errorf("relay %v: %d rows, want %d (all but the parked message)", relay, len(decoded), want)
		}
		if diff := cmp.Diff(scanned, decoded); diff != "" {
			t.Errorf("relay %v: decoded rows differ from scanned ones (-scanned +decoded):\n%s", relay, diff)
		}
		withHeaders := 0
		for _, r := range decoded {
			if r.Headers != nil {
				withHeaders++
				if want := msgs[3].Headers; !maps.Equal(r.Headers, want) || string(r.Payload) != string(msgs[3].Payload) {
					t.Errorf("relay %v: %s read with headers %v, want %v on %s", relay, r.ID, r.Headers, want, msgs[3].Payload)
				}
			}
			if want := relay && r.Part == bPart; r.Parked != want {
				t.Fatalf("relay %v: %s of partition %d flagged parked %v, want %v (b's partition: %d)", relay, r.Key, r.Part, r.Parked, want, bPart)
			}
		}
		if withHeaders != 1 {
			t.Errorf("relay %v: %d rows with headers, want 1", relay, withHeaders)
		}
	}
}
