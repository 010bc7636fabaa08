package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
)

// Message states in the theus_messages view: an undelivered message is in
// theus_outbox, pending or parked; a delivered one has moved to
// theus_delivered.
const (
	statePending   = "pending"
	stateDelivered = "delivered"
	stateParked    = "parked"
)

const messageColumns = `id, version, topic, key, key_seq, payload, headers, created_at`

// scanMessage reads the messageColumns of a row, then extra.
func scanMessage(rows *sql.Rows, extra ...any) (outbox.Message, error) {
	var m outbox.Message
	var version, seq, created int64
	var headers sql.NullString
	dst := append([]any{&m.ID, &version, &m.Topic, &m.Key, &seq, &m.Payload, &headers, &created}, extra...)
	if err := rows.Scan(dst...); err != nil {
		return m, err
	}
	m.Version, m.KeySeq, m.CreatedAt = uint64(version), uint64(seq), time.Unix(0, created)
	if headers.Valid {
		if err := json.Unmarshal([]byte(headers.String), &m.Headers); err != nil {
			return m, fmt.Errorf("message %s: headers: %w", m.ID, err)
		}
	}
	return m, nil
}

// Undelivered implements outbox.Store: pending messages in commit order
// (IDs sort in commit order), without those held back by a parked message
// of their (topic, key). theus_outbox holds only undelivered messages, so
// the scan never passes over delivered ones.
func (s *Store) Undelivered(ctx context.Context, limit int) ([]outbox.Message, error) {
	var out []outbox.Message
	err := s.query(ctx, `SELECT `+messageColumns+` FROM theus_outbox m
		WHERE state = 'pending' AND NOT EXISTS (
			SELECT 1 FROM theus_outbox p WHERE p.state = 'parked' AND p.topic = m.topic AND p.key = m.key)
		ORDER BY id LIMIT ?`, func(rows *sql.Rows) error {
		m, err := scanMessage(rows)
		out = append(out, m)
		return err
	}, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: undelivered: %w", err)
	}
	return out, nil
}

// ackChunk bounds the IDs of one UPDATE (SQLite allows 32,766 parameters).
const ackChunk = 500

// Ack implements outbox.Store: the messages move to theus_delivered,
// stamped with the time, in one transaction.
func (s *Store) Ack(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	now := s.opts.now().UnixNano()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for len(ids) > 0 {
			n := min(len(ids), ackChunk)
			args := make([]any, 0, n)
			for _, id := range ids[:n] {
				args = append(args, id)
			}
			in := `id IN (?` + strings.Repeat(", ?", n-1) + `)`
			if err := keepKeySeqs(ctx, tx, in, args...); err != nil {
				return err
			}
			if _, err := deliver(ctx, tx, now, `state = 'pending' AND `+in, args...); err != nil {
				return err
			}
			ids = ids[n:]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: ack: %w", err)
	}
	return nil
}

// keepKeySeqs records in theus_key_seqs the last KeySeq of the keys of the
// messages matching where, before they become delivered. Recovery then
// finds the KeySeqs in theus_key_seqs and among the undelivered messages
// only, so restart time does not grow with the delivered messages kept for
// retention; and commits, which do not touch theus_key_seqs, stay one
// random page write shorter.
func keepKeySeqs(ctx context.Context, tx *sql.Tx, where string, args ...any) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO theus_key_seqs (topic, key, seq)
		SELECT topic, key, max(key_seq) FROM theus_outbox WHERE `+where+` GROUP BY topic, key
		ON CONFLICT (topic, key) DO UPDATE SET seq = max(seq, excluded.seq)`, args...)
	return err
}

// deliver moves the messages of theus_outbox matching where (with args)
// to theus_delivered, stamped with the time now, and returns how many.
// Commits only append to theus_outbox, and it holds no delivered message
// for the relay to skip when it looks for pending ones.
func deliver(ctx context.Context, tx *sql.Tx, now int64, where string, args ...any) (int64, error) {
	_, err := tx.ExecContext(ctx, `INSERT INTO theus_delivered
		(id, version, idx, topic, key, key_seq, payload, headers, created_at, attempts, last_error, delivered_at)
		SELECT id, version, idx, topic, key, key_seq, payload, headers, created_at, attempts, last_error, ?
		FROM theus_outbox WHERE `+where, append([]any{now}, args...)...)
	if err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM theus_outbox WHERE `+where, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Failed implements outbox.Parking.
func (s *Store) Failed(ctx context.Context, id, cause string, park bool, maxAttempts int) (bool, error) {
	var state string
	err := s.w.QueryRowContext(ctx, `UPDATE theus_outbox
		SET attempts = attempts + 1, last_error = ?,
			state = CASE WHEN ? OR (? > 0 AND attempts + 1 >= ?) THEN 'parked' ELSE state END
		WHERE id = ? AND state = 'pending'
		RETURNING state`, cause, park, maxAttempts, maxAttempts, id).Scan(&state)
	if err == sql.ErrNoRows {
		return false, nil // acked, skipped or parked meanwhile
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: record failure of %s: %w", id, err)
	}
	return state == stateParked, nil
}

// Parked implements outbox.Parking.
func (s *Store) Parked(ctx context.Context) ([]outbox.ParkedMessage, error) {
	var out []outbox.ParkedMessage
	err := s.query(ctx, `SELECT `+messageColumns+`, attempts, last_error FROM theus_outbox
		WHERE state = 'parked' ORDER BY id`, func(rows *sql.Rows) error {
		var p outbox.ParkedMessage
		var last sql.NullString
		m, err := scanMessage(rows, &p.Attempts, &last)
		p.Message, p.LastError = m, last.String
		out = append(out, p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: parked: %w", err)
	}
	return out, nil
}

// Replay implements outbox.Parking.
func (s *Store) Replay(ctx context.Context, topic, key string) (int, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE theus_outbox SET state = 'pending', attempts = 0
		WHERE state = 'parked' AND topic = ? AND key = ?`, topic, key)
	if err != nil {
		return 0, fmt.Errorf("sqlite: replay %s/%s: %w", topic, key, err)
	}
	n, err := res.RowsAffected()
	if n > 0 {
		s.wake()
	}
	return int(n), err
}

// Skip implements outbox.Parking. The skipped message keeps its last
// error; it is delivered as far as the store is concerned, and pruned with
// the other delivered messages.
func (s *Store) Skip(ctx context.Context, id string) error {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := keepKeySeqs(ctx, tx, `state = 'parked' AND id = ?`, id); err != nil {
			return err
		}
		var err error
		n, err = deliver(ctx, tx, s.opts.now().UnixNano(), `state = 'parked' AND id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: skip %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: skip %s: %w", id, outbox.ErrNotParked)
	}
	s.wake()
	return nil
}

// Prune implements outbox.Pruner: it deletes the messages delivered more
// than the retention ago (WithRetention), one batch per transaction, and
// returns how many. The last KeySeq of every key was kept apart from the
// messages when they were acked, so pruning never makes a KeySeq repeat.
func (s *Store) Prune(ctx context.Context) (int, error) {
	if s.opts.retention < 0 {
		return 0, nil
	}
	cutoff := s.opts.now().Add(-s.opts.retention).UnixNano()
	total := 0
	for ctx.Err() == nil {
		res, err := s.w.ExecContext(ctx, `DELETE FROM theus_delivered WHERE id IN (
			SELECT id FROM theus_delivered WHERE delivered_at < ? LIMIT ?)`, cutoff, s.opts.batch)
		if err != nil {
			return total, fmt.Errorf("sqlite: prune: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("sqlite: prune: %w", err)
		}
		total += int(n)
		if n < int64(s.opts.batch) {
			break
		}
	}
	return total, nil
}

// inTx runs f in a transaction on the write connection.
func (s *Store) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

var _ outbox.RelayClaimer = (*Store)(nil)

// relayClaim is a store's claim for the relay that runs on it.
type relayClaim struct {
	mu   sync.Mutex
	held bool
}

// ClaimRelay implements outbox.RelayClaimer: every relay reads every
// pending message, so two at once would split the messages between their
// sinks. The claim is an exclusive flock on the file's path (symlinks
// resolved) + "-relay", so a relay of another Store of the file, in this
// process or another, is refused too; the kernel drops it with the
// process, however it ends.
func (s *Store) ClaimRelay(context.Context) (release func(), err error) {
	s.relay.mu.Lock()
	defer s.relay.mu.Unlock()
	if s.relay.held {
		return nil, fmt.Errorf("sqlite: %s: %w", s.path, outbox.ErrRelayRunning)
	}
	f, err := lockRelay(s.path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", s.path, err)
	}
	s.relay.held = true
	return sync.OnceFunc(func() {
		s.relay.mu.Lock()
		defer s.relay.mu.Unlock()
		if f != nil {
			f.Close()
		}
		s.relay.held = false
	}), nil
}
