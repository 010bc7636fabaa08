//go:build !linux

package sqlite_test

// fullChild: the disk-full test mounts a tmpfs, which only Linux has.
func fullChild() bool { return false }
