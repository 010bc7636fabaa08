package postgres

// Redact is redact, for tests.
var Redact = redact

// PauseLeases stops (or restarts) the renewal of the leases of the
// Store's relay, as a process paused by the operating system would.
func (s *Store) PauseLeases(p bool) { s.fleet.paused.Store(p) }
