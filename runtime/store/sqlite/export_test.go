package sqlite

import "context"

// WaitCheckpoint waits until no checkpoint is running, and returns the
// version of the checkpoint in effect.
func (s *Store) WaitCheckpoint() uint64 {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.checkpoint.Load()
}

// WriteSynchronous reads SQLite's synchronous setting on the write
// connection, the one that commits: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
func (s *Store) WriteSynchronous(ctx context.Context) (int, error) {
	var n int
	err := s.w.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n)
	return n, err
}
