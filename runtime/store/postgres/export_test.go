package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/theus-go/theus/runtime/outbox"
)

// Redact is redact, for tests.
var Redact = redact

// PauseLeases stops (or restarts) the renewal of the leases of the
// Store's relay, as a process paused by the operating system would.
func (s *Store) PauseLeases(p bool) { s.fleet.paused.Store(p) }

// AfterRead sets a function that the relay's next reads call once their
// statement has run, before they record what they read.
func (s *Store) AfterRead(f func()) { s.fleet.afterRead = f }

// NoticeCommits returns how many commits Follow took from notifications'
// payloads rather than from the log.
func (s *Store) NoticeCommits() uint64 { return s.heard.used.Load() }

// RelaySession returns the backend of the relay's lock session, 0 if none.
func (s *Store) RelaySession() uint32 { return s.fleet.sessPID.Load() }

// Backends returns the backends of the Store's pooled connections.
func (s *Store) Backends() []uint32 {
	var out []uint32
	s.pids.Range(func(k, _ any) bool { out = append(out, k.(uint32)); return true })
	return out
}

// Trips returns how many groups committed in one round trip, and how many
// found the head moved by another instance and took the head row's lock.
func (s *Store) Trips() (one, moved uint64) { return s.trips.one.Load(), s.trips.moved.Load() }

// LockOnly makes every group take the head row's lock, as before groups
// could commit in one round trip (benchmarks).
func (s *Store) LockOnly(on bool) { s.lockOnly.Store(on) }

// TakeSession runs the relay's take of its lock session once with ctx,
// says whether it took one, and closes it.
func (s *Store) TakeSession(ctx context.Context) bool {
	ok := s.session(ctx) != nil
	s.dropSession()
	return ok
}

// ReadRow is a row of a read statement.
type ReadRow struct {
	outbox.Message
	Idx, Part int32
	Parked    bool
}

// ReadBothWays runs the read of a Store no relay claims (relay false), or
// a relay's read of every partition as holder me with token 1, from the
// start of each, and decodes each row as decodeRead does and through Scan.
// It reports whether the rows were readable raw, and both decodings.
func (s *Store) ReadBothWays(ctx context.Context, relay bool, limit int) (raw bool, decoded, scanned []ReadRow, err error) {
	var rows pgx.Rows
	if relay {
		var parts, ks []int32
		var tokens, vs []int64
		is := make([]int32, s.parts)
		for p := range int32(s.parts) {
			parts, tokens, vs, ks = append(parts, p), append(tokens, 1), append(vs, 0), append(ks, int32(limit))
		}
		rows, err = s.pool.Query(ctx, s.readQuery(), parts, tokens, "me", vs, is, ks)
	} else {
		rows, err = s.pool.Query(ctx, s.unclaimedQuery(), limit)
	}
	if err != nil {
		return false, nil, nil, err
	}
	defer rows.Close()
	raw = rawReadable(rows.FieldDescriptions())
	for rows.Next() {
		var d, sc ReadRow
		d.Message, d.Idx, d.Part, d.Parked, err = decodeRead(rows.RawValues())
		if err != nil {
			return raw, nil, nil, err
		}
		if sc.Message, err = scanMessage(rows, &sc.Idx, &sc.Part, &sc.Parked); err != nil {
			return raw, nil, nil, err
		}
		decoded, scanned = append(decoded, d), append(scanned, sc)
	}
	return raw, decoded, scanned, rows.Err()
}

// PartExpr is partExpr.
var PartExpr = partExpr

// Renumbered returns how many groups committed in one round trip were
// numbered after commits of other instances.
func (s *Store) Renumbered() uint64 { return s.trips.renumbered.Load() }

// NotAlone returns how many groups that took their instance for alone
// found the head moved.
func (s *Store) NotAlone() uint64 { return s.trips.notAlone.Load() }

// Listener returns the id of the Store's registration in theus_listeners.
func (s *Store) Listener() int64 { return s.listener }

// Renew runs the beat of the Store's listener once.
func (s *Store) Renew(ctx context.Context) error { return s.renew(ctx) }
