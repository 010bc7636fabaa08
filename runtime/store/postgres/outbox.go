package postgres

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/theus-go/theus/runtime/outbox"
)

// A message stays in theus_outbox from its commit until Prune deletes it,
// in one of three states: pending (to deliver), parked (failed
// MaxAttempts times, or permanently, with its error; it holds back the
// later messages of its (topic, key)) and delivered (acked or skipped,
// with delivered_at), or pending at or before its partition's ack cursor,
// which is delivered too (cursor.go). A partial index lists the pending
// messages by partition and position, another the parked ones, so
// reading what to deliver costs no more than what is read.

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
	return m, setHeaders(&m, []byte(headers))
}

// setHeaders decodes a message's headers column (JSON; empty for none).
func setHeaders(m *outbox.Message, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, &m.Headers); err != nil {
		return fmt.Errorf("headers of message %s: %w", m.ID, err)
	}
	return nil
}

// Undelivered implements outbox.Store: the pending messages in commit
// order, without those a parked message of their (topic, key) holds back.
// On a Store that a relay claims, only the messages of the partitions it
// holds, each read after its cursor (cursor.go).
func (s *Store) Undelivered(ctx context.Context, limit int) ([]outbox.Message, error) {
	f := &s.fleet
	f.mu.Lock()
	ahead := f.ahead
	f.ahead, f.quiet = nil, nil
	f.mu.Unlock()
	if ahead != nil && f.limit == limit {
		return ahead.msgs, nil // read with the last ack, and recorded then
	}
	on, me, parts, tokens, curs, ks := s.leased(limit)
	if on && len(parts) == 0 {
		return nil, nil
	}
	var rows pgx.Rows
	var err error
	var gen <-chan struct{}
	if on {
		gen = s.changes() // before the read: a commit after it closes gen
		// A relay reads only the partitions whose lease it still holds
		// by the database's clock: one that resumes after a pause past
		// its lease reads nothing of what another relay has taken over.
		vs, is := make([]int64, len(curs)), make([]int32, len(curs))
		for i, c := range curs {
			vs[i], is[i] = c.v, c.i
		}
		rows, err = s.pool.Query(ctx, s.readQuery(), parts, tokens, me, vs, is, ks)
	} else {
		rows, err = s.pool.Query(ctx, s.unclaimedQuery(), limit)
	}
	if err != nil {
		return nil, s.errorf("undelivered", err)
	}
	r, err := scanRead(rows)
	if err != nil {
		return nil, s.errorf("undelivered", err)
	}
	if on {
		r.sortCut(limit)
		if f.afterRead != nil {
			f.afterRead()
		}
		s.read(&r, parts, tokens, limit, gen)
	}
	return r.msgs, nil
}

// unclaimedQuery is the read of a Store that no relay claims: the first
// $1 pending messages, in commit order, that no parked message holds
// back. Its rows are those of readQuery.
func (s *Store) unclaimedQuery() string {
	return `SELECT x.*, false FROM ` + s.schema + `.theus_leases l CROSS JOIN LATERAL (
		SELECT ` + messageColumns + `, m.idx, m.part FROM ` + s.schema + `.theus_outbox m
		WHERE m.state = 'pending' AND m.part = l.part AND (m.version, m.idx) > (l.acked_version, l.acked_idx)
			AND NOT EXISTS (SELECT 1 FROM ` + s.schema + `.theus_outbox p WHERE p.state = 'parked' AND p.topic = m.topic AND p.key = m.key)
		ORDER BY m.version, m.idx LIMIT $1) x
		ORDER BY x.version, x.idx LIMIT $1`
}

// readResult is what a read returned: the messages, and for the relay's
// windows their IDs, partitions and positions, and the partitions that
// had a parked message.
type readResult struct {
	msgs   []outbox.Message
	ids    []string
	parts  []int32
	at     []pos
	parked map[int32]bool
	cut    bool // sortCut left rows out
}

// scanRead reads the rows of a read statement, and closes them. When
// every column comes in the form readColumns expects, the rows are decoded
// from their wire form (decodeRead), without Scan's conversions.
func scanRead(rows pgx.Rows) (readResult, error) {
	defer rows.Close()
	var r readResult
	raw := rawReadable(rows.FieldDescriptions())
	for rows.Next() {
		var m outbox.Message
		var part, idx int32
		var p bool
		var err error
		if raw {
			m, idx, part, p, err = decodeRead(rows.RawValues())
		} else {
			m, err = scanMessage(rows, &idx, &part, &p)
		}
		if err != nil {
			return r, err
		}
		r.msgs = append(r.msgs, m)
		r.ids, r.parts, r.at = append(r.ids, m.ID), append(r.parts, part), append(r.at, pos{int64(m.Version), idx})
		if p {
			if r.parked == nil {
				r.parked = map[int32]bool{}
			}
			r.parked[part] = true
		}
	}
	return r, rows.Err()
}

// readColumns are the types of a read statement's columns: messageColumns,
// idx, part and whether the partition has a parked message.
var readColumns = [...]uint32{pgtype.TextOID, pgtype.Int8OID, pgtype.TextOID, pgtype.TextOID, pgtype.Int8OID,
	pgtype.ByteaOID, pgtype.TextOID, pgtype.Int8OID, pgtype.Int4OID, pgtype.Int4OID, pgtype.BoolOID}

// rawReadable tells whether decodeRead can decode rows of these columns:
// they are readColumns, and all but the text ones in binary form (pgx
// asks for it for the types it knows).
func rawReadable(fds []pgconn.FieldDescription) bool {
	if len(fds) != len(readColumns) {
		return false
	}
	for i, fd := range fds {
		if fd.DataTypeOID != readColumns[i] || readColumns[i] != pgtype.TextOID && fd.Format != pgtype.BinaryFormatCode {
			return false
		}
	}
	return true
}

// decodeRead decodes a row of a read statement (see rawReadable), copying
// what it keeps: the row's buffer is reused.
func decodeRead(row [][]byte) (m outbox.Message, idx, part int32, parked bool, err error) {
	if len(row) != len(readColumns) || row[0] == nil || len(row[1]) != 8 || row[2] == nil || row[3] == nil || len(row[4]) != 8 ||
		row[5] == nil || row[6] == nil || len(row[7]) != 8 || len(row[8]) != 4 || len(row[9]) != 4 || len(row[10]) != 1 {
		return m, 0, 0, false, errors.New("a read's row is not the one expected")
	}
	be := binary.BigEndian
	m.ID, m.Topic, m.Key = string(row[0]), string(row[2]), string(row[3])
	m.Version, m.KeySeq = be.Uint64(row[1]), be.Uint64(row[4])
	m.Payload = append([]byte{}, row[5]...)
	m.CreatedAt = time.Unix(0, int64(be.Uint64(row[7])))
	return m, int32(be.Uint32(row[8])), int32(be.Uint32(row[9])), row[10][0] != 0, setHeaders(&m, row[6])
}

// Ack implements outbox.Store: the messages are delivered, in one
// statement. On a Store that a relay claims, the statement checks the
// fencing tokens of the relay's leases: the messages of a partition whose
// lease the relay lost stay as they are, and Ack fails with ErrLeaseLost.
// The messages the relay read last and acks in a run move their
// partition's cursor (cursor.go); the others are marked one by one.
func (s *Store) Ack(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	now := s.opts.now().UnixNano()
	f := &s.fleet
	f.mu.Lock()
	on, me := f.on, f.me
	var pl ackPlan
	planned, prefetch := false, false
	var parts []int32
	var tokens []int64
	var next struct {
		parts  []int32
		tokens []int64
		vs     []int64
		is     []int32
		ks     []int32
		limit  int
	}
	if on {
		if pl, planned = f.planAck(ids); !planned {
			parts, tokens = f.heldArgs()
		}
		// The ack settles all that was read, and the read was full: the
		// relay reads again at once; the read goes with the ack.
		if prefetch = planned && f.settledAll(); prefetch {
			next.limit = f.limit
			next.parts, next.tokens, next.vs, next.is, next.ks = f.nextRead(pl, next.limit)
			prefetch = len(next.parts) > 0
		}
	}
	f.mu.Unlock()
	if !on {
		b := unsyncedBatch()
		b.Queue(`UPDATE `+s.schema+`.theus_outbox SET state = 'delivered', delivered_at = $2
			WHERE id = ANY($1) AND state = 'pending'`, ids, now)
		if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
			return s.errorf("ack", err)
		}
		return nil
	}
	gen := s.changes() // before the read that may go with the ack
	var fenced []string
	var r readResult // the next read, if prefetch
	if planned {
		// The leases of the partitions acked, locked against a
		// take-over; the cursors moved and the rows marked only in
		// those still held.
		var ok []int32
		// The lease rows are locked for update in partition order (the
		// cursors' rows are updated): no deadlock with the lease loop.
		q := `WITH ok AS (SELECT l.part FROM ` + s.schema + `.theus_leases l JOIN unnest($1::int[], $2::bigint[]) AS h(p, t)
				ON l.part = h.p AND l.token = h.t WHERE l.holder = $3 ORDER BY l.part FOR NO KEY UPDATE OF l),
			c AS (UPDATE ` + s.schema + `.theus_leases l SET acked_version = c.v, acked_idx = c.i, acked_at = $4
				FROM unnest($5::int[], $6::bigint[], $7::int[]) AS c(p, v, i)
				WHERE l.part = c.p AND l.part IN (SELECT part FROM ok) AND (l.acked_version, l.acked_idx) < (c.v, c.i))`
		args := []any{pl.parts, pl.tokens, me, now, pl.movP, pl.movV, pl.movI}
		// Only when some are marked one by one: a generic plan of
		// id = ANY($8) for none may scan the table.
		if len(pl.rows) > 0 {
			q += `,
			d AS (UPDATE ` + s.schema + `.theus_outbox SET state = 'delivered', delivered_at = $4
				WHERE id = ANY($8::text[]) AND state = 'pending' AND part IN (SELECT part FROM ok))`
			args = append(args, pl.rows)
		}
		q += `
			SELECT coalesce(array_agg(part), '{}') FROM ok`
		// One round trip, one implicit transaction: if the read fails,
		// so does the ack.
		b := unsyncedBatch()
		b.Queue(q, args...)
		if prefetch {
			b.Queue(s.readQuery(), next.parts, next.tokens, me, next.vs, next.is, next.ks)
		}
		br := s.pool.SendBatch(ctx, b)
		_, err := br.Exec()
		if err == nil {
			err = br.QueryRow().Scan(&ok)
		}
		if err == nil && prefetch {
			var rows pgx.Rows
			if rows, err = br.Query(); err == nil {
				r, err = scanRead(rows)
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return s.errorf("ack", err)
		}
		for _, p := range pl.parts {
			if !slices.Contains(ok, p) {
				fenced = append(fenced, pl.byPart[p]...)
			}
		}
	} else {
		b := unsyncedBatch()
		b.Queue(`WITH `+s.leaseCheck("$3", "$4", "$5")+`,
			done AS (UPDATE `+s.schema+`.theus_outbox SET state = 'delivered', delivered_at = $2
				WHERE id = ANY($1) AND state = 'pending' AND part IN (SELECT part FROM ok) RETURNING id)
			SELECT coalesce((SELECT array_agg(id) FROM `+s.schema+`.theus_outbox
				WHERE id = ANY($1) AND part NOT IN (SELECT part FROM ok)), '{}')`,
			ids, now, parts, tokens, me)
		br := s.pool.SendBatch(ctx, b)
		_, err := br.Exec()
		if err == nil {
			err = br.QueryRow().Scan(&fenced)
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return s.errorf("ack", err)
		}
	}
	acked := ids
	if len(fenced) > 0 {
		acked = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return slices.Contains(fenced, id) })
	}
	s.settled(acked, fenced)
	if planned {
		f.mu.Lock()
		f.moved(pl) // of the partitions still held: not the fenced ones
		f.mu.Unlock()
	}
	switch {
	case len(fenced) > 0 || !planned:
	case prefetch && len(r.msgs) > 0:
		r.sortCut(next.limit)
		s.read(&r, next.parts, next.tokens, next.limit, gen)
		f.mu.Lock()
		if f.on && len(r.msgs) > 0 {
			f.ahead = &r
		}
		f.mu.Unlock()
	default:
		f.mu.Lock()
		if f.on && f.allAcked() {
			f.quiet = f.drainedGen
			if prefetch {
				// The read that went with the ack found nothing:
				// until a notification after it, neither would the
				// next.
				f.quiet = gen
			}
		}
		f.mu.Unlock()
	}
	if len(fenced) > 0 {
		return fmt.Errorf("postgres: ack: %d of %d messages refused: %w", len(fenced), len(ids), ErrLeaseLost)
	}
	return nil
}

// Drained implements outbox.Drainer: after an Ack that settled all that
// the relay's last read returned, when that read took all there was (no
// partition gave its whole share), it returns the notification channel
// taken before the read (or, if the ack carried the next read and it
// found nothing, before the ack): until it closes, at a commit of any
// instance, a lease taken or a Replay, a read would find nothing. Else,
// and after the next Undelivered, nil.
func (s *Store) Drained() <-chan struct{} {
	s.fleet.mu.Lock()
	defer s.fleet.mu.Unlock()
	return s.fleet.quiet
}

// unsyncedBatch returns a batch, one implicit transaction, whose commit
// does not wait for its WAL to reach the disk (synchronous_commit off for
// that transaction only): for acks. An ack is visible to every other
// session at once, and PostgreSQL writes the WAL in order, so the next
// synchronous commit of anyone (a commit group, a lease taken over or
// given back, a failure recorded), or the WAL writer within a few
// hundred milliseconds, syncs it along. A crash of the server before
// then loses it, and its messages are delivered again: at least once,
// as with SQLite's acks, which are not synced on their own either. The
// fsync it saves was about as long as the rest of a relay's round.
func unsyncedBatch() *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	return b
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
	const update = `UPDATE {s}.theus_outbox o
		SET attempts = attempts + 1, last_error = $1,
			state = CASE WHEN $2 OR ($3 > 0 AND attempts + 1 >= $3) THEN 'parked' ELSE state END
		WHERE id = $4 AND state = 'pending' AND (version, idx) > (SELECT acked_version, acked_idx FROM {s}.theus_leases WHERE part = o.part)`
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
//
// The messages acked through their partition's cursor carry no time of
// their own: each Prune marks where the cursors are (theus_ack_marks),
// and deletes what was before a mark older than the retention. So they
// go between the retention and the retention plus the time between two
// Prunes after their delivery.
func (s *Store) Prune(ctx context.Context) (int, error) {
	total := 0
	if s.opts.retention >= 0 {
		now := s.opts.now()
		cutoff := now.Add(-s.opts.retention).UnixNano()
		n, err := s.deleteBatches(ctx, `DELETE FROM `+s.schema+`.theus_outbox WHERE id IN (
			SELECT id FROM `+s.schema+`.theus_outbox WHERE state = 'delivered' AND delivered_at < $1 LIMIT $2)`, cutoff)
		total += n
		if err != nil {
			return total, s.errorf("prune", err)
		}
		if _, err := s.pool.Exec(ctx, `INSERT INTO `+s.schema+`.theus_ack_marks (part, version, idx, at)
			SELECT part, acked_version, acked_idx, $1 FROM `+s.schema+`.theus_leases l
			WHERE acked_version > 0 AND NOT EXISTS (SELECT 1 FROM `+s.schema+`.theus_ack_marks k
				WHERE k.part = l.part AND (k.version, k.idx) >= (l.acked_version, l.acked_idx))
			ON CONFLICT DO NOTHING`, now.UnixNano()); err != nil {
			return total, s.errorf("prune", err)
		}
		n, err = s.deleteBatches(ctx, `DELETE FROM `+s.schema+`.theus_outbox WHERE id IN (
			SELECT m.id FROM (SELECT DISTINCT ON (part) part, version, idx FROM `+s.schema+`.theus_ack_marks
				WHERE at <= $1 ORDER BY part, version DESC, idx DESC) k
			CROSS JOIN LATERAL (SELECT id FROM `+s.schema+`.theus_outbox m WHERE m.state = 'pending' AND m.part = k.part
				AND (m.version, m.idx) <= (k.version, k.idx) LIMIT $2) m
			LIMIT $2)`, cutoff)
		total += n
		if err != nil {
			return total, s.errorf("prune", err)
		}
		if _, err := s.pool.Exec(ctx, `DELETE FROM `+s.schema+`.theus_ack_marks k WHERE at <= $1 AND EXISTS (
			SELECT 1 FROM `+s.schema+`.theus_ack_marks n WHERE n.part = k.part AND n.at <= $1 AND (n.version, n.idx) > (k.version, k.idx))`,
			cutoff); err != nil {
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
	err := s.pool.QueryRow(ctx, `WITH w AS (SELECT x.n, x.oldest FROM `+s.schema+`.theus_leases l CROSS JOIN LATERAL (
			SELECT count(*) AS n, min(created_at) AS oldest FROM `+s.schema+`.theus_outbox m
			WHERE m.state = 'pending' AND m.part = l.part AND (m.version, m.idx) > (l.acked_version, l.acked_idx)) x)
		SELECT (SELECT coalesce(sum(n), 0)::bigint FROM w), (SELECT min(oldest) FROM w),
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
