package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/runtime/outbox"
)

// A message stays in theus_outbox from its commit until Prune deletes it,
// in one of three states: pending (to deliver), parked (failed
// MaxAttempts times, or permanently, with its error; it holds back the
// later messages of its (topic, key)) and delivered (acked or skipped,
// with delivered_at). A partial index lists each of pending and parked,
// so reading what to deliver costs no more than the pending messages.

var errNoCodec = errors.New("the store has no state codec: use it through engine.WithStore")

const messageColumns = `id, version, topic, key, key_seq, payload, coalesce(headers, ''), created_at`

// scanMessage reads the messageColumns of a row, then extra.
func scanMessage(rows pgx.Rows, extra ...any) (outbox.Message, error) {
	var m outbox.Message
	var version, seq, created int64
	var headers string
	dst := append([]any{&m.ID, &version, &m.Topic, &m.Key, &seq, &m.Payload, &headers, &created}, extra...)
	if err := rows.Scan(dst...); err != nil {
		return m, err
	}
	m.Version, m.KeySeq, m.CreatedAt = uint64(version), uint64(seq), time.Unix(0, created)
	if headers != "" {
		if err := json.Unmarshal([]byte(headers), &m.Headers); err != nil {
			return m, fmt.Errorf("headers of message %s: %w", m.ID, err)
		}
	}
	return m, nil
}

// Undelivered implements outbox.Store: the pending messages in commit
// order, without those a parked message of their (topic, key) holds back.
func (s *Store) Undelivered(ctx context.Context, limit int) ([]outbox.Message, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+messageColumns+` FROM `+s.schema+`.theus_outbox m
		WHERE state = 'pending' AND NOT EXISTS (
			SELECT 1 FROM `+s.schema+`.theus_outbox p WHERE p.state = 'parked' AND p.topic = m.topic AND p.key = m.key)
		ORDER BY version, idx LIMIT $1`, limit)
	if err != nil {
		return nil, s.errorf("undelivered", err)
	}
	defer rows.Close()
	var out []outbox.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, s.errorf("undelivered", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("undelivered", err)
	}
	return out, nil
}

// Ack implements outbox.Store: the messages are delivered, in one
// statement.
func (s *Store) Ack(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE `+s.schema+`.theus_outbox SET state = 'delivered', delivered_at = $2
		WHERE id = ANY($1) AND state = 'pending'`, ids, s.opts.now().UnixNano())
	if err != nil {
		return s.errorf("ack", err)
	}
	return nil
}

// Failed implements outbox.Parking.
func (s *Store) Failed(ctx context.Context, id, cause string, park bool, maxAttempts int) (bool, error) {
	var state string
	err := s.pool.QueryRow(ctx, `UPDATE `+s.schema+`.theus_outbox
		SET attempts = attempts + 1, last_error = $1,
			state = CASE WHEN $2 OR ($3 > 0 AND attempts + 1 >= $3) THEN 'parked' ELSE state END
		WHERE id = $4 AND state = 'pending'
		RETURNING state`, cause, park, maxAttempts, id).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // acked, skipped or parked meanwhile
	}
	if err != nil {
		return false, s.errorf("record failure of "+id, err)
	}
	return state == "parked", nil
}

// Parked implements outbox.Parking.
func (s *Store) Parked(ctx context.Context) ([]outbox.ParkedMessage, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+messageColumns+`, attempts, coalesce(last_error, '') FROM `+s.schema+`.theus_outbox
		WHERE state = 'parked' ORDER BY version, idx`)
	if err != nil {
		return nil, s.errorf("parked", err)
	}
	defer rows.Close()
	var out []outbox.ParkedMessage
	for rows.Next() {
		var p outbox.ParkedMessage
		var attempts int32
		m, err := scanMessage(rows, &attempts, &p.LastError)
		if err != nil {
			return nil, s.errorf("parked", err)
		}
		p.Message, p.Attempts = m, int(attempts)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("parked", err)
	}
	return out, nil
}

// Replay implements outbox.Parking: the parked messages of (topic, key)
// are pending again, with their attempts reset; the messages they held
// back follow them in order.
func (s *Store) Replay(ctx context.Context, topic, key string) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE `+s.schema+`.theus_outbox SET state = 'pending', attempts = 0
		WHERE state = 'parked' AND topic = $1 AND key = $2`, topic, key)
	if err != nil {
		return 0, s.errorf(fmt.Sprintf("replay %s/%s", topic, key), err)
	}
	if tag.RowsAffected() > 0 {
		s.wake()
	}
	return int(tag.RowsAffected()), nil
}

// Skip implements outbox.Parking. The skipped message keeps its last
// error; it is delivered as far as the store is concerned, and pruned with
// the other delivered messages.
func (s *Store) Skip(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE `+s.schema+`.theus_outbox SET state = 'delivered', delivered_at = $2
		WHERE id = $1 AND state = 'parked'`, id, s.opts.now().UnixNano())
	if err != nil {
		return s.errorf("skip "+id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: skip %s: %w", id, outbox.ErrNotParked)
	}
	s.wake()
	return nil
}

// Prune implements outbox.Pruner: it deletes the messages delivered more
// than the retention ago (WithRetention) and the log rows older than the
// history retention (WithHistoryRetention), in batches of WithPruneBatch
// rows, and returns how many messages it deleted. KeySeqs are kept in
// theus_key_seqs, so pruning never makes one repeat. An application
// without a relay calls it from a ticker of its own.
func (s *Store) Prune(ctx context.Context) (int, error) {
	total := 0
	if s.opts.retention >= 0 {
		cutoff := s.opts.now().Add(-s.opts.retention).UnixNano()
		n, err := s.deleteBatches(ctx, `DELETE FROM `+s.schema+`.theus_outbox WHERE id IN (
			SELECT id FROM `+s.schema+`.theus_outbox WHERE state = 'delivered' AND delivered_at < $1 LIMIT $2)`, cutoff)
		total += n
		if err != nil {
			return total, s.errorf("prune", err)
		}
	}
	if _, err := s.pruneHistory(ctx); err != nil {
		return total, s.errorf("prune", err)
	}
	return total, nil
}

// deleteBatches runs the DELETE q, whose last argument is the batch size,
// until it deletes less than a batch.
func (s *Store) deleteBatches(ctx context.Context, q string, args ...any) (int, error) {
	total := 0
	for ctx.Err() == nil {
		tag, err := s.pool.Exec(ctx, q, append(args, s.opts.batch)...)
		if err != nil {
			return total, err
		}
		total += int(tag.RowsAffected())
		if tag.RowsAffected() < int64(s.opts.batch) {
			break
		}
	}
	return total, ctx.Err()
}

// Stats implements outbox.StatsReader.
func (s *Store) Stats(ctx context.Context) (outbox.StoreStats, error) {
	var st outbox.StoreStats
	var oldest *int64
	var pending, parked, keys int64
	err := s.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM `+s.schema+`.theus_outbox WHERE state = 'pending'),
		(SELECT min(created_at) FROM `+s.schema+`.theus_outbox WHERE state = 'pending'),
		(SELECT count(*) FROM `+s.schema+`.theus_outbox WHERE state = 'parked'),
		(SELECT count(*) FROM (SELECT 1 FROM `+s.schema+`.theus_outbox WHERE state = 'parked' GROUP BY topic, key) k)`).
		Scan(&pending, &oldest, &parked, &keys)
	if err != nil {
		return st, s.errorf("stats", err)
	}
	st.Pending, st.Parked, st.ParkedKeys = int(pending), int(parked), int(keys)
	if oldest != nil {
		st.OldestPending = time.Unix(0, *oldest)
	}
	return st, nil
}

// ClaimRelay implements outbox.RelayClaimer: one relay per schema, for
// now. The claim is a session advisory lock held on a connection of its
// own, so a relay of any Store on the same database and schema, in any
// process, is refused; PostgreSQL drops the lock with the connection
// when the relay's process dies.
func (s *Store) ClaimRelay(ctx context.Context) (release func(), err error) {
	s.relay.Lock()
	defer s.relay.Unlock()
	if s.held {
		return nil, fmt.Errorf("postgres: schema %s: %w", s.opts.schema, outbox.ErrRelayRunning)
	}
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, s.errorf("claim the relay", err)
	}
	conn := c.Hijack()
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext('theus'), hashtext($1))`, s.opts.schema+".relay").Scan(&ok); err != nil {
		conn.Close(context.Background())
		return nil, s.errorf("claim the relay", err)
	}
	if !ok {
		conn.Close(context.Background())
		return nil, fmt.Errorf("postgres: schema %s: %w", s.opts.schema, outbox.ErrRelayRunning)
	}
	s.held = true
	var once sync.Once
	return func() {
		once.Do(func() {
			// Closing the connection ends the session, and its lock.
			conn.Close(context.Background())
			s.relay.Lock()
			s.held = false
			s.relay.Unlock()
		})
	}, nil
}
