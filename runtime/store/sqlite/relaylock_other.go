//go:build !unix

package sqlite

import "os"

// lockRelay does not lock where flock is not available: only a second
// relay on the same Store value is refused (see ClaimRelay).
func lockRelay(string) (*os.File, error) { return nil, nil }
