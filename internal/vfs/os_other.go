//go:build !linux

package vfs

import (
	"errors"
	"os"
)

// fdatasync falls back to a full fsync (F_FULLFSYNC on darwin) where
// fdatasync is unavailable.
func fdatasync(f *os.File) error { return f.Sync() }

// Preallocate is not supported here: appends allocate as they go.
func (o osFile) Preallocate(off, n int64) error { return errors.ErrUnsupported }
