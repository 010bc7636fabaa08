package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/theus-go/theus/runtime/outbox"
)

// dbFile is the process's hold on one database file, shared by the Stores
// of the process that opened it, under whatever names.
//
// The engine's lock must follow the file, not the name it is opened by (a
// symbolic link, a hard link, a relative path), so it is a flock on the
// database file itself. SQLite locks the same file with POSIX (fcntl)
// locks, which belong to the process: closing any descriptor of the file
// drops every one of them, and another process may then take the database
// for unused (checkpoint it and delete the write-ahead log this process
// still writes). So a descriptor of the file is closed only once no Store
// of the process has the file open, after their SQLite connections have
// closed. Stores of one process share the flocked descriptor, so the
// engine that holds the file within the process is recorded here.
type dbFile struct {
	info os.FileInfo // identifies the file (os.SameFile)
	// fds are the descriptors the Stores opened, one each; fds[0] carries
	// the flock.
	fds    []*os.File
	stores int    // Stores open on the file
	engine *Store // the Store whose engine writes the file, if any
}

// dbFiles are the files the Stores of the process have open: process-wide,
// as POSIX locks are.
var dbFiles struct {
	mu    sync.Mutex
	files []*dbFile
}

// openFile opens (creating it if needed) the database file at path, before
// SQLite opens it, and returns the process's hold on it.
func openFile(path string) (*dbFile, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	dbFiles.mu.Lock()
	defer dbFiles.mu.Unlock()
	for _, d := range dbFiles.files {
		if os.SameFile(d.info, info) {
			// Another Store has the file open: f is kept until the last
			// Store closes, since closing it would drop that Store's
			// SQLite locks.
			d.fds = append(d.fds, f)
			d.stores++
			return d, nil
		}
	}
	d := &dbFile{info: info, fds: []*os.File{f}, stores: 1}
	dbFiles.files = append(dbFiles.files, d)
	return d, nil
}

// claim makes s the store of the engine that writes the file, or returns
// ErrInUse when an engine, in this process or another, already does.
func (d *dbFile) claim(s *Store) error {
	dbFiles.mu.Lock()
	defer dbFiles.mu.Unlock()
	if d.engine != nil {
		return ErrInUse
	}
	if err := flock(d.fds[0]); err != nil {
		return err
	}
	d.engine = s
	return nil
}

// unclaim leaves the file to the next engine, if s held it.
func (d *dbFile) unclaim(s *Store) error {
	dbFiles.mu.Lock()
	defer dbFiles.mu.Unlock()
	return d.unclaimLocked(s)
}

func (d *dbFile) unclaimLocked(s *Store) error {
	if d.engine != s || s == nil {
		return nil
	}
	d.engine = nil
	return funlock(d.fds[0])
}

// release is Close for s, whose SQLite connections are closed: the last
// Store of the process on the file closes its descriptors.
func (d *dbFile) release(s *Store) error {
	dbFiles.mu.Lock()
	defer dbFiles.mu.Unlock()
	err := d.unclaimLocked(s)
	if d.stores--; d.stores > 0 {
		return err
	}
	dbFiles.files = slices.DeleteFunc(dbFiles.files, func(o *dbFile) bool { return o == d })
	for _, f := range d.fds {
		err = errors.Join(err, f.Close())
	}
	return err
}

// lockRelay takes the lock that makes one relay at a time read the store
// at path: an exclusive flock on path + "-relay", with path's symlinks
// resolved so that every name of the file meets the same lock (a hard
// link does not). It is a file of its own: the database file's flock is
// the engine's.
func lockRelay(path string) (*os.File, error) {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	f, err := os.OpenFile(path+"-relay", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, ErrInUse) {
			return nil, outbox.ErrRelayRunning
		}
		return nil, err
	}
	return f, nil
}
