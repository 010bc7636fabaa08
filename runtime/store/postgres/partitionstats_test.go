package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/theus-go/theus/runtime/store/postgres"
)

// PartitionStats counts every partition's waiting messages, with the
// oldest's time; an acked message no longer counts.
func TestPartitionStats(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, freshSchema(t), postgres.WithPartitions(8))
	var keys []string
	for i := range 40 {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	msgs := enqueueKeys(t, st, userPool(t), keys...)
	created := map[int64]bool{}
	for _, m := range msgs {
		created[m.CreatedAt.UnixNano()] = true
	}
	count := func() (total, nonEmpty int) {
		t.Helper()
		ps, err := st.PartitionStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 8 {
			t.Fatalf("%d partitions, want 8", len(ps))
		}
		for i, p := range ps {
			if p.Partition != i {
				t.Fatalf("partition %d at index %d", p.Partition, i)
			}
			if (p.Pending > 0) != !p.OldestPending.IsZero() {
				t.Fatalf("partition %d: %d pending, oldest %v", i, p.Pending, p.OldestPending)
			}
			if p.Pending > 0 && !created[p.OldestPending.UnixNano()] {
				t.Fatalf("partition %d: oldest %v is no message's CreatedAt", i, p.OldestPending)
			}
			total += p.Pending
			if p.Pending > 0 {
				nonEmpty++
			}
		}
		return total, nonEmpty
	}
	if total, nonEmpty := count(); total != 40 || nonEmpty < 2 {
		t.Fatalf("%d pending in %d partitions, want 40 spread over several", total, nonEmpty)
	}
	var ids []string
	for _, m := range msgs[:15] {
		ids = append(ids, m.ID)
	}
	if err := st.Ack(ctx, ids); err != nil {
		t.Fatal(err)
	}
	if total, _ := count(); total != 25 {
		t.Fatalf("%d pending after 15 acks, want 25", total)
	}
}
