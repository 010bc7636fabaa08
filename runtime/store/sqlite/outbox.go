package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/theus-go/theus/runtime/outbox"
)

// Message states. A message stays in theus_outbox from its commit until
// Prune deletes it. The relay's cursor (theus_meta 'cursor', a message ID)
// settles the messages up to it: a pending message at or below the cursor
// is delivered. The other states hold whatever the cursor passes over:
//
//   - delivered: delivered apart from the cursor (acked after an earlier
//     message that is still undelivered, or skipped), with delivered_at;
//   - parked: failed MaxAttempts times (or permanently), with the error;
//     it blocks the later messages of its (topic, key);
//   - held: pending, but blocked behind a parked message of its key; the
//     cursor passes it without delivering it;
//   - ready: to be delivered although the cursor may have passed it (a
//     parked or held message that was replayed, or held behind a skipped
//     one).
//
// Acking in commit order, as a relay does while deliveries succeed, only
// moves the cursor: one row of theus_meta and one of theus_acks (when the
// cursor passed each value, for retention) per ack, however many messages
// it covers.
const (
	statePending   = "pending"
	stateDelivered = "delivered"
	stateParked    = "parked"
	stateHeld      = "held"
	stateReady     = "ready"
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

// The statements the relay runs every round.
const (
	// qCursor reads the cursor, whether any message is parked, whether
	// any is held or ready, and the last committed message's ID: the last
	// in the file, or the last folded (see fold), which may have been
	// acked ahead of the cursor and pruned.
	qCursor = `SELECT coalesce((SELECT value FROM theus_meta WHERE name = 'cursor'), ''),
		EXISTS (SELECT 1 FROM theus_outbox WHERE state = 'parked'),
		EXISTS (SELECT 1 FROM theus_outbox WHERE state = 'held') OR EXISTS (SELECT 1 FROM theus_outbox WHERE state = 'ready'),
		max(coalesce((SELECT max(id) FROM theus_outbox), ''), coalesce((SELECT value FROM theus_meta WHERE name = 'folded'), ''))`
	// qPending reads the pending messages after the cursor.
	qPending = `SELECT ` + messageColumns + `, 0 FROM theus_outbox m
		WHERE m.id > ? AND m.state = 'pending' ORDER BY m.id LIMIT ?`
	// qPendingParked is qPending, with whether a parked message of its key
	// blocks each, for when some message is parked.
	qPendingParked = `SELECT ` + messageColumns + `, EXISTS (
			SELECT 1 FROM theus_outbox p WHERE p.state = 'parked' AND p.topic = m.topic AND p.key = m.key)
		FROM theus_outbox m WHERE m.id > ? AND m.state = 'pending' ORDER BY m.id LIMIT ?`
	// qReady reads the ready messages that no parked message blocks.
	qReady = `SELECT ` + messageColumns + `, 0 FROM theus_outbox m
		WHERE m.state = 'ready' AND NOT EXISTS (
			SELECT 1 FROM theus_outbox p WHERE p.state = 'parked' AND p.topic = m.topic AND p.key = m.key)
		ORDER BY m.id LIMIT ?`
)

// relayRead is what the last Undelivered returned, so that Ack can move
// the cursor over it without reading it again. A store has one relay
// (ClaimRelay), so there is one such read at a time.
type relayRead struct {
	mu     sync.Mutex
	cursor string   // the cursor it read after
	after  []string // the IDs it returned after the cursor, in order
	// conn is the read connection the relay reads on, below database/sql
	// as the write connection is (see writeConn): a relay round reads
	// hundreds of rows, and database/sql would convert every value twice.
	conn *sql.Conn
	rc   writeConn
	row  []driver.Value
}

// Undelivered implements outbox.Store: the pending messages after the
// cursor and the ready ones, in commit order (IDs sort in commit order),
// without those a parked message of their (topic, key) holds back. Those
// it finds after the cursor it marks held, so that the cursor passes them
// and they are not read again until their key is replayed or skipped.
//
// While the relay keeps up and nothing is parked, held or ready, the
// messages are those of the latest commits, which the store keeps in
// memory (see tail): no read transaction is needed for them.
func (s *Store) Undelivered(ctx context.Context, limit int) ([]outbox.Message, error) {
	s.rr.mu.Lock()
	defer s.rr.mu.Unlock()
	for {
		msgs, ok, epoch := s.tail.read(s.rr.cursor, limit)
		if ok {
			s.rr.after = s.rr.after[:0]
			for _, m := range msgs {
				s.rr.after = append(s.rr.after, m.ID)
			}
			return msgs, nil
		}
		var r undelivered
		err := s.onReadConn(ctx, func(c *writeConn) (err error) {
			r, err = s.readUndelivered(c, limit)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("sqlite: undelivered: %w", err)
		}
		s.tail.check(epoch, r.clean, r.last)
		if len(r.blocked) > 0 {
			all, err := s.hold(ctx, r.blocked)
			if err != nil {
				return nil, fmt.Errorf("sqlite: undelivered: %w", err)
			}
			if !all || len(r.msgs) == 0 {
				continue // all held back, or a key freed since the read: read again
			}
		}
		s.rr.cursor, s.rr.after = r.cursor, r.after
		return r.msgs, nil
	}
}

// onReadConn calls f with the relay's read connection, s.rr.mu held.
func (s *Store) onReadConn(ctx context.Context, f func(*writeConn) error) error {
	if s.rr.conn == nil {
		conn, err := s.r.Conn(ctx)
		if err != nil {
			return err
		}
		s.rr.conn = conn
	}
	err := s.rr.conn.Raw(func(dc any) error {
		if s.rr.rc.dc != dc {
			s.rr.rc = writeConn{dc: dc, stmts: make(map[string]driver.Stmt)}
		}
		return f(&s.rr.rc)
	})
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		s.closeReadConn()
	}
	return err
}

// closeReadConn finalizes the relay's statements and gives its
// connection back. s.rr.mu is held.
func (s *Store) closeReadConn() error {
	if s.rr.conn == nil {
		return nil
	}
	err := s.rr.conn.Raw(func(any) error { return s.rr.rc.close() })
	s.rr.rc = writeConn{}
	err = errors.Join(err, s.rr.conn.Close())
	s.rr.conn = nil
	return err
}

// undelivered is what readUndelivered read.
type undelivered struct {
	cursor string
	// msgs are the messages to deliver, after the IDs of those after the
	// cursor, blocked the IDs of the pending ones a parked message holds
	// back.
	msgs           []outbox.Message
	after, blocked []string
	// clean is set when no message is parked, held or ready and none is
	// acked out of order; last is the ID of the last message committed
	// (see qCursor and tail).
	clean bool
	last  string
}

// readUndelivered reads, in one read transaction, the cursor, up to limit
// pending messages after it and the ready messages, merged in ID order.
func (s *Store) readUndelivered(c *writeConn, limit int) (r undelivered, err error) {
	// The acks out of order not written yet: a commit may write some
	// before the read below begins, and take them out of s.acks before it
	// looks, which the read would not see.
	s.acks.mu.Lock()
	early := maps.Clone(s.acks.delivered)
	s.acks.mu.Unlock()
	if _, err := c.exec(`BEGIN`); err != nil {
		return r, err
	}
	defer c.exec(`COMMIT`) // a read transaction: nothing to keep
	var parked, heldOrReady int64
	if err := c.queryRow(qCursor, nil, &r.cursor, &parked, &heldOrReady, &r.last); err != nil {
		return r, err
	}
	// The cursor as this store moved it: the acks it has not written
	// yet are ahead of the one stored.
	r.cursor = max(r.cursor, s.rr.cursor)
	s.acks.mu.Lock()
	defer s.acks.mu.Unlock()
	r.clean = parked == 0 && heldOrReady == 0 && len(early) == 0 && len(s.acks.delivered) == 0
	unacked := func(id string) bool {
		_, now := s.acks.delivered[id]
		_, before := early[id]
		return !now && !before
	}
	q := qPending
	if parked != 0 {
		q = qPendingParked
	}
	var pending []outbox.Message
	// Messages acked in memory are left out, so a read may need more rows
	// than limit: read on from the last row until limit are found or none
	// is left.
	for from := r.cursor; len(pending) < limit; {
		want, got := limit-len(pending), 0
		err = s.readMessages(c, q, []any{from, int64(want)}, func(m outbox.Message, held bool) {
			got, from = got+1, m.ID
			switch {
			case !unacked(m.ID):
			case held:
				r.blocked = append(r.blocked, m.ID)
			default:
				pending = append(pending, m)
			}
		})
		if err != nil {
			return r, err
		}
		if got < want {
			break
		}
	}
	var ready []outbox.Message
	if heldOrReady != 0 {
		err = s.readMessages(c, qReady, []any{int64(limit + len(s.acks.delivered) + len(early))}, func(m outbox.Message, _ bool) {
			if unacked(m.ID) && len(ready) < limit {
				ready = append(ready, m)
			}
		})
		if err != nil {
			return r, err
		}
	}
	r.after = make([]string, len(pending))
	for i, m := range pending {
		r.after[i] = m.ID
	}
	if len(ready) == 0 {
		r.msgs = pending
		return r, nil
	}
	r.msgs = make([]outbox.Message, 0, min(limit, len(pending)+len(ready)))
	for len(r.msgs) < limit && (len(pending) > 0 || len(ready) > 0) {
		if len(ready) == 0 || len(pending) > 0 && pending[0].ID < ready[0].ID {
			r.msgs, pending = append(r.msgs, pending[0]), pending[1:]
		} else {
			r.msgs, ready = append(r.msgs, ready[0]), ready[1:]
		}
	}
	r.after = r.after[:len(r.after)-len(pending)]
	return r, nil
}

// readMessages runs q, whose rows are the messageColumns and a flag, and
// calls f with each.
func (s *Store) readMessages(c *writeConn, q string, args []any, f func(m outbox.Message, flag bool)) error {
	rows, err := c.query(q, args)
	if err != nil {
		return err
	}
	defer rows.Close()
	row := s.rr.row[:0]
	for range rows.Columns() {
		row = append(row, nil)
	}
	s.rr.row = row
	for {
		if err := rows.Next(row); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		var m outbox.Message
		var ok [6]bool
		m.ID, ok[0] = row[0].(string)
		var version, seq, created, flag int64
		version, ok[1] = row[1].(int64)
		m.Topic, ok[2] = row[2].(string)
		m.Key, ok[3] = row[3].(string)
		seq, ok[4] = row[4].(int64)
		switch p := row[5].(type) {
		case []byte:
			m.Payload = p
		case string:
			m.Payload = []byte(p)
		case nil:
			m.Payload = []byte{}
		}
		created, ok[5] = row[7].(int64)
		flag, _ = row[8].(int64)
		if ok != [6]bool{true, true, true, true, true, true} {
			return fmt.Errorf("message row %v: unexpected column types", row[:5])
		}
		m.Version, m.KeySeq, m.CreatedAt = uint64(version), uint64(seq), time.Unix(0, created)
		if h, ok := row[6].(string); ok {
			if err := json.Unmarshal([]byte(h), &m.Headers); err != nil {
				return fmt.Errorf("message %s: headers: %w", m.ID, err)
			}
		}
		f(m, flag != 0)
	}
}

// hold marks held the pending messages with these IDs whose key a parked
// message still holds back, and reports whether it held them all: a
// Replay or Skip since they were read may have freed their key, and a
// message that is not held must not be passed by the cursor.
func (s *Store) hold(ctx context.Context, ids []string) (all bool, err error) {
	all = true
	err = s.ackTx(ctx, func(c *writeConn) error {
		for _, id := range ids {
			res, err := c.exec(`UPDATE theus_outbox SET state = 'held' WHERE id = ? AND state = 'pending' AND EXISTS (
				SELECT 1 FROM theus_outbox p WHERE p.state = 'parked' AND p.topic = theus_outbox.topic AND p.key = theus_outbox.key)`, id)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				all = false
			}
		}
		return nil
	})
	return all, err
}

// Ack implements outbox.Store. The IDs the last Undelivered returned after
// the cursor, from the first one on and as far as they are all acked, move
// the cursor; any other is marked delivered on its own. Acks are written
// with the next commit group, in its transaction, or on their own after
// WithAckInterval if no commit comes first; until then the store leaves
// them out of what Undelivered returns. They are not synced on their own:
// the next commit's sync takes them along. An ack lost to a crash or a
// power cut only makes its messages be delivered again, which
// at-least-once allows.
func (s *Store) Ack(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	s.rr.mu.Lock()
	acked := slices.Clone(ids)
	slices.Sort(acked)
	// The longest run of the last read's IDs after the cursor, from the
	// first, that is acked.
	n, rest := 0, acked[:0:0]
	for _, id := range acked {
		if n < len(s.rr.after) && id == s.rr.after[n] {
			n++
			continue
		}
		rest = append(rest, id)
	}
	if n > 0 {
		s.rr.cursor, s.rr.after = s.rr.after[n-1], s.rr.after[n:]
	}
	cursor := s.rr.cursor
	if len(rest) > 0 {
		s.tail.reset() // the messages acked out of order are no longer pending
	}
	now := s.opts.now().UnixNano()
	// Taken before the read's lock is let go, so that no read finds the
	// cursor moved and the acks out of order not recorded yet.
	s.acks.mu.Lock()
	s.rr.mu.Unlock()
	if n > 0 {
		s.acks.cursor, s.acks.at = cursor, now
	}
	for _, id := range rest {
		s.acks.delivered[id] = now
	}
	if s.opts.ackInterval <= 0 {
		s.acks.mu.Unlock()
		return s.flushAcks(ctx)
	}
	if !s.acks.armed {
		s.acks.armed = true
		s.acks.timer.Reset(s.opts.ackInterval)
	}
	s.acks.mu.Unlock()
	return nil
}

// pendingAcks are the acks made and not written yet (see Ack): the cursor
// to write and when it moved, and the messages acked on their own. An ack
// stays here until the transaction that writes it has committed, so that
// Undelivered, which leaves these messages out, never reads one again.
type pendingAcks struct {
	mu        sync.Mutex
	cursor    string // "" when the cursor has not moved since the last write
	at        int64
	delivered map[string]int64 // ID -> when acked
	timer     *time.Timer      // writes them after WithAckInterval
	armed     bool
	// flushing serialises the writes of acks, so that an older cursor is
	// never written over a newer one.
	flushing sync.Mutex
}

// ackWrite is a copy of the pending acks, for a transaction to write.
type ackWrite struct {
	cursor    string
	at        int64
	delivered map[string]int64
}

// takeAcks copies the pending acks, or returns nil when there are none.
func (s *Store) takeAcks() *ackWrite {
	s.acks.mu.Lock()
	defer s.acks.mu.Unlock()
	if s.acks.cursor == "" && len(s.acks.delivered) == 0 {
		return nil
	}
	return &ackWrite{cursor: s.acks.cursor, at: s.acks.at, delivered: maps.Clone(s.acks.delivered)}
}

// write writes the acks in c's transaction.
func (w *ackWrite) write(c *writeConn) error {
	if w == nil {
		return nil
	}
	if w.cursor != "" {
		if _, err := c.exec(`UPDATE theus_meta SET value = ? WHERE name = 'cursor' AND value < ?`, w.cursor, w.cursor); err != nil {
			return err
		}
		if _, err := c.exec(`INSERT INTO theus_acks (cursor, at) VALUES (?, ?) ON CONFLICT (cursor) DO NOTHING`, w.cursor, w.at); err != nil {
			return err
		}
	}
	for id, at := range w.delivered {
		if _, err := c.exec(`UPDATE theus_outbox SET state = 'delivered', delivered_at = ?
			WHERE id = ? AND state IN ('pending', 'ready')`, at, id); err != nil {
			return err
		}
	}
	return nil
}

// written drops the acks w wrote from the pending ones, once its
// transaction has committed.
func (s *Store) written(w *ackWrite) {
	if w == nil {
		return
	}
	s.acks.mu.Lock()
	defer s.acks.mu.Unlock()
	if s.acks.cursor == w.cursor {
		s.acks.cursor = ""
	}
	for id := range w.delivered {
		delete(s.acks.delivered, id)
	}
}

// flushAcks writes the pending acks in a transaction of their own.
func (s *Store) flushAcks(ctx context.Context) error {
	s.acks.flushing.Lock()
	defer s.acks.flushing.Unlock()
	w := s.takeAcks()
	if w == nil {
		return nil
	}
	if err := s.ackTx(ctx, w.write); err != nil {
		return fmt.Errorf("sqlite: ack: %w", err)
	}
	s.written(w)
	return nil
}

// flushAcksLater is the timer's: it writes the acks no commit carried.
func (s *Store) flushAcksLater() {
	s.acks.mu.Lock()
	s.acks.armed = false
	s.acks.mu.Unlock()
	if err := s.flushAcks(context.Background()); err != nil {
		// Kept pending: the next commit or the next timer writes them.
		s.opts.logger.Warn("sqlite: write acks; retrying", slog.Any("err", err))
		s.acks.mu.Lock()
		if !s.acks.armed {
			s.acks.armed = true
			s.acks.timer.Reset(max(s.opts.ackInterval, time.Second))
		}
		s.acks.mu.Unlock()
	}
}

// ackTx runs f in a write transaction that is not synced when it commits
// (synchronous=NORMAL in WAL mode): the next synced commit syncs it too.
func (s *Store) ackTx(ctx context.Context, f func(*writeConn) error) error {
	return s.onWriteConn(ctx, func(c *writeConn) (err error) {
		if _, err := c.exec(`PRAGMA synchronous = NORMAL`); err != nil {
			return err
		}
		defer func() {
			if _, serr := c.exec(`PRAGMA synchronous = ` + s.opts.sync); serr != nil && err == nil {
				err = serr
			}
		}()
		if _, err := c.exec(`BEGIN IMMEDIATE`); err != nil {
			return err
		}
		committed := false
		defer func() {
			if !committed {
				c.exec(`ROLLBACK`)
			}
		}()
		if err := f(c); err != nil {
			return err
		}
		if _, err := c.exec(`COMMIT`); err != nil {
			return err
		}
		committed = true
		return nil
	})
}

// Failed implements outbox.Parking.
func (s *Store) Failed(ctx context.Context, id, cause string, park bool, maxAttempts int) (bool, error) {
	// The message may be parked below: the relay then reads the file,
	// which holds its key back. (Replay and Skip act on parked messages,
	// and the tail answers only while none is parked, held or ready.)
	defer s.tail.reset()
	var state string
	err := s.w.QueryRowContext(ctx, `UPDATE theus_outbox
		SET attempts = attempts + 1, last_error = ?,
			state = CASE WHEN ? OR (? > 0 AND attempts + 1 >= ?) THEN 'parked' ELSE state END
		WHERE id = ? AND state IN ('pending', 'ready')
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
	// ORDER BY +id: read the partial index of the parked messages and sort
	// them, rather than scan every message in id order.
	err := s.query(ctx, `SELECT `+messageColumns+`, attempts, last_error FROM theus_outbox
		WHERE state = 'parked' ORDER BY +id`, func(rows *sql.Rows) error {
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

// Replay implements outbox.Parking: the parked messages of (topic, key),
// and those held behind them, are ready to be delivered again, the parked
// ones with their attempts reset. It returns how many were parked.
func (s *Store) Replay(ctx context.Context, topic, key string) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE theus_outbox SET state = 'ready', attempts = 0
			WHERE state = 'parked' AND topic = ? AND key = ?`, topic, key)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE theus_outbox SET state = 'ready'
			WHERE state = 'held' AND topic = ? AND key = ?`, topic, key)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: replay %s/%s: %w", topic, key, err)
	}
	if n > 0 {
		s.wake()
	}
	return int(n), nil
}

// Skip implements outbox.Parking. The skipped message keeps its last
// error; it is delivered as far as the store is concerned, and pruned with
// the other delivered messages. The messages held behind it are ready.
func (s *Store) Skip(ctx context.Context, id string) error {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var topic, key string
		err := tx.QueryRowContext(ctx, `UPDATE theus_outbox SET state = 'delivered', delivered_at = ?
			WHERE id = ? AND state = 'parked' RETURNING topic, key`, s.opts.now().UnixNano(), id).Scan(&topic, &key)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		n = 1
		_, err = tx.ExecContext(ctx, `UPDATE theus_outbox SET state = 'ready'
			WHERE state = 'held' AND topic = ? AND key = ? AND NOT EXISTS (
				SELECT 1 FROM theus_outbox p WHERE p.state = 'parked' AND p.topic = ? AND p.key = ?)`, topic, key, topic, key)
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
// returns how many. A message settled by the cursor was delivered when the
// cursor passed it (theus_acks); only messages whose KeySeq is folded into
// theus_key_seqs (see foldKeySeqs) are deleted, so pruning never makes a
// KeySeq repeat.
func (s *Store) Prune(ctx context.Context) (int, error) {
	if s.opts.retention < 0 {
		return 0, nil
	}
	if err := s.flushAcks(ctx); err != nil {
		return 0, fmt.Errorf("sqlite: prune: %w", err)
	}
	if err := s.fold(ctx); err != nil {
		return 0, fmt.Errorf("sqlite: prune: %w", err)
	}
	cutoff := s.opts.now().Add(-s.opts.retention).UnixNano()
	var settled, folded string // delete pending messages up to both
	err := s.r.QueryRowContext(ctx, `SELECT
		coalesce((SELECT max(cursor) FROM theus_acks WHERE at < ?), ''),
		coalesce((SELECT value FROM theus_meta WHERE name = 'folded'), '')`, cutoff).Scan(&settled, &folded)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune: %w", err)
	}
	upTo := min(settled, folded)
	total := 0
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM theus_outbox WHERE id IN (
			SELECT id FROM theus_outbox WHERE id <= ? AND state = 'pending' ORDER BY id LIMIT ?)`, []any{upTo}},
		{`DELETE FROM theus_outbox WHERE id IN (
			SELECT id FROM theus_outbox WHERE state = 'delivered' AND delivered_at < ? AND id <= ? LIMIT ?)`, []any{cutoff, folded}},
	} {
		for ctx.Err() == nil {
			res, err := s.w.ExecContext(ctx, q.sql, append(q.args, s.opts.batch)...)
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
	}
	if _, err := s.w.ExecContext(ctx, `DELETE FROM theus_acks WHERE cursor < ?`, settled); err != nil {
		return total, fmt.Errorf("sqlite: prune: %w", err)
	}
	return total, nil
}

// foldEvery is how many messages a checkpoint lets the store commit
// before it folds their KeySeqs (see fold): a fold writes a row per key,
// so folding rarely writes each key's less often, and recovery reads at
// most about this many messages to find the KeySeqs not folded.
const foldEvery = 100_000

// foldDue tells whether a checkpoint should fold.
func (s *Store) foldDue() bool {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.unfolded >= foldEvery
}

// fold records in theus_key_seqs the last KeySeq of the keys of the
// messages committed since the last fold, which the store keeps in memory
// as it commits them, and in theus_meta the ID of the last message it
// covers ('folded'). Recovery then reads theus_key_seqs and only the
// messages after that one, so restart time does not grow with the
// delivered messages kept for retention; and Prune deletes folded
// messages only, so that no KeySeq is lost. Prune folds, and so do
// checkpoints once foldEvery messages were committed since the last fold.
// A store no engine writes has nothing to fold.
func (s *Store) fold(ctx context.Context) error {
	s.cmu.Lock()
	seqs, to := s.seqs, s.lastID
	if s.codec == nil || len(seqs) == 0 {
		s.cmu.Unlock()
		return nil
	}
	s.seqs = make(map[outbox.TopicKey]uint64)
	unfolded := s.unfolded
	s.unfolded = 0
	s.cmu.Unlock()
	err := s.writeTx(ctx, noStep, noStep, noStep, func(c *writeConn) error {
		for tk, seq := range seqs {
			if _, err := c.exec(upsertKeySeq, tk.Topic, tk.Key, int64(seq)); err != nil {
				return err
			}
		}
		_, err := c.exec(`UPDATE theus_meta SET value = ? WHERE name = 'folded'`, to)
		return err
	})
	if err != nil {
		s.cmu.Lock()
		for tk, seq := range seqs { // later commits' are higher
			if _, ok := s.seqs[tk]; !ok {
				s.seqs[tk] = seq
			}
		}
		s.unfolded += unfolded
		s.cmu.Unlock()
		return fmt.Errorf("fold KeySeqs: %w", err)
	}
	return nil
}

// upsertKeySeq records the last KeySeq of a key.
const upsertKeySeq = `INSERT INTO theus_key_seqs (topic, key, seq) VALUES (?, ?, ?)
	ON CONFLICT (topic, key) DO UPDATE SET seq = max(seq, excluded.seq)`

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
