package postgres

import (
	"slices"

	"github.com/theus-go/theus/runtime/outbox"
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

// settledAll reports whether a partition of the last read gave all its
// share (so more may wait) and every message of the read is acked. f.mu
// is held.
func (f *fleet) settledAll() bool { return f.full && f.allAcked() }

// allAcked reports whether every message of the last read is acked. f.mu
// is held.
func (f *fleet) allAcked() bool {
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
func (f *fleet) nextRead(pl ackPlan, limit int) (parts []int32, tokens []int64, vs []int64, is []int32, ks []int32) {
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
	return parts, tokens, vs, is, f.shares(parts, limit)
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

// readQuery is the statement with which a relay reads the pending
// messages of the partitions $1 it holds with the tokens $2 as holder
// $3: of each, after its cursor ($4, $5), at most its share ($6) in
// order, by one range of theus_outbox_part_pending. Each row says
// whether its partition had a parked message; only in such a partition
// does a row look for a parked message of its key (a key's messages are
// all in one partition). A partition whose lease the relay no longer
// holds by the database's clock gives nothing. The partitions' rows come
// one partition after the other: sortCut puts them in commit order and
// keeps the first limit, which costs PostgreSQL a sort of the whole rows
// (payloads included) and took about a third of its time.
func (s *Store) readQuery() string {
	return `SELECT x.*, h.parked FROM (
		SELECT h.p, h.v, h.i, h.k, EXISTS (SELECT 1 FROM ` + s.schema + `.theus_outbox o WHERE o.state = 'parked' AND o.part = h.p) AS parked
		FROM unnest($1::int[], $2::bigint[], $4::bigint[], $5::int[], $6::int[]) AS h(p, t, v, i, k)
		JOIN ` + s.schema + `.theus_leases l ON l.part = h.p AND l.token = h.t
		WHERE l.holder = $3 AND l.expires > clock_timestamp()) h
	CROSS JOIN LATERAL (
		SELECT ` + messageColumns + `, m.idx, m.part FROM ` + s.schema + `.theus_outbox m
		WHERE m.state = 'pending' AND m.part = h.p AND (m.version, m.idx) > (h.v, h.i)
			AND (NOT h.parked OR NOT EXISTS (SELECT 1 FROM ` + s.schema + `.theus_outbox p WHERE p.state = 'parked' AND p.topic = m.topic AND p.key = m.key))
		ORDER BY m.version, m.idx LIMIT h.k) x`
}

// sortCut puts the messages of a relay's read in commit order and keeps
// the first limit: a prefix of what it read of each partition.
func (r *readResult) sortCut(limit int) {
	n := len(r.msgs)
	ix := make([]int, n)
	for i := range ix {
		ix[i] = i
	}
	slices.SortFunc(ix, func(a, b int) int {
		switch {
		case r.at[a].less(r.at[b]):
			return -1
		case r.at[b].less(r.at[a]):
			return 1
		}
		return 0
	})
	r.cut = n > limit
	n = min(n, limit)
	msgs, ids, parts, at := make([]outbox.Message, n), make([]string, n), make([]int32, n), make([]pos, n)
	for j, i := range ix[:n] {
		msgs[j], ids[j], parts[j], at[j] = r.msgs[i], r.ids[i], r.parts[i], r.at[i]
	}
	r.msgs, r.ids, r.parts, r.at = msgs, ids, parts, at
}

// shares splits limit between the partitions parts for the next read,
// from what the last one got: a partition that got less than its share
// is drained, and gets a little more than it got (one if it got none);
// the others split the rest evenly, or, if there are none, all split it.
// So a backlog spread over the partitions is read evenly, and one in a
// single partition gets nearly all of each read. The shares of the
// partitions that got nothing are not counted: they may add up to a
// little more than limit, and the read takes at most limit in all, a
// prefix of each partition's. It records the shares. f.mu is held.
func (f *fleet) shares(parts []int32, limit int) []int32 {
	ks := make([]int32, len(parts))
	used, hungry := 0, 0
	for i, p := range parts {
		k, seen := f.share[p]
		if n := f.got[p]; seen && n < int(k) {
			ks[i] = int32(n + n/2 + 1)
			if n > 0 {
				used += int(ks[i])
			}
		} else {
			hungry++
		}
	}
	rest := max(limit-used, 0)
	clear(f.share)
	for i, p := range parts {
		switch {
		case hungry == 0:
			ks[i] += int32(rest / len(parts))
		case ks[i] == 0:
			ks[i] = int32(max(rest/hungry, 1))
		}
		f.share[p] = ks[i]
	}
	return ks
}
