package console_test

import (
	"context"
	"strings"
	"testing"

	"github.com/theus-go/theus/runtime/internal/servicetest"
	"github.com/theus-go/theus/runtime/outbox"
)

// On PostgreSQL the overview shows the relays of the fleet and the
// partitions each leases (theus_leases).
func TestOverviewShowsLeases(t *testing.T) {
	st, schema := openPostgresSchema(t)
	f := newFixture(t, st)
	lr, ok := st.(outbox.LeaseReader)
	if !ok {
		t.Fatal("the PostgreSQL store is no outbox.LeaseReader")
	}
	db := servicetest.Postgres(t)
	_, err := db.Exec(`INSERT INTO ` + schema + `.theus_leases (part, holder, token, expires) VALUES
		(0, 'relay-a', 3, now() + interval '1 hour'), (1, 'relay-a', 4, now() + interval '1 hour'),
		(2, 'relay-b', 1, now() + interval '1 hour'), (3, 'relay-dead', 9, now() - interval '1 minute')
		ON CONFLICT (part) DO UPDATE SET holder = excluded.holder, token = excluded.token, expires = excluded.expires`)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := lr.Leases(context.Background())
	if err != nil || len(ls) < 4 || ls[0].Holder != "relay-a" || ls[0].Token != 3 || ls[3].Holder != "relay-dead" {
		t.Fatalf("Leases = %+v, %v", ls, err)
	}
	status, body := f.get(t, "/")
	if status != 200 {
		t.Fatalf("GET / = %d", status)
	}
	for _, want := range []string{"relay-a</td><td>2: [0 1]", "relay-b</td><td>1: [2]", `id="free-partitions">`} {
		if !strings.Contains(body, want) {
			t.Errorf("overview: no %q in\n%s", want, body)
		}
	}
	if strings.Contains(body, "relay-dead") {
		t.Errorf("overview lists a relay whose lease expired")
	}
}
