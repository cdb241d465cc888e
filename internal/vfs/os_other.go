//go:build !linux

package vfs

import "os"

// fdatasync falls back to a full fsync (F_FULLFSYNC on darwin) where
// fdatasync is unavailable.
func fdatasync(f *os.File) error { return f.Sync() }
