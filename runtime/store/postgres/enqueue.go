package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
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
// engine of the schema commits. It costs one statement, one round trip
// (two the first time on a connection, which prepares it).
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
	query(ctx context.Context, q string, args []any, row func(scan func(...any) error) error) error
}

type pgxTx struct{ tx pgx.Tx }

func (t pgxTx) query(ctx context.Context, q string, args []any, row func(func(...any) error) error) error {
	rows, err := t.tx.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return eachRow(rows.Next, rows.Scan, rows.Err, row)
}

type sqlTx struct{ tx *sql.Tx }

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

	// Each (topic, key) is a group: its KeySeqs move on by its count.
	group := map[outbox.TopicKey]int32{}
	var topics, keys []string
	var ns []int64
	var pre [][]byte
	gis, occ, idxs := make([]int32, len(msgs)), make([]int32, len(msgs)), make([]int32, len(msgs))
	payloads, hs := make([][]byte, len(msgs)), make([]string, len(msgs))
	for i, m := range msgs {
		tk := outbox.TopicKey{Topic: m.Topic, Key: m.Key}
		g, ok := group[tk]
		if !ok {
			g = int32(len(topics) + 1)
			group[tk] = g
			topics, keys, ns = append(topics, m.Topic), append(keys, m.Key), append(ns, 0)
			pre = append(pre, appendStr(appendStr(nil, m.Topic), m.Key))
		}
		ns[g-1]++
		gis[i], occ[i], idxs[i] = g, int32(ns[g-1]), int32(i)
		payloads[i] = m.Payload
		if payloads[i] == nil {
			payloads[i] = []byte{}
		}
		if len(m.Headers) > 0 {
			h, err := json.Marshal(m.Headers)
			if err != nil {
				return fail(err)
			}
			hs[i] = string(h)
		}
	}

	// One statement: the head moves on (locking its row, as every commit
	// does first, until tx ends), the KeySeqs of the keys, the messages,
	// the log row other engines learn the KeySeqs from (its columns
	// encoded as encode.go does) and the notification (sent at COMMIT).
	now := time.Now()
	var version, inc int64
	var seqs string
	found := false
	err := t.query(ctx, `WITH h AS (UPDATE `+schema+`.theus_head SET version = version + 1 WHERE id = 1 RETURNING version AS v),
		meta AS (SELECT (SELECT value FROM `+schema+`.theus_meta WHERE name = 'incarnation')::bigint AS inc,
			(SELECT value FROM `+schema+`.theus_meta WHERE name = 'partitions')::int AS np),
		ks AS (INSERT INTO `+schema+`.theus_key_seqs (topic, key, seq)
			SELECT u.t, u.k, u.n FROM h, unnest($1::text[], $2::text[], $3::bigint[]) AS u(t, k, n)
			ON CONFLICT (topic, key) DO UPDATE SET seq = theus_key_seqs.seq + excluded.seq
			RETURNING topic, key, seq),
		g AS (SELECT u.g, u.t, u.k, ks.seq - u.n AS base, u.pre || `+sqlUvarint("ks.seq")+` AS b
			FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[]) WITH ORDINALITY AS u(t, k, n, pre, g)
			JOIN ks ON ks.topic = u.t AND ks.key = u.k),
		m AS (SELECT CASE WHEN meta.inc = 0 THEN '' ELSE lpad(to_hex(meta.inc), 16, '0') || '-' END
				|| lpad(to_hex(h.v), 16, '0') || '-' || lpad(to_hex(x.x), 4, '0') AS id,
				x.x, g.t, g.k, g.base + x.o AS q, x.p, x.hd
			FROM h, meta, unnest($5::integer[], $6::integer[], $7::integer[], $8::bytea[], $9::text[]) AS x(x, gi, o, p, hd)
			JOIN g ON g.g = x.gi),
		o AS (INSERT INTO `+schema+`.theus_outbox (id, version, idx, topic, key, key_seq, payload, headers, created_at, part)
			SELECT m.id, h.v, m.x, m.t, m.k, m.q, m.p, nullif(m.hd, ''), $10, `+partExpr("m.t", "m.k", "meta.np")+`
			FROM m, h, meta),
		l AS (INSERT INTO `+schema+`.theus_log (version, grp, process, at, writes, vals, key_seqs, ids)
			SELECT h.v, $11, $12, $10, '', '', (SELECT string_agg(b, ''::bytea ORDER BY g) FROM g),
				(SELECT string_agg(set_byte('\x00'::bytea, 0, length(id)) || convert_to(id, 'UTF8'), ''::bytea ORDER BY x) FROM m)
			FROM h)
		SELECT h.v, meta.inc, (SELECT string_agg(q::text, ',' ORDER BY x) FROM m), pg_notify($13, h.v::text)::text FROM h, meta`,
		[]any{topics, keys, ns, pre, idxs, gis, occ, payloads, hs, now.UnixNano(), newToken(), EnqueueProcess, channel},
		func(scan func(...any) error) error {
			found = true
			var notified string
			return scan(&version, &inc, &seqs, &notified)
		})
	if err != nil {
		return fail(err)
	}
	if !found {
		return fail(errors.New("the store has no head row: open it with postgres.Open first"))
	}
	out := make([]outbox.Message, len(msgs))
	for i, m := range msgs {
		q, rest, _ := strings.Cut(seqs, ",")
		seq, err := strconv.ParseUint(q, 10, 64)
		if err != nil {
			return fail(fmt.Errorf("the KeySeqs read back are %q", seqs))
		}
		seqs = rest
		m.ID = outbox.MessageID(uint64(inc), uint64(version), i)
		m.KeySeq, m.Version, m.CreatedAt, m.Payload = seq, uint64(version), now, payloads[i]
		out[i] = m
	}
	return out, nil
}

// sqlUvarint is the SQL expression of the bytes of the uvarint of the
// bigint expression x (x >= 0), as encoding/binary writes it.
func sqlUvarint(x string) string {
	return `(SELECT string_agg(set_byte('\x00'::bytea, 0, (((` + x + ` >> (7 * i)) & 127) | CASE WHEN (` + x + ` >> (7 * i)) > 127 THEN 128 ELSE 0 END)::int), ''::bytea ORDER BY i)
		FROM generate_series(0, 9) AS i WHERE i = 0 OR (` + x + ` >> (7 * i)) > 0)`
}
