package postgres

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Acks as a cursor per partition. The relay that holds a partition reads
// its pending messages after the partition's cursor (theus_leases
// acked_version, acked_idx), in order; when the sink confirms a run of
// them from the first one read, the ack moves the cursor past the run,
// one row per partition, instead of updating each message. A message at
// or before its partition's cursor that is still 'pending' is delivered.
// The cursor never passes a message that is not delivered: it moves only
// over what the relay read and acked, without a gap, and not at all in a
// partition that had a parked message when it was read (the later
// messages of the parked key were left out of the read, so the acked
// ones do not follow each other). A message acked out of such a run (one
// of another key after a failed one, or in a partition with a parked
// key) is marked delivered row by row, as before. So a parked message is
// always after its partition's cursor, and Replay makes it pending again
// where the relay reads.

// pos is a message's position in the outbox: its version, then its index
// in the version.
type pos struct {
	v int64
	i int32
}

func (a pos) less(b pos) bool { return a.v < b.v || a.v == b.v && a.i < b.i }

// window is what an Undelivered read of one partition: all its pending
// messages after its cursor, in order, up to the last one read — but
// those of the keys held back when parked is set.
type window struct {
	ids    []string
	at     []pos
	parked bool
	index  map[string]int // of ids
	acked  []bool         // of ids
	next   int            // ids[:next] are acked
}

// ackPlan is how an Ack writes: the held partitions it relies on with
// their tokens, the cursors it moves, and the messages it marks one by
// one.
type ackPlan struct {
	parts  []int32
	tokens []int64
	movP   []int32
	movV   []int64
	movI   []int32
	rows   []string
	byPart map[int32][]string // the acked IDs of each partition
}

// planAck plans the Ack of ids, which it records as acked in the windows
// of the last read. It returns false if one of ids is not in a window
// of a partition still held (acked twice, or never read): then the Ack
// marks every message one by one. f.mu is held.
func (f *fleet) planAck(ids []string) (ackPlan, bool) {
	pl := ackPlan{byPart: map[int32][]string{}}
	for _, id := range ids {
		p, ok := f.idPart[id]
		if !ok || f.window[p] == nil {
			return pl, false
		}
		if _, held := f.held[p]; !held {
			return pl, false
		}
		pl.byPart[p] = append(pl.byPart[p], id)
	}
	for p := range pl.byPart {
		pl.parts = append(pl.parts, p)
	}
	slices.Sort(pl.parts)
	for _, p := range pl.parts {
		pl.tokens = append(pl.tokens, f.held[p])
		w := f.window[p]
		for _, id := range pl.byPart[p] {
			w.acked[w.index[id]] = true
		}
		start := w.next
		for w.next < len(w.ids) && w.acked[w.next] {
			w.next++
		}
		var to pos
		moved := !w.parked && w.next > start
		if moved {
			to = w.at[w.next-1]
			pl.movP, pl.movV, pl.movI = append(pl.movP, p), append(pl.movV, to.v), append(pl.movI, to.i)
		}
		for _, id := range pl.byPart[p] {
			if !moved || to.less(w.at[w.index[id]]) {
				pl.rows = append(pl.rows, id)
			}
		}
	}
	return pl, true
}

// settledAll reports whether the last read was full and every message of
// it is acked. f.mu is held.
func (f *fleet) settledAll() bool {
	if !f.full {
		return false
	}
	for _, w := range f.window {
		if w.next < len(w.ids) {
			return false
		}
	}
	return true
}

// nextRead returns the arguments of the read that follows the ack pl:
// the partitions held and not being given back, their tokens, and their
// cursors once pl has moved them. f.mu is held.
func (f *fleet) nextRead(pl ackPlan) (parts []int32, tokens []int64, vs []int64, is []int32) {
	for p := range f.held {
		if !f.releasing[p] {
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	for _, p := range parts {
		c := f.cursor[p]
		if i := slices.Index(pl.movP, p); i >= 0 && c.less(pos{pl.movV[i], pl.movI[i]}) {
			c = pos{pl.movV[i], pl.movI[i]}
		}
		tokens, vs, is = append(tokens, f.held[p]), append(vs, c.v), append(is, c.i)
	}
	return parts, tokens, vs, is
}

// moved records the cursors an Ack moved, of the partitions still held
// with the same token. f.mu is held.
func (f *fleet) moved(pl ackPlan) {
	for i, p := range pl.movP {
		j := slices.Index(pl.parts, p)
		if t, ok := f.held[p]; !ok || t != pl.tokens[j] {
			continue
		}
		if to := (pos{pl.movV[i], pl.movI[i]}); f.cursor[p].less(to) {
			f.cursor[p] = to
		}
	}
}

// readQueries caches the statement that reads n partitions (readQuery).
var readQueries sync.Map // schema + n -> string

// readQuery is the statement with which a relay reads the pending
// messages of the n partitions $2 it holds with the tokens $3 as holder
// $4, after their cursors ($5, $6): one index range of
// theus_outbox_part_pending per partition, merged in commit order, the
// first $1. Each row says whether its partition had a parked message.
// A partition whose lease the relay no longer holds by the database's
// clock gives nothing.
func (s *Store) readQuery(n int) string {
	key := s.schema + "/" + fmt.Sprint(n)
	if q, ok := readQueries.Load(key); ok {
		return q.(string)
	}
	var b strings.Builder
	b.WriteString(`WITH v AS MATERIALIZED (SELECT coalesce(array_agg(l.part), '{}') AS ps FROM ` + s.schema + `.theus_leases l
		JOIN unnest($2::int[], $3::bigint[]) AS h(p, t) ON l.part = h.p AND l.token = h.t
		WHERE l.holder = $4 AND l.expires > clock_timestamp()),
	k AS MATERIALIZED (SELECT coalesce(array_agg(DISTINCT part), '{}') AS ps FROM ` + s.schema + `.theus_outbox
		WHERE state = 'parked' AND part = ANY($2::int[]))
`)
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteString("UNION ALL ")
		}
		fmt.Fprintf(&b, `(SELECT %s, m.idx, m.part, m.part = ANY((SELECT ps FROM k)::int[]) AS parked FROM %s.theus_outbox m
	WHERE m.state = 'pending' AND m.part = ($2::int[])[%d] AND (m.version, m.idx) > (($5::bigint[])[%d], ($6::int[])[%d])
		AND m.part = ANY((SELECT ps FROM v)::int[])
		AND NOT EXISTS (SELECT 1 FROM %s.theus_outbox p WHERE p.state = 'parked' AND p.topic = m.topic AND p.key = m.key))
`, messageColumns, s.schema, i, i, i, s.schema)
	}
	b.WriteString(`ORDER BY version, idx LIMIT $1`)
	q := b.String()
	readQueries.Store(key, q)
	return q
}
