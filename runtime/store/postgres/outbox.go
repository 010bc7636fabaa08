package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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
// On a Store that a relay claims, only the messages of the partitions it
// holds.
func (s *Store) Undelivered(ctx context.Context, limit int) ([]outbox.Message, error) {
	on, me, parts, tokens := s.leased()
	if on && len(parts) == 0 {
		return nil, nil
	}
	// A relay reads only the partitions whose lease it still holds by the
	// database's clock: one that resumes after a pause past its lease
	// reads nothing of what another relay has taken over.
	q := `SELECT ` + messageColumns + `, part FROM ` + s.schema + `.theus_outbox m
		WHERE state = 'pending' AND ($2::int[] IS NULL OR part IN (
			SELECT l.part FROM ` + s.schema + `.theus_leases l JOIN unnest($2::int[], $3::bigint[]) AS h(p, t)
				ON l.part = h.p AND l.token = h.t WHERE l.holder = $4 AND l.expires > clock_timestamp()))
		AND NOT EXISTS (
			SELECT 1 FROM ` + s.schema + `.theus_outbox p WHERE p.state = 'parked' AND p.topic = m.topic AND p.key = m.key)
		ORDER BY version, idx LIMIT $1`
	rows, err := s.pool.Query(ctx, q, limit, parts, tokens, me)
	if err != nil {
		return nil, s.errorf("undelivered", err)
	}
	defer rows.Close()
	var out []outbox.Message
	var ids []string
	var ps []int32
	for rows.Next() {
		var part int32
		m, err := scanMessage(rows, &part)
		if err != nil {
			return nil, s.errorf("undelivered", err)
		}
		out = append(out, m)
		ids, ps = append(ids, m.ID), append(ps, part)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("undelivered", err)
	}
	if on {
		s.read(ids, ps)
	}
	return out, nil
}

// Ack implements outbox.Store: the messages are delivered, in one
// statement. On a Store that a relay claims, the statement checks the
// fencing tokens of the relay's leases: the messages of a partition whose
// lease the relay lost stay as they are, and Ack fails with ErrLeaseLost.
func (s *Store) Ack(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	now := s.opts.now().UnixNano()
	f := &s.fleet
	f.mu.Lock()
	on, me := f.on, f.me
	parts, tokens := f.heldArgs()
	f.mu.Unlock()
	if !on {
		_, err := s.pool.Exec(ctx, `UPDATE `+s.schema+`.theus_outbox SET state = 'delivered', delivered_at = $2
			WHERE id = ANY($1) AND state = 'pending'`, ids, now)
		if err != nil {
			return s.errorf("ack", err)
		}
		return nil
	}
	var fenced []string
	err := s.pool.QueryRow(ctx, `WITH `+s.leaseCheck("$3", "$4", "$5")+`,
		done AS (UPDATE `+s.schema+`.theus_outbox SET state = 'delivered', delivered_at = $2
			WHERE id = ANY($1) AND state = 'pending' AND part IN (SELECT part FROM ok) RETURNING id)
		SELECT coalesce((SELECT array_agg(id) FROM `+s.schema+`.theus_outbox
			WHERE id = ANY($1) AND part NOT IN (SELECT part FROM ok)), '{}')`,
		ids, now, parts, tokens, me).Scan(&fenced)
	if err != nil {
		return s.errorf("ack", err)
	}
	acked := ids
	if len(fenced) > 0 {
		acked = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return slices.Contains(fenced, id) })
	}
	s.settled(acked, fenced)
	if len(fenced) > 0 {
		return fmt.Errorf("postgres: ack: %d of %d messages refused: %w", len(fenced), len(ids), ErrLeaseLost)
	}
	return nil
}

// Failed implements outbox.Parking. On a Store that a relay claims, the
// statement checks the fencing token of the message's partition, as Ack
// does.
func (s *Store) Failed(ctx context.Context, id, cause string, park bool, maxAttempts int) (bool, error) {
	f := &s.fleet
	f.mu.Lock()
	on, me := f.on, f.me
	parts, tokens := f.heldArgs()
	f.mu.Unlock()
	var state *string
	fenced := false
	var err error
	const update = `UPDATE {s}.theus_outbox
		SET attempts = attempts + 1, last_error = $1,
			state = CASE WHEN $2 OR ($3 > 0 AND attempts + 1 >= $3) THEN 'parked' ELSE state END
		WHERE id = $4 AND state = 'pending'`
	if !on {
		err = s.pool.QueryRow(ctx, strings.ReplaceAll(update, "{s}", s.schema)+` RETURNING state`, cause, park, maxAttempts, id).Scan(&state)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil // acked, skipped or parked meanwhile
		}
	} else {
		err = s.pool.QueryRow(ctx, `WITH `+s.leaseCheck("$5", "$6", "$7")+`,
			u AS (`+strings.ReplaceAll(update, "{s}", s.schema)+` AND part IN (SELECT part FROM ok) RETURNING state)
			SELECT (SELECT state FROM u), EXISTS (SELECT 1 FROM `+s.schema+`.theus_outbox
				WHERE id = $4 AND part NOT IN (SELECT part FROM ok))`,
			cause, park, maxAttempts, id, parts, tokens, me).Scan(&state, &fenced)
	}
	if err != nil {
		return false, s.errorf("record failure of "+id, err)
	}
	if on {
		if fenced {
			s.settled(nil, []string{id})
			return false, fmt.Errorf("postgres: record failure of %s: %w", id, ErrLeaseLost)
		}
		if state != nil && *state == "parked" {
			s.settled([]string{id}, nil)
		}
	}
	return state != nil && *state == "parked", nil
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
		s.wakeAll(ctx)
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
	s.wakeAll(ctx)
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

// wakeAll wakes this Store's relay and, by a notification, the relays of
// every other Store of the schema: a Replay or Skip lets a key flow again
// whichever relay holds its partition.
func (s *Store) wakeAll(ctx context.Context) {
	s.wake()
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, 'outbox')`, s.channel); err != nil {
		s.opts.logger.Warn("postgres: notify the relays", "err", redact(err, s.secret...))
	}
}
