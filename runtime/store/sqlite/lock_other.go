//go:build !unix

package sqlite

import "os"

// flock does not lock where flock is not available: an engine in another
// process is then not detected (see ErrInUse).
func flock(*os.File) error { return nil }

// funlock has no flock to release.
func funlock(*os.File) error { return nil }
