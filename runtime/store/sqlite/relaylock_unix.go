//go:build unix

package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"github.com/theus-go/theus/runtime/outbox"
)

// lockRelay takes the lock that makes one relay at a time read the store
// at path: an exclusive flock on path + "-relay", with path's symlinks
// resolved so that every name of the file meets the same lock. Like the
// engine's lock, it is a file of its own, apart from SQLite's locks.
func lockRelay(path string) (*os.File, error) {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	f, err := os.OpenFile(path+"-relay", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, outbox.ErrRelayRunning
		}
		return nil, err
	}
	return f, nil
}
