package postgres

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/runtime/outbox"
)

// The relay fleet. The key space is split into partitions: a message's
// partition is a hash of its (topic, key) modulo the store's partition
// count (partExpr), so all the messages of a key are in one partition. A
// relay (Relay.Run claims a Store, ClaimRelay) leases partitions in
// theus_leases and reads and writes only the messages of those it holds.
// A lease has a holder, an expiry (the database's clock) and a fencing
// token that grows at every take-over. Every ack and every recorded
// failure (which may park) locks the leases it relies on (FOR SHARE) and
// checks their tokens in the same statement, so it either happens while
// the relay holds the lease, before any take-over, or changes nothing.
//
// Each relay beats in theus_relays; every third of the lease it renews its
// leases, counts the live relays, and moves towards its fair share
// (ceil(partitions / relays)): it takes free or expired partitions when it
// has fewer, and gives back the extra ones when it has more, each once no
// message of it is in flight (none read by Undelivered and not yet acked
// or failed), so a voluntary hand-over sends nothing twice.
//
// A relay also holds a session-level advisory lock (its key in
// theus_relays.lock_key) on a connection of its own for as long as it
// runs. When a relay's process dies, PostgreSQL ends its sessions and the
// lock is gone at once: the others count it out and take its leases at
// their next tick, without waiting for the leases to expire. A relay that
// is paused, or cut off from the database with its sessions still open,
// keeps its lock, and its leases until they expire. A relay whose lock
// session alone is lost (the others take its leases; its writes are
// refused by the fencing tokens) takes a lock again at its next tick.

// maxPartitions bounds WithPartitions.
const maxPartitions = 4096

// partExpr is the partition of the message with topic t and key k, among
// n partitions, in SQL; Enqueue and commits compute it alike.
func partExpr(t, k, n string) string {
	return `abs(hashtextextended(` + t + ` || chr(31) || ` + k + `, 0) % ` + n + `)`
}

// ErrLeaseLost is returned (wrapped) by Ack and Failed when a relay wrote
// for a partition whose lease it no longer holds (it expired, and another
// relay took it over): nothing was written for those messages, which the
// new holder delivers. It is outbox.ErrFenced, on which the relay ends its
// round.
var ErrLeaseLost = outbox.ErrFenced

// fleet is a Store's side of the relay fleet, while a relay claims it.
type fleet struct {
	mu        sync.Mutex
	on        bool
	me        string
	held      map[int32]int64 // partition -> fencing token
	cursor    map[int32]pos   // partition held -> its ack cursor
	releasing map[int32]bool  // held, to give back once idle
	inflight  map[int32]int   // messages read and neither acked nor failed
	idPart    map[string]int32
	// window maps each partition of the last Undelivered to what it read
	// of it (see ackPlan).
	window map[int32]*window
	full   bool            // a partition of the last read gave all its share
	limit  int             // of the last read
	share  map[int32]int32 // the shares of the last read (shares)
	got    map[int32]int   // what it got of each partition
	// ahead is the next read, sent with the ack that settled the whole
	// previous one (Ack): Undelivered returns it.
	ahead *readResult
	// drainedGen is the notification channel taken before the last read
	// if that read took all there was when it ran (no partition gave its
	// whole share, nothing was cut); else nil.
	drainedGen <-chan struct{}
	// quiet is such a channel once an ack settled all that the read
	// returned: until it closes (a commit, a lease taken, a Replay), a
	// read would find nothing (Drained).
	quiet <-chan struct{}
	stop  context.CancelFunc
	done  chan struct{}
	// sess holds the relay's advisory lock key (0: none) for its
	// lifetime; only the lease loop (and the claim before it, and the
	// release after it) use it.
	sess    *pgx.Conn
	key     int64
	sessPID atomic.Uint32 // tests: the backend of sess

	paused    atomic.Bool // tests: the lease loop does nothing
	afterRead func()      // tests: called between a read's statement and its record
	handovers atomic.Uint64
	fenced    atomic.Uint64
}

// FleetStats counts a Store's relay work since it was opened.
type FleetStats = outbox.FleetStats

// FleetStats returns the relay counters of this Store.
func (s *Store) FleetStats() FleetStats {
	s.fleet.mu.Lock()
	n := len(s.fleet.held)
	s.fleet.mu.Unlock()
	return FleetStats{Leases: n, Handovers: s.fleet.handovers.Load(), Fenced: s.fleet.fenced.Load()}
}

var _ outbox.FleetReader = (*Store)(nil)

// PartitionStats implements outbox.FleetReader: the waiting messages of
// every partition, with the age of the oldest.
func (s *Store) PartitionStats(ctx context.Context) ([]outbox.PartitionStats, error) {
	rows, err := s.pool.Query(ctx, `SELECT l.part, x.n, x.oldest
		FROM `+s.schema+`.theus_leases l CROSS JOIN LATERAL (
			SELECT count(*) AS n, min(created_at) AS oldest FROM `+s.schema+`.theus_outbox o
			WHERE o.state = 'pending' AND o.part = l.part AND (o.version, o.idx) > (l.acked_version, l.acked_idx)) x
		ORDER BY l.part`)
	if err != nil {
		return nil, s.errorf("partition stats", err)
	}
	defer rows.Close()
	var out []outbox.PartitionStats
	for rows.Next() {
		var p outbox.PartitionStats
		var part int32
		var n int64
		var oldest *int64
		if err := rows.Scan(&part, &n, &oldest); err != nil {
			return nil, s.errorf("partition stats", err)
		}
		p.Partition, p.Pending = int(part), int(n)
		if oldest != nil {
			p.OldestPending = time.Unix(0, *oldest)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, s.errorf("partition stats", err)
	}
	return out, nil
}

// Partitions returns the number of partitions of the store's key space.
func (s *Store) Partitions() int { return s.parts }

// initPartitions reads the partition count from theus_meta, or stores it
// for a new store, creates the lease rows, and sets the partition of the
// messages of a store created with layout 1. tx holds init's lock.
func (s *Store) initPartitions(ctx context.Context, tx pgx.Tx) error {
	var v string
	err := tx.QueryRow(ctx, `SELECT value FROM `+s.schema+`.theus_meta WHERE name = 'partitions'`).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		s.parts = s.opts.parts
		if s.parts == 0 {
			s.parts = DefaultPartitions
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+s.schema+`.theus_meta (name, value) VALUES ('partitions', $1)`, strconv.Itoa(s.parts)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+s.schema+`.theus_leases (part) SELECT generate_series(0, $1::int - 1) ON CONFLICT DO NOTHING`, s.parts); err != nil {
			return err
		}
	case err != nil:
		return err
	default:
		if s.parts, err = strconv.Atoi(v); err != nil || s.parts < 1 {
			return fmt.Errorf("the store's partition count is %q", v)
		}
		if s.opts.parts != 0 && s.opts.parts != s.parts {
			return fmt.Errorf("the store has %d partitions, fixed when it was created; WithPartitions(%d) cannot change it", s.parts, s.opts.parts)
		}
	}
	_, err = tx.Exec(ctx, `UPDATE `+s.schema+`.theus_outbox SET part = `+partExpr("topic", "key", "$1::int")+
		` WHERE part < 0 AND state <> 'delivered'`, s.parts)
	return err
}

// ClaimRelay implements outbox.RelayClaimer: one relay per Store value
// (a second one gets outbox.ErrRelayRunning); relays on other Stores, in
// this process or others, share the partitions with it. The claim takes
// its fair share of partitions before it returns, as far as free ones
// allow, and keeps it until release, which gives the leases back at once.
func (s *Store) ClaimRelay(ctx context.Context) (release func(), err error) {
	s.relay.Lock()
	defer s.relay.Unlock()
	if s.held {
		return nil, fmt.Errorf("postgres: schema %s: this Store already runs a relay (open a Store per relay): %w", s.opts.schema, outbox.ErrRelayRunning)
	}
	select {
	case <-s.closed:
		return nil, errors.New("postgres: claim the relay: the store is closed")
	default:
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	s.dropSession() // of a relay claimed before on this Store
	host, _ := os.Hostname()
	f := &s.fleet
	f.mu.Lock()
	f.on, f.me = true, fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	f.held, f.releasing, f.inflight, f.idPart = map[int32]int64{}, map[int32]bool{}, map[int32]int{}, map[string]int32{}
	f.cursor, f.window = map[int32]pos{}, map[int32]*window{}
	f.share, f.got = map[int32]int32{}, map[int32]int{}
	f.mu.Unlock()
	s.held = true
	if err := s.tick(ctx); err != nil && ctx.Err() == nil {
		s.opts.logger.Warn("postgres: relay leases; retrying", "err", redact(err, s.secret...))
	}
	lctx, stop := context.WithCancel(context.Background())
	f.stop, f.done = stop, make(chan struct{})
	go s.leaseLoop(lctx, f.done)
	var once sync.Once
	return func() { once.Do(s.unclaim) }, nil
}

// unclaim stops the lease loop and gives every lease back.
func (s *Store) unclaim() {
	f := &s.fleet
	f.stop()
	<-f.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.dropSession()
	f.mu.Lock()
	me := f.me
	f.on, f.held, f.releasing, f.inflight, f.idPart = false, nil, nil, nil, nil
	f.cursor, f.window, f.ahead, f.drainedGen, f.quiet = nil, nil, nil, nil, nil
	f.mu.Unlock()
	if _, err := s.pool.Exec(ctx, `UPDATE `+s.schema+`.theus_leases SET expires = '-infinity' WHERE holder = $1`, me); err != nil {
		s.opts.logger.Warn("postgres: give the relay's leases back (they expire)", "err", redact(err, s.secret...))
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM `+s.schema+`.theus_relays WHERE holder = $1`, me); err != nil {
		s.opts.logger.Warn("postgres: leave the relay fleet", "err", redact(err, s.secret...))
	}
	_, _ = s.pool.Exec(ctx, `SELECT pg_notify($1, 'relays')`, s.channel)
	s.relay.Lock()
	s.held = false
	s.relay.Unlock()
}

// leaseLoop runs tick every third of the lease until ctx ends.
func (s *Store) leaseLoop(ctx context.Context, done chan struct{}) {
	defer close(done)
	s.every(ctx, s.opts.lease/3, "relay leases; retrying", s.tick)
}

// every runs f every d until ctx ends or the Store closes, logging its
// errors as what.
func (s *Store) every(ctx context.Context, d time.Duration, what string, f func(context.Context) error) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.closed:
			return
		case <-t.C:
		}
		if err := f(ctx); err != nil && ctx.Err() == nil {
			s.opts.logger.Warn("postgres: "+what, "err", redact(err, s.secret...))
		}
	}
}

// heldArgs returns the partitions held and their tokens, as arrays.
func (f *fleet) heldArgs() (parts []int32, tokens []int64) {
	for p, t := range f.held {
		parts, tokens = append(parts, p), append(tokens, t)
	}
	return parts, tokens
}

// session makes sure the relay holds its advisory lock on a connection
// of its own, and returns its key, or nil if it could not take one (the
// relay is then gone for the others only when its beat expires).
func (s *Store) session(parent context.Context) *int64 {
	f := &s.fleet
	// Within a third of the lease: a server that does not answer must
	// not hold up the renewals.
	ctx, cancel := context.WithTimeout(parent, s.opts.lease/3)
	defer cancel()
	warn := func(err error) {
		if parent.Err() == nil { // a relay stopping is not a fault
			s.opts.logger.Warn("postgres: the relay's lock session; retrying", "err", redact(err, s.secret...))
		}
	}
	if f.sess != nil {
		if err := f.sess.Ping(ctx); err == nil {
			return &f.key
		}
		s.dropSession()
	}
	c, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		warn(err)
		return nil
	}
	for range 3 { // a key another session holds (1 in 2^63) is replaced
		var b [8]byte
		_, _ = rand.Read(b[:])
		key := int64(binary.BigEndian.Uint64(b[:]) >> 1)
		var ok bool
		if err = c.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil || !ok {
			continue
		}
		f.sess, f.key = c, key
		f.sessPID.Store(c.PgConn().PID())
		return &f.key
	}
	if err != nil {
		warn(err)
	}
	_ = c.Close(ctx)
	return nil
}

// dropSession closes the relay's lock session, which releases its lock.
func (s *Store) dropSession() {
	f := &s.fleet
	if f.sess == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = f.sess.Close(ctx)
	f.sess, f.key = nil, 0
	f.sessPID.Store(0)
}

// deadRelay is an SQL condition on the theus_relays row r: the relay
// took an advisory lock and no session holds it any more.
const deadRelay = `(r.lock_key IS NOT NULL AND r.lock_key NOT IN (
	SELECT (k.classid::bigint << 32) | k.objid::bigint FROM pg_locks k
	WHERE k.locktype = 'advisory' AND k.objsubid = 1 AND k.granted
		AND k.database = (SELECT oid FROM pg_database WHERE datname = current_database())))`

// tick beats, renews the leases held, and moves towards the fair share.
func (s *Store) tick(ctx context.Context) error {
	f := &s.fleet
	if f.paused.Load() {
		return nil
	}
	secs := s.opts.lease.Seconds()
	key := s.session(ctx)
	var relays int
	// A relay whose lock is gone is not counted; its row stays until its
	// beat expires, so that its leases are found free (below).
	err := s.pool.QueryRow(ctx, `WITH beat AS (
			INSERT INTO `+s.schema+`.theus_relays (holder, expires, lock_key) VALUES ($1, clock_timestamp() + make_interval(secs => $2), $3)
			ON CONFLICT (holder) DO UPDATE SET expires = excluded.expires, lock_key = excluded.lock_key),
		gone AS (DELETE FROM `+s.schema+`.theus_relays WHERE expires < clock_timestamp() AND holder <> $1)
		SELECT count(*) FROM `+s.schema+`.theus_relays r WHERE expires >= clock_timestamp() AND holder <> $1 AND NOT `+deadRelay,
		f.me, secs, key).Scan(&relays)
	if err != nil {
		return err
	}
	relays++ // this one
	f.mu.Lock()
	parts, tokens := f.heldArgs()
	f.mu.Unlock()
	if len(parts) > 0 {
		// Rows are locked in partition order, as acks lock them: no
		// deadlock between them.
		rows, err := s.pool.Query(ctx, `WITH k AS (SELECT l.part FROM `+s.schema+`.theus_leases l
				JOIN unnest($1::int[], $2::bigint[]) AS h(p, t) ON l.part = h.p AND l.token = h.t
				WHERE l.holder = $3 ORDER BY l.part FOR NO KEY UPDATE OF l)
			UPDATE `+s.schema+`.theus_leases l SET expires = clock_timestamp() + make_interval(secs => $4)
			FROM k WHERE l.part = k.part RETURNING l.part`, parts, tokens, f.me, secs)
		if err != nil {
			return err
		}
		kept, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return err
		}
		f.mu.Lock()
		for _, p := range parts {
			if !slices.Contains(kept, p) {
				s.lose(p)
			}
		}
		f.mu.Unlock()
	}
	fair := (s.parts + relays - 1) / relays

	// Give back the extra partitions, each once it is idle.
	f.mu.Lock()
	if extra := len(f.held) - len(f.releasing) - fair; extra > 0 {
		ps := make([]int32, 0, len(f.held))
		for p := range f.held {
			if !f.releasing[p] {
				ps = append(ps, p)
			}
		}
		slices.Sort(ps)
		for _, p := range ps[len(ps)-extra:] {
			f.releasing[p] = true
		}
	}
	var give []int32
	var giveTok []int64
	for p := range f.releasing {
		if f.inflight[p] == 0 {
			give, giveTok = append(give, p), append(giveTok, f.held[p])
			delete(f.held, p)
			delete(f.releasing, p)
		}
	}
	want := fair - len(f.held)
	f.mu.Unlock()
	if len(give) > 0 {
		if _, err := s.pool.Exec(ctx, `WITH k AS (SELECT l.part FROM `+s.schema+`.theus_leases l
				JOIN unnest($1::int[], $2::bigint[]) AS h(p, t) ON l.part = h.p AND l.token = h.t
				WHERE l.holder = $3 ORDER BY l.part FOR NO KEY UPDATE OF l)
			UPDATE `+s.schema+`.theus_leases l SET expires = '-infinity' FROM k WHERE l.part = k.part`, give, giveTok, f.me); err != nil {
			return err
		}
		_, _ = s.pool.Exec(ctx, `SELECT pg_notify($1, 'relays')`, s.channel)
	}
	if want <= 0 {
		// A lease renewed after it had run out (a pause that nobody
		// took advantage of) holds messages the relay skipped while it
		// was out: a wake-up per tick reads them.
		s.wake()
		return nil
	}
	rows, err := s.pool.Query(ctx, `UPDATE `+s.schema+`.theus_leases l
		SET holder = $1, token = l.token + 1, expires = clock_timestamp() + make_interval(secs => $3)
		FROM (SELECT part, holder FROM `+s.schema+`.theus_leases WHERE expires < clock_timestamp()
				OR holder IN (SELECT r.holder FROM `+s.schema+`.theus_relays r WHERE r.holder <> $1 AND `+deadRelay+`)
			ORDER BY random() LIMIT $2 FOR UPDATE SKIP LOCKED) AS free
		WHERE l.part = free.part
		RETURNING l.part, l.token, free.holder, l.acked_version, l.acked_idx`, f.me, want, secs)
	if err != nil {
		return err
	}
	var p int32
	var tok int64
	var old string
	var cur pos
	_, err = pgx.ForEachRow(rows, []any{&p, &tok, &old, &cur.v, &cur.i}, func() error {
		f.mu.Lock()
		if f.on {
			f.held[p] = tok
			f.cursor[p] = cur
		}
		f.mu.Unlock()
		if old != "" && old != f.me {
			f.handovers.Add(1)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.wake()
	return nil
}

// lose forgets the partition p, whose lease is gone. f.mu is held.
func (s *Store) lose(p int32) {
	f := &s.fleet
	delete(f.held, p)
	delete(f.releasing, p)
	delete(f.inflight, p)
	delete(f.cursor, p)
	delete(f.window, p)
}

// leased reports whether a relay claims this Store, and then its holder
// name and the partitions it reads from (held and not being given back)
// with their tokens, ack cursors and shares of limit, by partition.
func (s *Store) leased(limit int) (on bool, me string, parts []int32, tokens []int64, curs []pos, ks []int32) {
	f := &s.fleet
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on {
		return false, "", nil, nil, nil, nil
	}
	for p := range f.held {
		if !f.releasing[p] {
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	for _, p := range parts {
		tokens, curs = append(tokens, f.held[p]), append(curs, f.cursor[p])
	}
	return true, f.me, parts, tokens, curs, f.shares(parts, limit)
}

// leaseCheck is the CTE "ok" of the partitions whose lease the relay
// holds with the tokens $a and $b (arrays) as holder $c, locked against a
// take-over until the statement's transaction ends.
func (s *Store) leaseCheck(a, b, c string) string {
	return `ok AS (SELECT l.part FROM ` + s.schema + `.theus_leases l JOIN unnest(` + a + `::int[], ` + b + `::bigint[]) AS h(p, t)
		ON l.part = h.p AND l.token = h.t WHERE l.holder = ` + c + ` ORDER BY l.part FOR SHARE OF l)`
}

// read records the messages r that a read of the relay returned as in
// flight, and what it read of each partition (its window); the read was
// of the partitions parts, held with tokens. It first drops from r the
// messages of a partition the relay gave back or lost while the read was
// on its way: the read's statement checked the lease when it ran, but
// the lease loop may have given the partition back since (it waits only
// for the messages already recorded), and its new holder reads them too.
func (s *Store) read(r *readResult, parts []int32, tokens []int64, limit int, gen <-chan struct{}) {
	f := &s.fleet
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on {
		return
	}
	keep := 0
	for i, p := range r.parts {
		if t, ok := f.held[p]; ok && t == tokens[slices.Index(parts, p)] {
			r.msgs[keep], r.ids[keep], r.parts[keep], r.at[keep] = r.msgs[i], r.ids[i], p, r.at[i]
			keep++
		}
	}
	r.msgs, r.ids, r.parts, r.at = r.msgs[:keep], r.ids[:keep], r.parts[:keep], r.at[:keep]
	clear(f.inflight)
	clear(f.idPart)
	clear(f.window)
	f.limit = limit
	clear(f.got)
	for _, p := range r.parts {
		f.got[p]++
	}
	f.full = false
	for p, n := range f.got {
		if n >= int(f.share[p]) {
			f.full = true
		}
	}
	f.drainedGen = nil
	if !f.full && !r.cut {
		f.drainedGen = gen
	}
	for i, id := range r.ids {
		p := r.parts[i]
		f.inflight[p]++
		f.idPart[id] = p
		w := f.window[p]
		if w == nil {
			w = &window{parked: r.parked[p], index: map[string]int{}}
			f.window[p] = w
		}
		w.index[id] = len(w.ids)
		w.ids, w.at, w.acked = append(w.ids, id), append(w.at, r.at[i]), append(w.acked, false)
	}
}

// settled marks the messages ids as no longer in flight, and those of
// fenced as refused: their partitions are lost.
func (s *Store) settled(ids []string, fenced []string) {
	f := &s.fleet
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on {
		return
	}
	for _, id := range fenced {
		if p, ok := f.idPart[id]; ok {
			s.lose(p)
		}
		delete(f.idPart, id)
	}
	f.fenced.Add(uint64(len(fenced)))
	for _, id := range ids {
		if p, ok := f.idPart[id]; ok {
			if f.inflight[p] > 0 {
				f.inflight[p]--
			}
			delete(f.idPart, id)
		}
	}
}
