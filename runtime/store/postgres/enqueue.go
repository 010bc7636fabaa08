package postgres

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/runtime/outbox"
)

// EnqueueProcess is the process name of the log rows that Enqueue writes
// (History shows it).
const EnqueueProcess = "postgres.Enqueue"

// Enqueue adds msgs to the outbox of the store in the schema DefaultSchema,
// inside the caller's transaction tx: a pgx.Tx, or a *sql.Tx of the pgx
// database/sql driver (github.com/jackc/pgx/v5/stdlib). Use Store.Enqueue
// for a store in another schema. The store's tables must exist (Open
// creates them).
//
// Of each message, Topic, Key, Payload and Headers are taken; Enqueue
// assigns the rest, as a commit of the engine does: the messages form one
// new version of the store's history (with no state change), their IDs
// are those of that version, their KeySeqs follow the last ones of their
// (topic, key), and CreatedAt is now. It returns the messages as stored.
// Nothing is visible to relays, engines or readers unless tx commits;
// if it rolls back, the version and KeySeqs are not used.
//
// To number them, Enqueue locks the store's head row in tx, as every
// commit of an engine does, until tx ends: transactions that enqueue, and
// engine commits, wait for each other. So a key's messages are delivered
// in KeySeq order whichever transaction commits first — a transaction
// that would number after a pending one waits for its end — but a
// transaction that enqueues should commit soon after: until then no
// engine of the schema commits. It costs three statements.
func Enqueue(ctx context.Context, tx any, msgs ...outbox.Message) ([]outbox.Message, error) {
	return enqueue(ctx, tx, pgx.Identifier{DefaultSchema}.Sanitize(), DefaultSchema+"_commits", msgs)
}

// Enqueue is the package's Enqueue for the store's schema. tx may be a
// transaction of any connection to the store's database, not only of the
// Store's pool.
func (s *Store) Enqueue(ctx context.Context, tx any, msgs ...outbox.Message) ([]outbox.Message, error) {
	out, err := enqueue(ctx, tx, s.schema, s.channel, msgs)
	if err != nil {
		return nil, redact(err, s.secret...)
	}
	return out, nil
}

// txRunner is what enqueue needs of a transaction of either kind.
type txRunner interface {
	exec(ctx context.Context, q string, args ...any) error
	query(ctx context.Context, q string, args []any, row func(scan func(...any) error) error) error
}

type pgxTx struct{ tx pgx.Tx }

func (t pgxTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.Exec(ctx, q, args...)
	return err
}

func (t pgxTx) query(ctx context.Context, q string, args []any, row func(func(...any) error) error) error {
	rows, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return eachRow(rows.Next, rows.Scan, rows.Err, row)
}

type sqlTx struct{ tx *sql.Tx }

func (t sqlTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := t.tx.ExecContext(ctx, q, args...)
	return err
}

func (t sqlTx) query(ctx context.Context, q string, args []any, row func(func(...any) error) error) error {
	rows, err := t.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return eachRow(rows.Next, rows.Scan, rows.Err, row)
}

// eachRow calls row with the scan of every row of a result set, the same
// for pgx's and database/sql's.
func eachRow(next func() bool, scan func(...any) error, rowsErr func() error, row func(func(...any) error) error) error {
	for next() {
		if err := row(scan); err != nil {
			return err
		}
	}
	return rowsErr()
}

func enqueue(ctx context.Context, tx any, schema, channel string, msgs []outbox.Message) ([]outbox.Message, error) {
	var t txRunner
	switch tx := tx.(type) {
	case pgx.Tx:
		t = pgxTx{tx}
	case *sql.Tx:
		t = sqlTx{tx}
	default:
		return nil, fmt.Errorf("postgres: enqueue: tx is a %T; want a pgx.Tx or a *sql.Tx", tx)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	if len(msgs) > 1<<16 {
		return nil, fmt.Errorf("postgres: enqueue: %d messages; at most %d per call", len(msgs), 1<<16)
	}
	for i := range msgs {
		if msgs[i].Topic == "" {
			return nil, fmt.Errorf("postgres: enqueue: message %d has no topic", i)
		}
	}
	fail := func(err error) ([]outbox.Message, error) {
		return nil, fmt.Errorf("postgres: enqueue: %w", err)
	}

	// The head row, as every commit takes it first.
	var head int64
	var inc, parts string
	found := false
	err := t.query(ctx, `SELECT h.version, (SELECT value FROM `+schema+`.theus_meta WHERE name = 'incarnation'),
			(SELECT value FROM `+schema+`.theus_meta WHERE name = 'partitions')
		FROM `+schema+`.theus_head h WHERE h.id = 1 FOR UPDATE OF h`, nil, func(scan func(...any) error) error {
		found = true
		return scan(&head, &inc, &parts)
	})
	if err != nil {
		return fail(err)
	}
	if !found {
		return fail(errors.New("the store has no head row: open it with postgres.Open first"))
	}
	incarnation, err := strconv.ParseUint(inc, 10, 64)
	if err != nil {
		return fail(fmt.Errorf("the store's incarnation is %q", inc))
	}
	nparts, err := strconv.Atoi(parts)
	if err != nil || nparts < 1 {
		return fail(fmt.Errorf("the store's partition count is %q (open it with this version's postgres.Open first)", parts))
	}

	// KeySeqs: each (topic, key) moves on by its count of messages.
	count := map[outbox.TopicKey]int64{}
	var order []outbox.TopicKey
	for _, m := range msgs {
		tk := outbox.TopicKey{Topic: m.Topic, Key: m.Key}
		if count[tk] == 0 {
			order = append(order, tk)
		}
		count[tk]++
	}
	topics, keys, ns := make([]string, len(order)), make([]string, len(order)), make([]int64, len(order))
	for i, tk := range order {
		topics[i], keys[i], ns[i] = tk.Topic, tk.Key, count[tk]
	}
	last := map[outbox.TopicKey]uint64{}
	err = t.query(ctx, `INSERT INTO `+schema+`.theus_key_seqs (topic, key, seq)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
		ON CONFLICT (topic, key) DO UPDATE SET seq = theus_key_seqs.seq + excluded.seq
		RETURNING topic, key, seq`, []any{topics, keys, ns}, func(scan func(...any) error) error {
		var tk outbox.TopicKey
		var seq int64
		if err := scan(&tk.Topic, &tk.Key, &seq); err != nil {
			return err
		}
		last[tk] = uint64(seq)
		return nil
	})
	if err != nil {
		return fail(err)
	}

	version := uint64(head) + 1
	now := time.Now()
	out := make([]outbox.Message, len(msgs))
	next := map[outbox.TopicKey]uint64{}
	ids, mts, mks, hs := make([]string, len(msgs)), make([]string, len(msgs)), make([]string, len(msgs)), make([]string, len(msgs))
	seqs, idxs := make([]int64, len(msgs)), make([]int32, len(msgs))
	payloads := make([][]byte, len(msgs))
	for i, m := range msgs {
		tk := outbox.TopicKey{Topic: m.Topic, Key: m.Key}
		if _, ok := next[tk]; !ok {
			next[tk] = last[tk] - uint64(count[tk]) + 1
		}
		m.ID = outbox.MessageID(incarnation, version, i)
		m.KeySeq, next[tk] = next[tk], next[tk]+1
		m.Version, m.CreatedAt = version, now
		if m.Payload == nil {
			m.Payload = []byte{}
		}
		out[i] = m
		if len(m.Headers) > 0 {
			h, err := json.Marshal(m.Headers)
			if err != nil {
				return fail(err)
			}
			hs[i] = string(h)
		}
		ids[i], mts[i], mks[i], seqs[i], idxs[i], payloads[i] = m.ID, m.Topic, m.Key, int64(m.KeySeq), int32(i), m.Payload
	}
	ks := []byte{}
	for _, tk := range order {
		ks = appendStr(ks, tk.Topic)
		ks = appendStr(ks, tk.Key)
		ks = binary.AppendUvarint(ks, last[tk])
	}

	// The messages, the log row other engines learn the KeySeqs from, the
	// head, and the notification (sent at COMMIT): one statement.
	err = t.exec(ctx, `WITH m AS (
			INSERT INTO `+schema+`.theus_outbox (id, version, idx, topic, key, key_seq, payload, headers, created_at, part)
			SELECT i, $2, x, t, k, q, p, nullif(h, ''), $3, `+partExpr("t", "k", "$4::int")+`
			FROM unnest($1::text[], $5::integer[], $6::text[], $7::text[], $8::bigint[], $9::bytea[], $10::text[]) AS u(i, x, t, k, q, p, h)),
		l AS (INSERT INTO `+schema+`.theus_log (version, grp, process, at, writes, vals, key_seqs, ids)
			VALUES ($2, $11, $12, $3, '', '', $13, $14)),
		h AS (UPDATE `+schema+`.theus_head SET version = $2 WHERE id = 1)
		SELECT pg_notify($15, $16)`,
		ids, int64(version), now.UnixNano(), nparts, idxs, mts, mks, seqs, payloads, hs,
		newToken(), EnqueueProcess, ks, appendIDs([]byte{}, out), channel, strconv.FormatUint(version, 10))
	if err != nil {
		return fail(err)
	}
	return out, nil
}
