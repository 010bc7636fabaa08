package postgres

import "context"

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
