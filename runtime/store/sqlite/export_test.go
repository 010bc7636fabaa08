package sqlite

// WaitCheckpoint waits until no checkpoint is running, and returns the
// version of the checkpoint in effect.
func (s *Store) WaitCheckpoint() uint64 {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	return s.checkpoint.Load()
}
