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

// TailReads returns how many reads of Undelivered the store answered from
// the messages it keeps in memory (tail.go) rather than from the file.
func (s *Store) TailReads() uint64 {
	s.tail.mu.Lock()
	defer s.tail.mu.Unlock()
	return s.tail.reads
}

// SetTailCap sets how many messages the store keeps in memory for the
// relay (tail.go), in place of its default.
func (s *Store) SetTailCap(n int) {
	s.tail.mu.Lock()
	defer s.tail.mu.Unlock()
	s.tail.max = n
}
