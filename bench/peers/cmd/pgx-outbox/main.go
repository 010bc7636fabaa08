// Command pgx-outbox runs the peer benchmark's workload on a hand-rolled
// transactional outbox on PostgreSQL with pgx/v5, written the way a
// competent Go team writes one:
//
//   - a producer runs, in one transaction, UPDATE users … RETURNING counter
//     and INSERT INTO outbox (key, payload), the event encoded with
//     encoding/json;
//   - one relay loop, in one transaction per batch: SELECT the 500 oldest
//     rows FOR UPDATE SKIP LOCKED, send them to the channel, DELETE them by
//     id; when a batch is not full it sleeps -poll (default 1ms) before
//     the next.
//
// PostgreSQL runs at its defaults (synchronous_commit=on): every commit,
// the relay's included, waits for its WAL flush. Flags:
// bench/peers/README.md.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/theus-go/theus/bench/peers/internal/pgsetup"
	"github.com/theus-go/theus/bench/peers/workload"
)

const (
	schema = "peers_pgx"
	batch  = 500

	updateUser = `UPDATE peers_pgx.users SET counter = counter + 1, email = $2, updated_at = $3
		WHERE id = $1 RETURNING counter`
	insertEvent = `INSERT INTO peers_pgx.outbox (key, payload) VALUES ($1, $2)`
	selectBatch = `SELECT id, payload FROM peers_pgx.outbox ORDER BY id LIMIT 500 FOR UPDATE SKIP LOCKED`
	deleteBatch = `DELETE FROM peers_pgx.outbox WHERE id = ANY($1)`
)

var impl = workload.Impl{Name: "pgx-outbox", Server: true, Open: open}

func main() { workload.Main(impl) }

type system struct {
	pool *pgxpool.Pool
	poll time.Duration
}

func open(ctx context.Context, cfg workload.Config) (workload.System, error) {
	err := pgsetup.Reset(ctx, cfg.DSN, schema, cfg.Users, `CREATE TABLE outbox (
		id         bigserial PRIMARY KEY,
		key        text NOT NULL,
		payload    bytea NOT NULL,
		created_at timestamptz NOT NULL DEFAULT now()
	)`)
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, err
	}
	pc.MaxConns = int32(pgsetup.PoolSize(cfg.C))
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, err
	}
	if err := openAll(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &system{pool: pool, poll: cfg.Poll}, nil
}

// openAll opens every connection of the pool, so that none is opened
// while the clock runs.
func openAll(ctx context.Context, pool *pgxpool.Pool) error {
	conns := make([]*pgxpool.Conn, 0, pool.Config().MaxConns)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range cap(conns) {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	return nil
}

func (s *system) Commit(ctx context.Context, t *workload.Tx) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) // after Commit: a no-op
	var counter int64
	if err := tx.QueryRow(ctx, updateUser, t.User, t.Email, t.UpdatedAt).Scan(&counter); err != nil {
		return fmt.Errorf("update user %s: %w", t.User, err)
	}
	payload, err := json.Marshal(t.Event(counter))
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, insertEvent, t.User, payload); err != nil {
		return fmt.Errorf("insert event: %w", err)
	}
	return tx.Commit(ctx)
}

func (s *system) StartRelay(ctx context.Context, recv func([]byte)) (<-chan error, error) {
	return workload.Pipe(ctx, recv, s.relay), nil
}

// relay moves batches from the outbox to out until ctx ends.
func (s *system) relay(ctx context.Context, out chan<- []byte) error {
	ids := make([]int64, 0, batch)
	for {
		n, err := s.relayBatch(ctx, out, ids[:0])
		if err != nil {
			return err
		}
		if n < batch {
			select {
			case <-time.After(s.poll):
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// relayBatch sends the oldest batch of events to out and deletes them, in
// one transaction: a crash between the two sends them again.
func (s *system) relayBatch(ctx context.Context, out chan<- []byte, ids []int64) (int, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, selectBatch)
	if err != nil {
		return 0, err
	}
	var payloads [][]byte
	for rows.Next() {
		var id int64
		var p []byte
		if err := rows.Scan(&id, &p); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
		payloads = append(payloads, p)
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, tx.Commit(ctx)
	}
	for _, p := range payloads {
		select {
		case out <- p:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if _, err := tx.Exec(ctx, deleteBatch, ids); err != nil {
		return 0, err
	}
	return len(ids), tx.Commit(ctx)
}

func (s *system) Close() error {
	s.pool.Close()
	return nil
}
