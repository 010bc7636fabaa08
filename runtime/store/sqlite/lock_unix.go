//go:build unix

package sqlite

import (
	"errors"
	"os"
	"syscall"
)

// flock takes an exclusive flock on f without waiting, or returns
// ErrInUse. A flock belongs to the open file description, not to the
// process, and never meets SQLite's fcntl locks on the same file; the
// kernel drops it when the process ends, however it ends.
func flock(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return ErrInUse
	}
	return err
}

// funlock releases the flock of f.
func funlock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
