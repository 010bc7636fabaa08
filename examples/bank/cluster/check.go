package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/examples/bank"
	"github.com/theus-go/theus/runtime/outbox"
	"github.com/theus-go/theus/runtime/store/postgres"
)

// Check reads the shared history of cfg's schema and checks the bank's
// invariants (see the command's documentation) against it and against
// the receipts the callers saw. With deliveries, it first waits (up to
// drain) until a running relay has delivered every message, then checks
// <schema>.bank_deliveries. It returns a one-line summary.
func Check(ctx context.Context, cfg config, pool *pgxpool.Pool, receipts []Receipt, deliveries bool, drain time.Duration) (string, error) {
	st, err := postgres.Open(ctx, cfg.store, postgres.WithSchema(cfg.schema))
	if err != nil {
		return "", err
	}
	defer st.Close()
	head, err := st.Head(ctx)
	if err != nil {
		return "", err
	}

	// Replay the history: every version's balances.
	bal := map[string]int64{}
	var total int64
	for id, a := range initial(cfg).Domain.Accounts {
		bal[id] = a.Balance
		total += a.Balance
	}
	msgOf := make(map[uint64]string, head) // version -> its transfer.completed
	const chunk = 20_000
	for from := uint64(1); from <= head; from += chunk {
		hist, err := st.History(ctx, from, min(from+chunk-1, head))
		if err != nil {
			return "", err
		}
		for i, c := range hist {
			if c.Version != from+uint64(i) {
				return "", fmt.Errorf("history: version %d where %d was due: versions must be dense", c.Version, from+uint64(i))
			}
			if c.Process != "transfer" || len(c.MessageIDs) != 1 {
				return "", fmt.Errorf("version %d: process %q with %d messages, want a transfer with one", c.Version, c.Process, len(c.MessageIDs))
			}
			msgOf[c.Version] = c.MessageIDs[0]
			for _, v := range c.Values {
				var a bank.Account
				if v.Path != "domain.accounts" || v.Data == nil {
					return "", fmt.Errorf("version %d wrote %s[%s] = %s", c.Version, v.Path, v.Key, v.Data)
				}
				if err := json.Unmarshal(v.Data, &a); err != nil {
					return "", fmt.Errorf("version %d, account %s: %w", c.Version, v.Key, err)
				}
				if a.Balance < 0 {
					return "", fmt.Errorf("version %d: account %s has balance %d", c.Version, v.Key, a.Balance)
				}
				total += a.Balance - bal[v.Key]
				bal[v.Key] = a.Balance
			}
			if want := int64(cfg.accounts) * cfg.balance; total != want {
				return "", fmt.Errorf("version %d: total %d, want %d", c.Version, total, want)
			}
		}
		if uint64(len(hist)) != min(from+chunk-1, head)-from+1 {
			return "", fmt.Errorf("history from %d: %d commits, want %d (retention cut it?)", from, len(hist), min(from+chunk-1, head)-from+1)
		}
	}

	// Every receipt a caller saw is in the history, with its message.
	seen := make(map[uint64]bool, len(receipts))
	for _, r := range receipts {
		if id, ok := msgOf[r.Version]; !ok || id != r.ID {
			return "", fmt.Errorf("a caller got a receipt for version %d (message %s), but the history has %q", r.Version, r.ID, id)
		}
		if seen[r.Version] {
			return "", fmt.Errorf("two callers got version %d", r.Version)
		}
		seen[r.Version] = true
	}

	// Every commit has its message: in the outbox, or delivered.
	var summary string
	if !deliveries {
		msgs, err := st.Undelivered(ctx, 1<<30)
		if err != nil {
			return "", err
		}
		if err := checkMessages(msgs, msgOf); err != nil {
			return "", err
		}
		summary = fmt.Sprintf("%d versions checked: totals, balances, receipts, one message per transfer, KeySeqs", head)
	} else {
		if err := waitDrained(ctx, st, drain); err != nil {
			return "", err
		}
		rows, err := pool.Query(ctx, `SELECT id, version, topic, key, key_seq FROM `+deliveriesTable(cfg.schema))
		if err != nil {
			return "", err
		}
		var all []outbox.Message
		for rows.Next() {
			var m outbox.Message
			var v, seq int64
			if err := rows.Scan(&m.ID, &v, &m.Topic, &m.Key, &seq); err != nil {
				rows.Close()
				return "", err
			}
			m.Version, m.KeySeq = uint64(v), uint64(seq)
			all = append(all, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return "", err
		}
		// Dedup by (key, KeySeq), as a consumer would: what is left is one
		// delivery per commit.
		type kseq struct {
			key string
			seq uint64
		}
		first := map[kseq]outbox.Message{}
		var unique []outbox.Message
		for _, m := range all {
			k := kseq{m.Topic + "\x00" + m.Key, m.KeySeq}
			if f, dup := first[k]; dup {
				if f.ID != m.ID {
					return "", fmt.Errorf("(key %s, KeySeq %d) delivered as %s and %s", m.Key, m.KeySeq, f.ID, m.ID)
				}
				continue
			}
			first[k] = m
			unique = append(unique, m)
		}
		if err := checkMessages(unique, msgOf); err != nil {
			return "", fmt.Errorf("deliveries after dedup: %w", err)
		}
		summary = fmt.Sprintf("%d versions checked: totals, balances, receipts; %d deliveries, %d after dedup by (key, KeySeq), one per commit",
			head, len(all), len(unique))
	}
	return summary, nil
}

// checkMessages checks that msgs are exactly one transfer.completed per
// commit of msgOf, each the one its commit lists, with KeySeq 1, 2, 3…
// per key in version order.
func checkMessages(msgs []outbox.Message, msgOf map[uint64]string) error {
	if len(msgs) != len(msgOf) {
		return fmt.Errorf("%d messages for %d commits", len(msgs), len(msgOf))
	}
	byVersion := make(map[uint64]outbox.Message, len(msgs))
	for _, m := range msgs {
		if m.Topic != "transfer.completed" || msgOf[m.Version] != m.ID {
			return fmt.Errorf("message %+v is not its commit's (%q)", m, msgOf[m.Version])
		}
		if _, dup := byVersion[m.Version]; dup {
			return fmt.Errorf("two messages for version %d", m.Version)
		}
		byVersion[m.Version] = m
	}
	next := map[string]uint64{}
	for v := uint64(1); v <= uint64(len(msgOf)); v++ {
		m, ok := byVersion[v]
		if !ok {
			return fmt.Errorf("the commit of version %d has no message", v)
		}
		next[m.Key]++
		if m.KeySeq != next[m.Key] {
			return fmt.Errorf("version %d: KeySeq %d for key %s, want %d", v, m.KeySeq, m.Key, next[m.Key])
		}
	}
	return nil
}

// waitDrained polls until the store holds no undelivered message.
func waitDrained(ctx context.Context, st outbox.Store, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := st.Undelivered(ctx, 1)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the relay did not deliver everything in time")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
