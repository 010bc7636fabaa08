//go:build unix

package sqlite

import (
	"errors"
	"os"
	"syscall"
)

// lockEngine takes the lock that makes one engine at a time the writer of
// the store at path: an exclusive flock on path + "-lock", a file of its
// own so that it never meets SQLite's fcntl locks on the database. The
// kernel drops it when the process ends, however it ends.
func lockEngine(path string) (*os.File, error) {
	f, err := os.OpenFile(path+"-lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrInUse
		}
		return nil, err
	}
	return f, nil
}
